"""The admin API of a real `l4plan runtime serve`: access control and bad requests."""

import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest

from l4plan.providers.admin_client import AdminClient
from tests.runtime.runtime_helpers import free_ports, make_document, make_rule

pytestmark = pytest.mark.processes

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def serve(tmp_path, monkeypatch, ready_process):
    """Start `l4plan runtime serve --admin ...` in tmp_path."""
    monkeypatch.chdir(tmp_path)
    command = [sys.executable, "-m", "l4plan", "runtime", "serve", "--data-dir", "data"]
    return lambda *admin_options: ready_process([*command, *admin_options], "runtime.stderr")


def document(edge, origin):
    return make_document([make_rule(str(edge), [(edge, [origin])])])


def raw_put(path, body, headers=b""):
    """PUT /v1/config over the unix socket with exactly ``body``; the status code."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(path)
        sock.sendall(
            b"PUT /v1/config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + headers
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_tcp_admin_refuses_requests_without_the_token(serve, tmp_path):
    """Over TCP, no token or a wrong one is a 401 everywhere but the probes, and
    a PUT changes nothing."""
    admin_port, edge, origin = free_ports(3)
    (tmp_path / "token").write_text(TOKEN + "\n")
    serve("--admin", f"tcp:127.0.0.1:{admin_port}", "--token-file", "token")
    address = f"http://127.0.0.1:{admin_port}"

    for token in (None, "wrong", TOKEN + "x"):
        client = AdminClient(address, token)
        assert client.request("GET", "/healthz").status == 200
        assert client.request("GET", "/v1/config").status == 401
        put = client.request("PUT", "/v1/config", document(edge, origin), {"If-Match": "0"})
        assert put.status == 401

    config = AdminClient(address, TOKEN).request("GET", "/v1/config").body
    assert config["generation"] == 0 and config["config"]["applications"] == {}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", edge), timeout=5)


def test_tcp_admin_needs_a_token_file(tmp_path):
    """`--admin tcp:...` without --token-file is a usage error."""
    result = subprocess.run(
        [sys.executable, "-m", "l4plan", "runtime", "serve", "--admin", "tcp:127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "needs --token-file" in result.stderr


def test_unix_socket_is_private_and_bad_bodies_change_nothing(serve):
    """The socket is mode 0600; malformed, oversized, unconditional and invalid
    PUTs get 400/413/428/409/422 and the runtime serves on as before."""
    edge, origin = free_ports(2)
    serve("--admin", "unix:data/admin.sock")
    assert stat.S_IMODE(os.stat("data/admin.sock").st_mode) == 0o600
    client = AdminClient("unix:data/admin.sock")
    body = json.dumps(document(edge, origin)).encode()

    assert raw_put("data/admin.sock", b"{not json", b"If-Match: 0\r\n") == 400
    assert raw_put("data/admin.sock", b" " * (8 * 1024 * 1024 + 1), b"If-Match: 0\r\n") == 413
    assert raw_put("data/admin.sock", body) == 428  # no If-Match
    assert raw_put("data/admin.sock", body, b"If-Match: 7\r\n") == 409
    invalid = client.request("PUT", "/v1/config", {"format_version": 2}, {"If-Match": "0"})
    assert invalid.status == 422
    assert "(document): 'applications' is a required property" in invalid.body["reasons"]

    assert client.request("GET", "/v1/config").body["generation"] == 0
    assert client.request("GET", "/healthz").body == {"status": "ok"}
    assert raw_put("data/admin.sock", body, b"If-Match: 0\r\n") == 200
    assert client.request("GET", "/v1/status").body["listeners"][0]["port"] == edge


def test_idle_and_dripping_clients_cannot_hold_the_admin_api(serve, tmp_path):
    """500 idle and 500 dripping connections from two addresses: past the per-address
    and total caps they are closed at once, and the operator's request is answered."""
    (admin_port,) = free_ports(1)
    (tmp_path / "token").write_text(TOKEN + "\n")
    serve("--admin", f"tcp:127.0.0.1:{admin_port}", "--token-file", "token")
    held = []
    try:
        for source, first_bytes in (("127.0.0.2", b""), ("127.0.0.3", b"PUT /v1/config HTTP/1.1\r\nHo")):
            for _ in range(500):  # bounded; each connect has a timeout
                sock = socket.socket()
                sock.settimeout(5)
                sock.bind((source, 0))
                sock.connect(("127.0.0.1", admin_port))
                if first_bytes:
                    sock.sendall(first_bytes)  # and never the rest
                held.append(sock)
        for sock in held:
            sock.setblocking(False)
        for _ in range(100):  # bounded: until the runtime has accepted (and closed) the backlog
            open_now = sum(_still_open(sock) for sock in held)
            if open_now <= 2 * 16:
                break
            time.sleep(0.1)
        assert open_now <= 2 * 16, open_now  # the rest were closed at once
        answer = AdminClient(f"http://127.0.0.1:{admin_port}", TOKEN, timeout=10).request("GET", "/healthz")
        assert answer.status == 200
    finally:
        for sock in held:
            sock.close()


def _still_open(sock):
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except ConnectionError:
        return False
