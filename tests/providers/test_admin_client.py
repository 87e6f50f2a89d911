"""The admin client against real sockets: what it says when the runtime goes away."""

import socket
import threading

import pytest

from l4plan.providers.admin_client import AdminClient, NoAnswer, Unreachable


def test_a_request_taken_but_not_answered_is_no_answer(tmp_path):
    """A runtime that reads the whole request and dies before answering gives NoAnswer:
    the outcome is unknown, which is not the same as unreachable."""
    path = str(tmp_path / "admin.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def take_and_die():
        conn, _ = server.accept()
        with conn:
            data = b""
            while b'"x": 1}' not in data:
                data += conn.recv(65536)

    thread = threading.Thread(target=take_and_die)
    thread.start()
    try:
        with pytest.raises(NoAnswer) as caught:
            AdminClient(f"unix:{path}", timeout=10).request("PUT", "/v1/config", {"x": 1})
    finally:
        thread.join(timeout=10)
        server.close()
    assert str(caught.value).startswith(
        f"the runtime on unix:{path} took the request but gave no answer ("
    )


def test_nothing_listening_is_unreachable(tmp_path):
    """No socket at the address is Unreachable, before anything was sent."""
    with pytest.raises(Unreachable):
        AdminClient(f"unix:{tmp_path / 'none.sock'}").request("GET", "/healthz")
