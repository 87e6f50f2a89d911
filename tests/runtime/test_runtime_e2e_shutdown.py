"""Clean shutdown: stop accepting, let connections drain, exit 0."""

import signal
import socket
import time

import pytest
from runtime_helpers import connect, free_ports, json_counters, make_document, make_rule, recv_all

pytestmark = pytest.mark.processes


def refused(port, attempts=100):
    """True once a connection to the port is refused; bounded polling."""
    for _ in range(attempts):
        try:
            connect("127.0.0.1", port, timeout=2).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.05)
    return False


def test_sigterm_drains_open_connection_then_exits_zero(processes, start_origin, start_runtime):
    """After SIGTERM new connections are refused, an open one keeps working, then exit 0."""
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    runtime = start_runtime(make_document([make_rule(str(edge), [(edge, [origin])])]))
    with connect("127.0.0.1", edge) as sock:
        sock.sendall(b"before ")
        assert sock.recv(100) == b"before "
        runtime.send_signal(signal.SIGTERM)
        assert refused(edge)
        assert runtime.poll() is None
        sock.sendall(b"during drain")
        sock.shutdown(1)
        assert recv_all(sock) == b"during drain"
    status, output = processes.stop(runtime, sig=None)
    assert status == 0
    counters = json_counters(output)[f"app/tcp/{edge}"]
    opened = counters.pop("opened")  # probes of refused() may land before the port closes
    assert opened >= 1
    assert counters == {
        "active": 0,
        "refused": 0,
        "denied": 0,
        "bytes_in": 19,
        "bytes_out": 19,
        "origin_failures": 0,
        "dropped_too_large": 0,
    }


def test_sigint_aborts_idle_connection_after_drain_timeout(processes, start_origin, start_runtime):
    """A connection still open when the drain timeout ends is closed; exit is still 0."""
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    runtime = start_runtime(
        make_document([make_rule(str(edge), [(edge, [origin])])]), "--drain-timeout", "0.3"
    )
    with connect("127.0.0.1", edge) as sock:
        sock.sendall(b"x")
        assert sock.recv(10) == b"x"
        runtime.send_signal(signal.SIGINT)
        try:
            assert recv_all(sock) == b""
        except ConnectionResetError:
            pass
        status, _ = processes.stop(runtime, sig=None)
    assert status == 0
    log = processes.stderr(runtime)
    assert "drain timeout" in log and "aborting 1 connections" in log


def test_port_in_use_is_a_clear_error(processes, start_runtime):
    """A taken edge port stops the runtime with a message naming the fix."""
    edge, origin = free_ports(2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", edge))
        taken.listen()
        runtime = start_runtime(
            make_document([make_rule(str(edge), [(edge, [origin])])]), ready=None
        )
        status, _ = processes.stop(runtime, sig=None)
    assert status == 1
    assert "Another process uses this port" in processes.stderr(runtime)


def test_bad_document_is_refused(processes, start_runtime):
    """A document that breaks the schema is refused with its path, before anything listens."""
    proc = start_runtime({"format_version": 2}, ready=None)
    status, _ = processes.stop(proc, sig=None)
    assert status == 1
    message = processes.stderr(proc)
    assert "applied.json" in message and "format_version: 1 was expected" in message


def test_bind_must_be_an_address_of_its_family(processes, start_runtime):
    """--bind takes an IPv4 address and --bind6 an IPv6 one; anything else is a usage error."""
    edge, origin = free_ports(2)
    document = make_document([make_rule(str(edge), [(edge, [origin])])], ipv6=True)
    proc = start_runtime(document, "--bind6", "127.0.0.1", ready=None)
    status, _ = processes.stop(proc, sig=None)
    assert status == 1
    assert "'127.0.0.1' is not an IPv6 address" in processes.stderr(proc)


def test_second_signal_ends_the_drain_at_once(processes, start_origin, start_runtime):
    """A second SIGTERM aborts connections still draining instead of waiting 30 s."""
    edge, origin = free_ports(2)
    start_origin("echo", "127.0.0.1", origin)
    runtime = start_runtime(make_document([make_rule(str(edge), [(edge, [origin])])]))
    with connect("127.0.0.1", edge) as sock:
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        runtime.send_signal(signal.SIGTERM)
        assert refused(edge)  # the first signal was handled: the port is closed
        runtime.send_signal(signal.SIGTERM)
        status, _ = processes.stop(runtime, sig=None, timeout=15)  # drain-timeout is 30 s
    assert status == 0
    assert "SIGTERM again: closing open connections now" in processes.stderr(runtime)
