"""WAF IP access rules and load-balancer failover, through a real runtime."""

import signal
import socket
import time

import pytest
from runtime_helpers import connect, free_ports, json_counters, lb_rule, make_document, make_rule, recv_all, recv_line

pytestmark = pytest.mark.processes

ACL = [
    {"name": "deny-loopback-net", "action": "deny", "sources": ["127.0.0.0/8"], "priority": 20},
    {"name": "allow-one-host", "action": "allow", "sources": ["127.0.0.1/32"], "priority": 10},
    {"name": "deny-other-v6", "action": "deny", "sources": ["2001:db8::/32"], "priority": 30},
]


def tcp_echo(address, port, source=None):
    """Echo one line; b"" when the runtime closes or resets the connection."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        if source:
            sock.bind((source, 0))
        sock.connect((address, port))
        try:
            sock.sendall(b"hi\n")
            sock.shutdown(socket.SHUT_WR)
            return recv_all(sock)
        except (ConnectionResetError, BrokenPipeError):
            return b""


def udp_reply(address, port, source, timeout=1.0):
    """The reply to one datagram, or None when none comes within ``timeout``."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.sendto(b"ping", (address, port))
        try:
            return sock.recv(100)
        except socket.timeout:
            return None


def test_acl_allow_and_deny_tcp_and_udp(processes, start_origin, start_runtime):
    """First matching rule by priority decides; denied TCP is closed, denied UDP dropped."""
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    start_origin("udp-echo", "127.0.0.1", origin)
    rules = [
        make_rule(str(edge), [(edge, [origin])]),
        make_rule(str(edge), [(edge, [origin])], protocol="udp"),
    ]
    runtime = start_runtime(make_document(rules, ipv6=True, waf=True, acl=ACL))
    assert tcp_echo("127.0.0.1", edge) == b"hi\n"  # allow-one-host, priority 10
    assert tcp_echo("::1", edge) == b"hi\n"  # no rule matches: allowed
    assert tcp_echo("127.0.0.1", edge, source="127.0.0.2") == b""  # deny-loopback-net
    assert udp_reply("127.0.0.1", edge, "127.0.0.1") == b"ping"
    assert udp_reply("127.0.0.1", edge, "127.0.0.2") is None
    status, output = processes.stop(runtime)
    counters = json_counters(output)
    assert status == 0
    assert (counters[f"app/tcp/{edge}"]["denied"], counters[f"app/tcp/{edge}"]["opened"]) == (1, 2)
    assert (counters[f"app/udp/{edge}"]["denied"], counters[f"app/udp/{edge}"]["opened"]) == (1, 1)


def greeted_by(edge):
    """The origin address that greets a new connection, or None if it failed."""
    try:
        with connect("127.0.0.1", edge, timeout=5) as sock:
            line = recv_line(sock)
    except OSError:
        return None
    return line.split()[0] if line else None


def wait_for_log(processes, proc, text, attempts=100):
    """Poll the process's stderr for ``text``; bounded."""
    for _ in range(attempts):
        if text in processes.stderr(proc):
            return True
        time.sleep(0.05)
    return False


def test_load_balancer_failover_and_recovery(processes, start_origin, start_runtime):
    """A killed origin gets no connection that fails; it is used again when it returns."""
    edge, origin = free_ports(2)
    pool = {
        "pool": {
            "algorithm": "round_robin",
            "origins": [
                {"address": "127.0.0.2", "weight": 1},
                {"address": "127.0.0.3", "weight": 1},
            ],
            "health_check": {
                "interval": 1,
                "timeout": 1,
                "unhealthy_threshold": 1,
                "healthy_threshold": 1,
            },
        }
    }
    start_origin("greet", "127.0.0.2", origin)
    second = start_origin("greet", "127.0.0.3", origin)
    runtime = start_runtime(make_document([lb_rule(edge, origin)], load_balancers=pool))
    assert {greeted_by(edge) for _ in range(4)} == {"127.0.0.2", "127.0.0.3"}

    processes.stop(second, signal.SIGKILL)
    # refused connects are redispatched at once, before health checks notice
    assert {greeted_by(edge) for _ in range(6)} == {"127.0.0.2"}
    assert wait_for_log(processes, runtime, "origin 127.0.0.3 is now unhealthy")

    start_origin("greet", "127.0.0.3", origin)
    assert wait_for_log(processes, runtime, "origin 127.0.0.3 is now healthy")
    assert {greeted_by(edge) for _ in range(4)} == {"127.0.0.2", "127.0.0.3"}
