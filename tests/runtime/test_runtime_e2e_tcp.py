"""TCP through a real `l4plan runtime serve` process over loopback sockets."""

import hashlib
import os
import shutil
import subprocess
import threading

import pytest
from runtime_helpers import (
    connect,
    free_ports,
    json_counters,
    make_document,
    make_rule,
    recv_all,
    recv_line,
    udp_exchange,
)

pytestmark = pytest.mark.processes

MIB = 1024 * 1024


def echo_both_ways(address, port, payload):
    """Send ``payload`` while reading the echo, half-close, return all that came back."""
    with connect(address, port) as sock:
        sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(1)))
        sender.start()
        received = recv_all(sock)
        sender.join()
    return received


RELAYS = ["--splice", "--no-splice"]  # in the kernel, through Python


@pytest.mark.parametrize("relay", RELAYS)
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_echo_one_mib_byte_exact(start_origin, start_runtime, address, relay):
    """1 MiB goes to the origin and back unchanged, on IPv4 and IPv6 listeners."""
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    start_runtime(make_document([make_rule(str(edge), [(edge, [origin])])], ipv6=True), relay)
    payload = os.urandom(MIB)
    assert echo_both_ways(address, edge, payload) == payload


@pytest.mark.parametrize("relay", RELAYS)
def test_half_close_then_reply(start_origin, start_runtime, relay):
    """After the client's FIN the origin still answers, and its FIN ends the client's read."""
    edge, origin = free_ports(2)
    start_origin("digest", "127.0.0.1", origin)
    start_runtime(make_document([make_rule(str(edge), [(edge, [origin])])]), relay)
    payload = os.urandom(300_000)
    with connect("127.0.0.1", edge) as sock:
        sock.sendall(payload)
        sock.shutdown(1)
        reply = recv_all(sock)
    assert reply == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n".encode()


def test_offset_mapping_small_range(start_origin, start_runtime):
    """Edge ports E..E+2 reach origin ports O..O+2 by position."""
    ports = free_ports(6, consecutive=True)
    edges, origins = ports[:3], ports[3:]
    start_origin("greet", "127.0.0.1", *origins)
    spec = f"{edges[0]}-{edges[-1]}"
    rule = make_rule(
        spec, list(zip(edges, [[o] for o in origins])), origin_port=f"{origins[0]}-{origins[-1]}"
    )
    start_runtime(make_document([rule]))
    for edge, origin in zip(edges, origins):
        with connect("127.0.0.1", edge) as sock:
            assert recv_line(sock) == f"127.0.0.1 {origin}\n"


def test_single_edge_port_round_robin_over_origin_range(start_origin, start_runtime):
    """One edge port spreads new connections round-robin over an origin range."""
    edge, *origins = free_ports(4, consecutive=True)
    start_origin("greet", "127.0.0.1", *origins)
    start_runtime(make_document([make_rule(str(edge), [(edge, origins)])]))
    seen = []
    for _ in range(6):
        with connect("127.0.0.1", edge) as sock:
            seen.append(int(recv_line(sock).split()[1]))
    assert seen == origins * 2


def test_multiple_edge_ports_to_one_origin(start_origin, start_runtime):
    """A comma list of edge ports all reach a single origin port."""
    *edges, origin = free_ports(4)
    start_origin("greet", "127.0.0.1", origin)
    rule = make_rule(",".join(map(str, edges)), [(e, [origin]) for e in edges])
    start_runtime(make_document([rule]))
    for edge in edges:
        with connect("127.0.0.1", edge) as sock:
            assert recv_line(sock) == f"127.0.0.1 {origin}\n"


def test_domain_origin_localhost(start_origin, start_runtime):
    """A domain origin (localhost) is resolved at connect time and reached."""
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    rule = make_rule(str(edge), [(edge, [origin])], origin="localhost", origin_type="domain")
    start_runtime(make_document([rule]))
    assert echo_both_ways("127.0.0.1", edge, b"via localhost") == b"via localhost"


@pytest.mark.parametrize("relay", RELAYS)
def test_origin_down_closes_client_and_counts(processes, start_runtime, relay):
    """Without an origin listening the client is closed and the failure counted."""
    edge, origin = free_ports(2)
    runtime = start_runtime(make_document([make_rule(str(edge), [(edge, [origin])])]), relay)
    with connect("127.0.0.1", edge) as sock:
        assert recv_all(sock) == b""
    status, output = processes.stop(runtime)
    assert status == 0
    counters = json_counters(output)[f"app/tcp/{edge}"]
    assert counters["origin_failures"] == 1 and counters["active"] == 0


def test_wildcard_binds_ipv4_and_ipv6_side_by_side(start_origin, start_runtime):
    """--bind 0.0.0.0 and --bind6 :: share edge ports (the IPv6 socket is IPv6-only)."""
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    start_origin("udp-echo", "127.0.0.1", origin)
    rules = [
        make_rule(str(edge), [(edge, [origin])]),
        make_rule(str(edge), [(edge, [origin])], protocol="udp"),
    ]
    start_runtime(make_document(rules, ipv6=True), "--bind", "0.0.0.0", "--bind6", "::")
    for address in ("127.0.0.1", "::1"):
        assert (
            echo_both_ways(address, edge, b"tcp " + address.encode()) == b"tcp " + address.encode()
        )
        assert udp_exchange(address, edge, [b"udp"])[0] == [b"udp"]


def test_ipv6_origin_for_ipv4_client(start_origin, start_runtime):
    """An origin given as an IPv6 address is reached from an IPv4 listener (TCP and UDP)."""
    edge, origin = free_ports(2)
    start_origin("echo", "::1", origin)
    start_origin("udp-echo", "::1", origin)
    rules = [
        make_rule(str(edge), [(edge, [origin])], origin="::1"),
        make_rule(str(edge), [(edge, [origin])], origin="::1", protocol="udp"),
    ]
    start_runtime(make_document(rules))
    assert echo_both_ways("127.0.0.1", edge, b"to ::1") == b"to ::1"
    assert udp_exchange("127.0.0.1", edge, [b"to ::1"])[0] == [b"to ::1"]


def _socket_timers(filter_expression):
    """`ss -tnoH` lines for established sockets matching ``filter_expression``."""
    result = subprocess.run(
        ["ss", "-tnoH", "state", "established", filter_expression],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.splitlines()


@pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) is not installed")
@pytest.mark.parametrize("keepalive", [True, False])
def test_keepalive_protection_on_both_legs(start_origin, start_runtime, keepalive):
    """keepalive_protection turns on TCP keepalive on the client and the origin leg."""
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    rule = make_rule(str(edge), [(edge, [origin])])
    start_runtime(make_document([rule], keepalive=keepalive))
    with connect("127.0.0.1", edge) as sock:
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        client_leg = _socket_timers(f"( sport = :{edge} )")
        origin_leg = _socket_timers(f"( dport = :{origin} )")
    assert len(client_leg) == 1 and len(origin_leg) == 1
    assert ("keepalive" in client_leg[0]) is keepalive
    assert ("keepalive" in origin_leg[0]) is keepalive
