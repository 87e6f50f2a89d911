"""The splice relay and the spliced client leg on real loopback sockets, their
events driven by hand.

The reactor is a MemoryReactor, so each test decides when a socket is "readable"
or "writable" and checks which events the relay asks for; the bytes travel
through the kernel for real.
"""

import errno
import fcntl
import gc
import socket
import struct
import termios
import time
import weakref

import pytest
from twisted.internet import error, tcp
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from twisted.python.failure import Failure

from l4plan.runtime import splice
from l4plan.runtime.metrics import RuleCounters
from l4plan.runtime.origins import FixedOrigin
from l4plan.runtime.routes import Route, Rule
from l4plan.runtime.tcp import RelayFactory, SplicedClientLeg

pytestmark = pytest.mark.skipif(not splice.available(), reason="os.splice is Linux-only")


def tcp_pair():
    """(application socket, relay-side socket) of one loopback connection."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        app = socket.create_connection(server.getsockname())
        relay_side, _ = server.accept()
    app.settimeout(5)
    relay_side.setblocking(False)
    return app, relay_side


class Parts:
    """A relay and everything around it."""

    reason = None

    def __init__(self, first=b"", origin_sndbuf=None):
        self.reactor = MemoryReactor()
        self.client_app, self.client_sock = tcp_pair()
        self.origin_app, self.origin_sock = tcp_pair()
        if origin_sndbuf:
            self.origin_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, origin_sndbuf)
        self.counted = {"in": 0, "out": 0}
        self.pool = splice.PipePool(keep=4)
        self.relay = splice.SpliceRelay(
            self.reactor,
            self.pool,
            self.client_sock,
            self.origin_sock,
            lambda n: self.count("in", n),
            lambda n: self.count("out", n),
            self.ended,
            first=first,
        )
        self.client_end, self.origin_end = self.relay._ends

    def count(self, key, n):
        self.counted[key] += n

    def ended(self, reason):
        """As the runtime does: reset on abort, then close."""
        self.reason = reason
        for sock in (self.client_sock, self.origin_sock):
            if isinstance(reason, error.ConnectionAborted):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

    def close(self):
        self.relay.end(error.ConnectionDone())
        self.pool.close()
        self.client_app.close()
        self.origin_app.close()


@pytest.fixture
def relayed():
    parts = Parts()
    yield parts
    parts.close()


def recv_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def test_bytes_cross_both_ways_and_are_counted(relayed):
    relayed.client_app.sendall(b"hello origin")
    relayed.client_end.doRead()
    assert recv_exactly(relayed.origin_app, 12) == b"hello origin"
    relayed.origin_app.sendall(b"hi")
    relayed.origin_end.doRead()
    assert recv_exactly(relayed.client_app, 2) == b"hi"
    assert relayed.counted == {"in": 12, "out": 2}


def test_idle_relay_reads_both_sockets_and_holds_no_pipe(relayed):
    """An idle connection costs no pipe: 10,000 of them would need 20,000 fds."""
    reactor = relayed.reactor
    assert relayed.client_end in reactor.readers and relayed.origin_end in reactor.readers
    assert not reactor.writers
    relayed.client_app.sendall(b"x")
    relayed.client_end.doRead()
    recv_exactly(relayed.origin_app, 1)
    assert all(d.pipe is None for d in relayed.relay._directions)
    assert not relayed.pool._free  # a small message is copied: no pipe taken


def queued(sock, size):
    """Wait (bounded) until ``size`` bytes wait in ``sock``'s receive queue, so a
    read sees them all: loopback delivers in segments, not at once."""
    for _ in range(500):
        if struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD, b"\0" * 4))[0] >= size:
            return
        time.sleep(0.01)
    raise AssertionError(f"{size} bytes never arrived")


def test_a_stream_is_spliced_then_messages_are_copied_again(relayed):
    """A read that fills the copy buffer switches to splicing; a large splice
    keeps it; a small splice with the pipe empty switches back. The bytes stay
    in order throughout."""
    up = relayed.relay._directions[0]
    relayed.client_app.sendall(b"a" * splice.COPY_SIZE)
    queued(relayed.client_sock, splice.COPY_SIZE)
    relayed.client_end.doRead()
    assert not up.copying  # the read filled the buffer: a stream
    assert recv_exactly(relayed.origin_app, splice.COPY_SIZE) == b"a" * splice.COPY_SIZE
    assert _stream_through(relayed, 2 * splice.SMALL, settle=True) == b"b" * (2 * splice.SMALL)
    assert not up.copying  # a large splice: still a stream
    assert len(relayed.pool._free) == 1  # the pipe was lent, and given back
    relayed.client_app.sendall(b"small")
    queued(relayed.client_sock, 5)
    relayed.client_end.doRead()
    assert recv_exactly(relayed.origin_app, 5) == b"small"
    assert up.copying  # messages again
    assert relayed.counted["in"] == splice.COPY_SIZE + 2 * splice.SMALL + 5


def _stream_through(parts, size, settle=False):
    """Send ``size`` bytes client → origin through the relay; what arrived.
    With ``settle``, the first read waits until all of them are queued."""
    parts.client_app.sendall(b"b" * size)
    if settle:
        queued(parts.client_sock, size)
    received = b""
    for _ in range(2000):  # bounded
        if parts.client_end.reading:
            parts.client_end.doRead()
        if parts.origin_end.writing:
            parts.origin_end.doWrite()
        received += parts.origin_app.recv(1 << 20)
        if len(received) >= size:
            break
    return received


@pytest.mark.parametrize("cause", ["no file descriptor", "pipe budget spent"])
def test_a_stream_is_copied_when_no_pipe_can_be_had(relayed, monkeypatch, cause):
    """Out of file descriptors (EMFILE) or over the pipe-memory budget, an
    established connection keeps every byte by copying instead of splicing."""
    if cause == "no file descriptor":

        def emfile(flags):
            raise OSError(errno.EMFILE, "Too many open files")

        monkeypatch.setattr(splice.os, "pipe2", emfile)
    else:
        relayed.pool.budget = 0
    size = 4 * splice.COPY_SIZE
    assert _stream_through(relayed, size) == b"b" * size
    assert not relayed.relay.ended and relayed.counted["in"] == size
    assert all(d.pipe is None for d in relayed.relay._directions)
    assert relayed.pool.lent == 0


def test_pool_lends_no_more_than_its_budget():
    """Pipes lent out count against the budget until given back or discarded."""
    pool = splice.PipePool(keep=2, size=65536, budget=2 * 65536)
    first, second = pool.take(), pool.take()
    assert pool.take() is None and pool.lent == first.size + second.size
    pool.give(first)
    third = pool.take()
    assert third is first
    pool.discard(second)
    pool.give(third)
    assert pool.lent == 0
    pool.close()


def test_slow_destination_stops_reading_the_source(relayed):
    """Backpressure: a full pipe stops reads of the source until the
    destination drains, so nothing piles up in the process."""
    client_end, origin_end = relayed.client_end, relayed.origin_end
    relayed.client_app.setblocking(False)
    relayed.origin_app.setblocking(False)
    sent = 0
    for _ in range(2000):  # the origin reads nothing: fill until the relay stops reading
        try:
            sent += relayed.client_app.send(b"z" * 65536)
        except BlockingIOError:
            pass
        client_end.doRead()
        if not client_end.reading:
            break
    assert not client_end.reading  # pipe full
    assert origin_end.writing  # waiting to send on
    received = 0
    for _ in range(20000):  # now the origin reads everything
        try:
            received += len(relayed.origin_app.recv(1 << 20))
        except BlockingIOError:
            pass
        if origin_end.writing:
            origin_end.doWrite()
        if client_end.reading:
            client_end.doRead()
        if received == sent:
            break
    assert received == sent
    assert relayed.counted["in"] == sent
    assert client_end.reading and not origin_end.writing


def test_half_close_passes_fin_after_the_bytes(relayed):
    """A client FIN reaches the origin after its bytes; the other way stays open."""
    relayed.client_app.sendall(b"last words")
    relayed.client_app.shutdown(socket.SHUT_WR)
    relayed.client_end.doRead()
    relayed.client_end.doRead()  # the EOF, if the first read had only the bytes
    assert recv_exactly(relayed.origin_app, 10) == b"last words"
    assert relayed.origin_app.recv(10) == b""  # the FIN
    relayed.origin_app.sendall(b"answer")
    relayed.origin_end.doRead()
    assert recv_exactly(relayed.client_app, 6) == b"answer"
    assert relayed.reason is None
    relayed.origin_app.shutdown(socket.SHUT_WR)
    relayed.origin_end.doRead()
    assert relayed.client_app.recv(10) == b""
    assert isinstance(relayed.reason, error.ConnectionDone)
    assert not relayed.reactor.readers and not relayed.reactor.writers


def test_reset_ends_both_legs_as_lost(relayed):
    """An origin reset ends the relay as lost; the client gets a FIN, as from
    the Python relay."""
    relayed.origin_app.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    relayed.origin_app.close()
    relayed.origin_end.doRead()
    assert isinstance(relayed.reason, error.ConnectionLost)
    assert relayed.client_app.recv(1) == b""


def test_abort_resets_both_peers(relayed):
    relayed.relay.end(error.ConnectionAborted())
    for app in (relayed.client_app, relayed.origin_app):
        with pytest.raises(OSError) as raised:
            app.recv(1) or app.send(b"x")
        assert raised.value.errno in (errno.ECONNRESET, errno.EPIPE)
    assert isinstance(relayed.reason, error.ConnectionAborted)
    assert not relayed.reactor.readers and not relayed.reactor.writers


def test_pool_keeps_a_bounded_number_of_pipes():
    pool = splice.PipePool(keep=2, size=65536)
    pipes = [pool.take() for _ in range(3)]
    assert all(p.size >= 65536 for p in pipes)
    for pipe in pipes:
        pool.give(pipe)
    assert len(pool._free) == 2
    with pytest.raises(OSError):
        splice.os.fstat(pipes[2].read_fd)  # the third was closed
    pool.close()
    assert not pool._free


def test_first_bytes_go_before_anything_spliced():
    """The passthrough header leaves first, even when the origin takes only part
    of it at once and client bytes are already in the pipe."""
    header = b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n" * 4000  # more than a send takes
    parts = Parts(first=header, origin_sndbuf=4096)
    try:
        assert parts.origin_end.writing  # the socket took part of the header
        parts.client_app.sendall(b"payload")
        parts.client_end.doRead()
        received = b""
        for _ in range(10000):  # bounded
            if parts.origin_end.writing:
                parts.origin_end.doWrite()
            received += parts.origin_app.recv(1 << 20)
            if len(received) == len(header) + 7:
                break
        assert received == header + b"payload"
        assert not parts.origin_end.writing
    finally:
        parts.close()


class LegParts:
    """A SplicedClientLeg on a real accepted socket, its origin a real listener."""

    def __init__(self, passthrough="off"):
        self.reactor = MemoryReactorClock()
        self.origin_server = socket.create_server(("127.0.0.1", 0))
        rule = Rule(
            "app/tcp/7000", "tcp", passthrough, False, None, FixedOrigin("127.0.0.1"), RuleCounters()
        )
        self.counters = rule.counters
        self.factory = RelayFactory(
            Route(rule, [self.origin_server.getsockname()[1]]),
            self.reactor,
            connect_timeout=5,
            idle_timeout=60,
            max_connections=10,
            pipes=splice.PipePool(keep=4),
        )
        self.client_app, client_sock = tcp_pair()
        self.leg = self.factory.buildProtocol(None)
        self.transport = tcp.Connection(client_sock, self.leg, self.reactor)
        self.transport.connected = 1
        self.transport.getPeer = lambda: IPv4Address("TCP", *self.client_app.getsockname())
        self.transport.getHost = lambda: IPv4Address("TCP", *self.client_app.getpeername())
        self.leg.makeConnection(self.transport)

    def finish_connect(self):
        """Let the origin accept and the leg see its connect complete."""
        (connecting,) = self.reactor.getWriters()
        self.origin_app, _ = self.origin_server.accept()
        self.origin_app.settimeout(5)
        connecting.doWrite()

    def close(self):
        for sock in (self.client_app, self.origin_server, getattr(self, "origin_app", None)):
            if sock is not None:
                sock.close()
        self.factory.pipes.close()


def test_leg_splices_both_ways_with_the_header_first():
    parts = LegParts("proxy_protocol_v1")
    try:
        assert isinstance(parts.leg, SplicedClientLeg)
        parts.client_app.sendall(b"hello")  # before the origin answers
        parts.finish_connect()
        host, port = parts.client_app.getsockname()
        header = f"PROXY TCP4 {host} 127.0.0.1 {port} {parts.client_app.getpeername()[1]}\r\n"
        assert recv_exactly(parts.origin_app, len(header) + 5) == header.encode() + b"hello"
        parts.origin_app.sendall(b"answer")
        origin_end = parts.leg.spliced._ends[1]
        origin_end.doRead()
        assert recv_exactly(parts.client_app, 6) == b"answer"
        parts.client_app.shutdown(socket.SHUT_WR)
        parts.leg.spliced._ends[0].doRead()
        assert parts.origin_app.recv(1) == b""
        parts.origin_app.shutdown(socket.SHUT_WR)
        origin_end.doRead()
        assert parts.client_app.recv(1) == b""
        assert (parts.counters.bytes_in, parts.counters.bytes_out) == (5, 6)
        assert parts.counters.active == 0 and not parts.factory.connections
        assert not parts.reactor.getReaders() and not parts.reactor.getWriters()
    finally:
        parts.close()


def test_abort_before_the_origin_answers_starts_no_relay():
    """Drain expiry while the origin connect is in flight: the connect that
    completes afterwards is closed, nothing stays registered or counted open."""
    parts = LegParts()
    try:
        parts.leg.abort()
        parts.finish_connect()
        parts.reactor.advance(0)  # Twisted's abortConnection closes on the next turn
        assert parts.leg.spliced is None
        assert parts.origin_app.recv(1) == b""
        assert parts.counters.active == 0
        assert not parts.reactor.getReaders() and not parts.reactor.getWriters()
    finally:
        parts.close()


def test_client_gone_while_connecting_cancels_the_connect():
    parts = LegParts()
    try:
        (connecting,) = parts.reactor.getWriters()
        parts.transport.connectionLost(Failure(error.ConnectionLost()))
        assert connecting.socket.fileno() == -1
        assert parts.counters.origin_failures == 0 and parts.counters.active == 0
        assert not parts.reactor.getWriters() and not parts.reactor.getDelayedCalls()
    finally:
        parts.close()


def test_a_finished_connection_is_freed_without_the_garbage_collector():
    """No reference cycle outlives a connection: with thousands of them, the
    cyclic collector's full passes paused every connection for 250 ms."""
    parts = LegParts()
    gc.collect()
    gc.disable()
    try:
        parts.finish_connect()
        relay = parts.leg.spliced
        refs = [weakref.ref(o) for o in (parts.leg, relay, parts.transport, *relay._ends)]
        parts.client_app.shutdown(socket.SHUT_WR)
        relay._ends[0].doRead()
        parts.origin_app.shutdown(socket.SHUT_WR)
        relay._ends[1].doRead()
        assert relay.ended
        del relay
        parts.leg = parts.transport = None
        assert [ref() for ref in refs] == [None] * len(refs)
    finally:
        gc.enable()
        parts.close()
