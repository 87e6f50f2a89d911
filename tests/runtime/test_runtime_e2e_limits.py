"""Timeouts and caps set on the command line, through a real runtime."""

import socket

from runtime_helpers import (
    connect,
    free_ports,
    json_counters,
    make_document,
    make_rule,
    recv_all,
    udp_exchange,
)


def closed_by_peer(sock):
    """True when the runtime closed (or reset) the connection."""
    try:
        return recv_all(sock) == b""
    except ConnectionResetError:
        return True


def test_idle_timeout_closes_quiet_connection(processes, start_origin, start_runtime):
    """A connection without traffic for --idle-timeout seconds is closed."""
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    start_runtime(
        make_document([make_rule(str(edge), [(edge, [origin])])]), "--idle-timeout", "0.3"
    )
    with connect("127.0.0.1", edge) as sock:
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        assert closed_by_peer(sock)


def test_max_connections_per_rule(processes, start_origin, start_runtime):
    """Beyond --max-connections a rule's new connections are closed at once and counted."""
    first_edge, second_edge, origin = free_ports(3)
    start_origin("echo", "127.0.0.1", origin)
    rule = make_rule(
        f"{first_edge},{second_edge}", [(first_edge, [origin]), (second_edge, [origin])]
    )
    runtime = start_runtime(make_document([rule]), "--max-connections", "1")
    with connect("127.0.0.1", first_edge) as held:
        held.sendall(b"x")
        assert held.recv(1) == b"x"
        with connect("127.0.0.1", second_edge) as extra:  # same rule, other edge port
            assert closed_by_peer(extra)
    status, output = processes.stop(runtime)
    counters = json_counters(output)[f"app/tcp/{first_edge},{second_edge}"]
    assert status == 0 and (counters["opened"], counters["refused"]) == (1, 1)


def test_udp_session_cap_and_idle_timeout(processes, start_origin, start_runtime):
    """--max-sessions drops datagrams of extra clients; --udp-idle-timeout frees the slot."""
    edge, origin = free_ports(2)
    start_origin("udp-echo", "127.0.0.1", origin)
    rule = make_rule(str(edge), [(edge, [origin])], protocol="udp")
    options = ("--max-sessions", "1", "--udp-idle-timeout", "0.3")
    runtime = start_runtime(make_document([rule]), *options)
    assert udp_exchange("127.0.0.1", edge, [b"first"])[0] == [b"first"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.settimeout(0.2)
        other.sendto(b"second", ("127.0.0.1", edge))
        try:
            other.recv(100)
            dropped = False
        except socket.timeout:
            dropped = True
    assert dropped
    replies = []
    for _ in range(40):  # the first session ends after 0.3 s idle; bounded retries
        try:
            replies = udp_exchange("127.0.0.1", edge, [b"third"], timeout=0.2)[0]
            break
        except socket.timeout:
            continue
    assert replies == [b"third"]
    status, output = processes.stop(runtime)
    counters = json_counters(output)[f"app/udp/{edge}"]
    assert status == 0 and counters["refused"] >= 1 and counters["opened"] >= 2
