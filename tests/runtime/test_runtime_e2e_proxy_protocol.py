"""PROXY v1 and v2 over TCP, read by real parsers: HAProxy and nginx.

Each parser is the origin and answers with the client address and port it
took from the header; they must be the test client's own.
"""

import pytest
from runtime_helpers import connect, free_ports, make_document, make_rule, recv_all

pytestmark = pytest.mark.processes

VERSIONS = ["proxy_protocol_v1", "proxy_protocol_v2"]
CLIENTS = ["127.0.0.1", "::1"]


def start_proxy(start_runtime, passthrough, origin, *options):
    (edge,) = free_ports(1)
    rule = make_rule(str(edge), [(edge, [origin])], passthrough=passthrough)
    start_runtime(make_document([rule], ipv6=True), *options)
    return edge


@pytest.mark.parametrize("relay", ["--splice", "--no-splice"])
@pytest.mark.parametrize("client_address", CLIENTS)
@pytest.mark.parametrize("passthrough", VERSIONS)
def test_haproxy_parses_client_address(
    start_haproxy, start_runtime, passthrough, client_address, relay
):
    """HAProxy (bind accept-proxy) reports the test client's address and port;
    the request sent at once follows the header, spliced or relayed in Python."""
    (origin,) = free_ports(1)
    start_haproxy(origin)
    edge = start_proxy(start_runtime, passthrough, origin, relay)
    with connect(client_address, edge) as sock:
        client = sock.getsockname()[:2]
        sock.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        response = recv_all(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), response
    assert body.decode() == f"{client[0]} {client[1]}"


@pytest.mark.parametrize("client_address", CLIENTS)
@pytest.mark.parametrize("passthrough", VERSIONS)
def test_nginx_parses_client_address(start_nginx, start_runtime, passthrough, client_address):
    """nginx (listen proxy_protocol) reports the test client's address and port."""
    (origin,) = free_ports(1)
    start_nginx(origin)
    edge = start_proxy(start_runtime, passthrough, origin)
    with connect(client_address, edge) as sock:
        client = sock.getsockname()[:2]
        answer = recv_all(sock)
    assert answer.decode() == f"{client[0]} {client[1]}"


def test_haproxy_rejects_missing_header(start_haproxy, start_runtime):
    """The parser is strict: without passthrough HAProxy refuses the connection."""
    (origin,) = free_ports(1)
    start_haproxy(origin)
    edge = start_proxy(start_runtime, "off", origin)
    with connect("127.0.0.1", edge) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            answer = recv_all(sock)
        except ConnectionResetError:
            answer = b""
    assert b"200" not in answer
