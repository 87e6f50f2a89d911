"""Timeouts and caps set on the command line, through a real runtime."""

import json
import socket

import pytest
from runtime_helpers import connect, free_ports, json_counters, make_document, make_rule, recv_all, udp_exchange

from l4plan.providers.admin_client import AdminClient
from tests.runtime.runtime_helpers import L4PLAN

pytestmark = pytest.mark.processes


def closed_by_peer(sock):
    """True when the runtime closed (or reset) the connection."""
    try:
        return recv_all(sock) == b""
    except ConnectionResetError:
        return True


def refused_at_once(address, port):
    """True when the runtime ends a new connection at once: closed, or reset so
    soon that the reset reaches connect() itself (it can, on loopback)."""
    try:
        sock = connect(address, port)
    except ConnectionResetError:
        return True
    with sock:
        return closed_by_peer(sock)


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
        assert refused_at_once("127.0.0.1", second_edge)  # same rule, other edge port
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


def test_a_flood_under_a_low_descriptor_limit_leaves_the_rest_serving(processes, start_origin, tmp_path):
    """With `ulimit -n 256`, 300 clients held open on one rule are refused past its
    share of the descriptors; another TCP rule, UDP and the admin API keep serving."""
    flooded, other, datagrams, origin = free_ports(4)
    start_origin("echo", "127.0.0.1", origin)
    start_origin("udp-echo", "127.0.0.1", origin)
    rules = [
        make_rule(str(flooded), [(flooded, [origin])]),
        make_rule(str(other), [(other, [origin])]),
        make_rule(str(datagrams), [(datagrams, [origin])], protocol="udp"),
    ]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "applied.json").write_text(json.dumps(make_document(rules)))
    admin = f"unix:{tmp_path / 'admin.sock'}"
    runtime = processes.start(
        ["sh", "-c", 'ulimit -n 256 && exec "$0" "$@"', L4PLAN, "runtime", "serve", "--data-dir", data_dir, "--admin", admin],
        "runtime",
    )
    held = []
    try:
        for _ in range(300):  # bounded: each connect has a timeout
            held.append(connect("127.0.0.1", flooded))
        with connect("127.0.0.1", other) as sock:
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
        assert udp_exchange("127.0.0.1", datagrams, [b"ping"])[0] == [b"ping"]
        status = AdminClient(admin).request("GET", "/v1/status")
        assert status.status == 200
        counters = status.body["rules"][f"app/tcp/{flooded}"]
        assert counters["refused"] > 0 and counters["active"] <= 64, counters
    finally:
        for sock in held:
            sock.close()
    assert processes.stop(runtime)[0] == 0
