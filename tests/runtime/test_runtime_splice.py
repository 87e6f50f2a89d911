"""The splice relay on real loopback sockets, its events driven by hand.

The reactor is a MemoryReactor, so each test decides when a socket is "readable"
or "writable" and checks which events the relay asks for; the bytes travel
through the kernel for real.
"""

import errno
import socket

import pytest
from twisted.internet import error, protocol, tcp
from twisted.internet.testing import MemoryReactor

from l4plan.runtime import splice

pytestmark = pytest.mark.skipif(not splice.available(), reason="os.splice is Linux-only")


class Recorder(protocol.Protocol):
    reason = None

    def connectionLost(self, reason):
        self.reason = reason


def tcp_pair():
    """(application socket, relay-side socket) of one loopback connection."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        app = socket.create_connection(server.getsockname())
        relay_side, _ = server.accept()
    app.settimeout(5)
    return app, relay_side


@pytest.fixture
def relayed():
    """A relay between a client and an origin socket; yields a namespace of parts."""
    reactor = MemoryReactor()
    client_app, client_sock = tcp_pair()
    origin_app, origin_sock = tcp_pair()
    client_proto, origin_proto = Recorder(), Recorder()
    client = tcp.Connection(client_sock, client_proto, reactor)
    origin = tcp.Connection(origin_sock, origin_proto, reactor)
    client.connected = origin.connected = 1
    counted = {"in": 0, "out": 0}

    def count(key):
        return lambda n: counted.__setitem__(key, counted[key] + n)

    pool = splice.PipePool(keep=4)
    relay = splice.SpliceRelay(reactor, pool, client, origin, count("in"), count("out"))
    ends = {e.socket: e for e in relay._ends}

    class Parts:
        pass

    parts = Parts()
    parts.__dict__.update(
        reactor=reactor,
        relay=relay,
        pool=pool,
        client_app=client_app,
        origin_app=origin_app,
        client_end=ends[client_sock],
        origin_end=ends[origin_sock],
        client_proto=client_proto,
        origin_proto=origin_proto,
        counted=counted,
    )
    yield parts
    relay.end(error.ConnectionDone())
    pool.close()
    client_app.close()
    origin_app.close()


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
    assert len(relayed.pool._free) == 1  # lent for the move, given back


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
    assert relayed.client_proto.reason is None
    relayed.origin_app.shutdown(socket.SHUT_WR)
    relayed.origin_end.doRead()
    assert relayed.client_app.recv(10) == b""
    assert relayed.client_proto.reason.check(error.ConnectionDone)
    assert relayed.origin_proto.reason.check(error.ConnectionDone)
    assert not relayed.reactor.readers and not relayed.reactor.writers


def test_reset_ends_both_legs_as_lost(relayed):
    """An origin reset closes the client too (a FIN, as the Python relay does)."""
    relayed.origin_app.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    relayed.origin_app.close()
    relayed.origin_end.doRead()
    assert relayed.client_proto.reason.check(error.ConnectionLost)
    assert relayed.origin_proto.reason.check(error.ConnectionLost)
    assert relayed.client_app.recv(1) == b""


def test_abort_resets_both_peers(relayed):
    relayed.relay.end(error.ConnectionAborted())
    for app in (relayed.client_app, relayed.origin_app):
        with pytest.raises(OSError) as raised:
            app.recv(1) or app.send(b"x")
        assert raised.value.errno in (errno.ECONNRESET, errno.EPIPE)
    assert relayed.client_proto.reason.check(error.ConnectionAborted)
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
