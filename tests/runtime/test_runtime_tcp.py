"""The TCP relay's protocols, driven in memory (no sockets)."""

import errno

from runtime_helpers import Transport
from twisted.internet import tcp
from twisted.internet.abstract import FileDescriptor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionRefusedError, TimeoutError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from l4plan.runtime import proxy_header
from l4plan.runtime.acl import AccessList
from l4plan.runtime.metrics import RuleCounters
from l4plan.runtime.origins import FixedOrigin, HostCache, LoadBalancer
from l4plan.runtime.routes import Route, Rule
from l4plan.runtime.tcp import RelayFactory

CLIENT = IPv4Address("TCP", "198.51.100.1", 40000)
EDGE = IPv4Address("TCP", "127.0.0.1", 7000)


def relay(
    passthrough="off", acl=None, keepalive=False, max_connections=10, ports=(17000,), origin=None
):
    origin = origin or FixedOrigin("192.0.2.9")
    rule = Rule("app/tcp/7000", "tcp", passthrough, keepalive, acl, origin, RuleCounters())
    reactor = MemoryReactorClock()
    factory = RelayFactory(
        Route(rule, ports),
        reactor,
        connect_timeout=5,
        idle_timeout=60,
        max_connections=max_connections,
        pipes=None,
    )
    return reactor, factory, rule.counters


def accept(factory, client=CLIENT, edge=EDGE):
    leg = factory.buildProtocol(client)
    transport = Transport(hostAddress=edge, peerAddress=client)
    leg.makeConnection(transport)
    return leg, transport


def connect_origin(reactor, index=0):
    origin = reactor.tcpClients[index][2].buildProtocol(None)
    transport = Transport()
    origin.makeConnection(transport)
    return origin, transport


def test_client_paused_until_origin_connects():
    """The client leg reads nothing until its origin connection exists."""
    reactor, factory, _ = relay()
    _, client_t = accept(factory)
    assert client_t.producerState == "paused"
    host, port, _, timeout, _ = reactor.tcpClients[0]
    assert (host, port, timeout) == ("192.0.2.9", 17000, 5)
    connect_origin(reactor)
    assert client_t.producerState == "producing"


def test_producers_registered_both_ways():
    """Each transport is the streaming producer of the other: backpressure both ways."""
    reactor, factory, _ = relay()
    _, client_t = accept(factory)
    _, origin_t = connect_origin(reactor)
    assert client_t.producer is origin_t and client_t.streaming
    assert origin_t.producer is client_t and origin_t.streaming
    origin_t.producer.pauseProducing()  # what a full origin write buffer does
    assert client_t.producerState == "paused"
    client_t.producer.pauseProducing()  # a slow client pauses the origin's reads
    assert origin_t.producerState == "paused"


class SlowSocket(FileDescriptor):
    """Twisted's own write buffer over a socket that takes ``accepts`` bytes at
    most: Twisted's buffer logic, not the test, pauses and resumes the producer."""

    accepts = 0

    def writeSomeData(self, data):
        return min(len(data), self.accepts)

    def setTcpNoDelay(self, enabled):
        pass


def test_full_origin_buffer_pauses_client_reads():
    """When the origin's write buffer passes bufferSize the client leg stops reading."""
    reactor, factory, _ = relay()
    client, client_t = accept(factory)
    origin = reactor.tcpClients[0][2].buildProtocol(None)
    socket = SlowSocket(reactor)
    socket.connected = True
    origin.makeConnection(socket)
    client.dataReceived(b"x" * socket.bufferSize)
    assert client_t.producerState == "producing"
    client.dataReceived(b"x")
    assert client_t.producerState == "paused"
    socket.accepts = 2 * socket.bufferSize  # the origin reads again
    socket.doWrite()
    assert client_t.producerState == "producing"


def test_slow_client_pauses_origin_reads():
    """A client that does not read fills its leg's buffer and the origin leg stops reading."""
    reactor, factory, _ = relay()
    client = factory.buildProtocol(CLIENT)
    socket = SlowSocket(reactor)
    socket.connected = True
    socket.getPeer, socket.getHost = (lambda: CLIENT), (lambda: EDGE)
    client.makeConnection(socket)
    origin, origin_t = connect_origin(reactor)
    origin.dataReceived(b"y" * (socket.bufferSize + 1))
    assert origin_t.producerState == "paused"
    socket.accepts = 2 * socket.bufferSize
    socket.doWrite()
    assert origin_t.producerState == "producing"


def test_bytes_relayed_and_counted():
    """Bytes go through unchanged in both directions and are counted."""
    reactor, factory, counters = relay()
    client, client_t = accept(factory)
    origin, origin_t = connect_origin(reactor)
    client.dataReceived(b"hello")
    origin.dataReceived(b"world!")
    assert origin_t.value() == b"hello"
    assert client_t.value() == b"world!"
    assert (counters.bytes_in, counters.bytes_out, counters.opened, counters.active) == (5, 6, 1, 1)


def test_proxy_v2_header_first_and_once():
    """The v2 header is the first thing the origin gets, sent once."""
    reactor, factory, _ = relay("proxy_protocol_v2")
    client, _ = accept(factory)
    _, origin_t = connect_origin(reactor)
    client.dataReceived(b"payload")
    client.dataReceived(b"more")
    header = proxy_header.v2(("198.51.100.1", 40000), ("127.0.0.1", 7000), "tcp")
    assert origin_t.value() == header + b"payloadmore"


def test_proxy_v1_header_tcp6():
    """A client on the IPv6 listener is announced as TCP6 in v1."""
    reactor, factory, _ = relay("proxy_protocol_v1")
    accept(factory, IPv6Address("TCP", "2001:db8::5", 50000), IPv6Address("TCP", "::1", 7000))
    _, origin_t = connect_origin(reactor)
    assert origin_t.value() == b"PROXY TCP6 2001:db8::5 ::1 50000 7000\r\n"


def test_half_close_forwarded_each_way():
    """A FIN from one side shuts down writing towards the other side only."""
    reactor, factory, _ = relay()
    client, client_t = accept(factory)
    origin, origin_t = connect_origin(reactor)
    client.readConnectionLost()
    assert origin_t.write_closed and not origin_t.disconnecting
    origin.dataReceived(b"late reply")
    assert client_t.value() == b"late reply"
    origin.readConnectionLost()
    assert client_t.write_closed
    client.writeConnectionLost()
    assert client_t.disconnecting


def test_idle_timeout_aborts_both_legs():
    """Without traffic for idle_timeout seconds both legs are aborted."""
    reactor, factory, _ = relay()
    client, client_t = accept(factory)
    origin, origin_t = connect_origin(reactor)
    reactor.advance(59)
    origin.dataReceived(b"x")  # traffic either way resets the timer
    reactor.advance(59)
    assert not client_t.disconnecting
    reactor.advance(1)
    assert client_t.disconnected and origin_t.disconnected


def test_connect_failure_closes_client_and_counts():
    """An origin that times out or refuses closes the client leg and is counted."""
    reactor, factory, counters = relay()
    _, client_t = accept(factory)
    reactor.tcpClients[0][2].clientConnectionFailed(None, Failure(TimeoutError()))
    assert client_t.disconnecting
    assert counters.origin_failures == 1


def test_connection_limit_per_rule():
    """Connections beyond the rule's limit are closed at once and counted as refused."""
    _, factory, counters = relay(max_connections=2)
    accept(factory)
    accept(factory)
    _, third = accept(factory)
    assert third.disconnected
    assert (counters.opened, counters.active, counters.refused) == (2, 2, 1)


def test_connection_lost_releases_slot():
    """A closed connection frees its slot and its origin leg is closed."""
    reactor, factory, counters = relay()
    client, _ = accept(factory)
    _, origin_t = connect_origin(reactor)
    client.connectionLost(Failure(ConnectionRefusedError()))
    assert counters.active == 0 and not factory.connections
    assert origin_t.disconnecting
    assert factory.wait_idle().called


def test_acl_deny_closes_at_once():
    """A denied client is aborted before any origin connection is tried."""
    acl = AccessList(
        [{"name": "x", "action": "deny", "sources": ["198.51.100.0/24"], "priority": 1}]
    )
    reactor, factory, counters = relay(acl=acl)
    _, client_t = accept(factory)
    assert client_t.disconnected and reactor.tcpClients == []
    assert (counters.denied, counters.opened) == (1, 0)


def test_keepalive_on_both_legs():
    """keepalive_protection turns on TCP keepalive on the client and origin legs."""
    reactor, factory, _ = relay(keepalive=True)
    _, client_t = accept(factory)
    _, origin_t = connect_origin(reactor)
    assert client_t.keepalive == 1 and origin_t.keepalive == 1


def test_no_delay_on_both_legs():
    """Relayed writes are not held back by Nagle's algorithm (nginx and HAProxy
    set TCP_NODELAY too): a small reply waiting for an ACK costs up to 40 ms."""
    reactor, factory, _ = relay()
    _, client_t = accept(factory)
    _, origin_t = connect_origin(reactor)
    assert client_t.nodelay and origin_t.nodelay


def test_origin_port_round_robin():
    """An edge port with several origin ports spreads new connections over them."""
    reactor, factory, _ = relay(ports=(17000, 17001, 17002))
    for _ in range(4):
        accept(factory)
    assert [c[1] for c in reactor.tcpClients] == [17000, 17001, 17002, 17000]


def test_wait_idle_fires_when_last_connection_ends():
    """Draining waits for the listener's last connection."""
    reactor, factory, _ = relay()
    client, _ = accept(factory)
    waiting = factory.wait_idle()
    assert not waiting.called
    client.connectionLost(Failure(ConnectionRefusedError()))
    assert waiting.called


def test_client_gone_while_connecting_stops_connect():
    """A client that leaves before the origin answers cancels the origin connect."""
    reactor, factory, counters = relay()
    client, _ = accept(factory)
    client.connectionLost(Failure(ConnectionRefusedError()))
    assert reactor.connectors[0].stoppedConnecting
    assert counters.active == 0


def test_origin_failure_then_close_does_not_stop_connector():
    """After a failed connect, closing the client does not touch the spent connector."""
    reactor, factory, counters = relay()
    client, _ = accept(factory)
    reactor.tcpClients[0][2].clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    client.connectionLost(Failure(ConnectionRefusedError()))
    assert not reactor.connectors[0].stoppedConnecting
    assert (counters.active, counters.origin_failures) == (0, 1)


def pool(*addresses):
    spec = {
        "algorithm": "round_robin",
        "health_check": None,
        "origins": [{"address": a, "weight": 1} for a in addresses],
    }
    return LoadBalancer(spec, HostCache(MemoryReactorClock(), 30))


def test_load_balancer_connect_failure_tries_next_origin():
    """A refused connect to one pool origin is retried once per other origin (redispatch)."""
    balancer = pool("192.0.2.1", "192.0.2.2")
    reactor, factory, counters = relay(origin=balancer)
    _, client_t = accept(factory)
    reactor.tcpClients[0][2].clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    assert [c[0] for c in reactor.tcpClients] == ["192.0.2.1", "192.0.2.2"]
    assert not client_t.disconnecting
    assert [b.active for b in balancer.backends] == [0, 1]
    connect_origin(reactor, index=1)
    assert client_t.producerState == "producing"
    assert counters.origin_failures == 1


def test_load_balancer_gives_up_after_every_origin_failed():
    """When every pool origin failed the client is closed; each failure is counted."""
    reactor, factory, counters = relay(origin=pool("192.0.2.1", "192.0.2.2"))
    _, client_t = accept(factory)
    for index in range(2):
        reactor.tcpClients[index][2].clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    assert len(reactor.tcpClients) == 2
    assert client_t.disconnecting and counters.origin_failures == 2


class FakeSocket:
    """A non-blocking socket that takes ``accepts`` more bytes, then would block."""

    def __init__(self, accepts, waiting=b""):
        self.accepts = accepts
        self.waiting = waiting  # what recv returns once, then it would block
        self.sent = b""
        self.sends = 0
        self.options = {}

    def setblocking(self, flag):
        pass

    def setsockopt(self, level, option, value):
        self.options[level, option] = value

    def recv(self, size):
        data, self.waiting = self.waiting[:size], self.waiting[size:]
        if not data:
            raise BlockingIOError(errno.EAGAIN, "would block")
        return data

    def fileno(self):
        return -1

    def send(self, data):
        if not self.accepts:
            raise BlockingIOError(errno.EAGAIN, "would block")
        taken = bytes(data[: self.accepts])
        self.sends += 1
        self.sent += taken
        self.accepts -= len(taken)
        return len(taken)


def origin_over_socket(reactor, accepts):
    """The origin leg on a real Twisted TCP connection over a ``FakeSocket``."""
    origin = reactor.tcpClients[0][2].buildProtocol(None)
    connection = tcp.Connection(FakeSocket(accepts), origin, reactor)
    connection.connected = True
    origin.makeConnection(connection)
    return origin, connection


def test_sent_at_once_when_nothing_is_queued():
    """Relayed bytes go out in the same reactor turn, without waiting for writability."""
    reactor, factory, _ = relay()
    client, _ = accept(factory)
    _, connection = origin_over_socket(reactor, accepts=100)
    client.dataReceived(b"hello")
    assert connection.socket.sent == b"hello"
    assert connection not in reactor.getWriters()


def test_rest_of_partial_send_queued_in_order():
    """What the socket does not take is queued, and later bytes wait behind it."""
    reactor, factory, _ = relay()
    client, _ = accept(factory)
    _, connection = origin_over_socket(reactor, accepts=3)
    client.dataReceived(b"hello")
    client.dataReceived(b"world")
    assert connection.socket.sent == b"hel"
    assert connection in reactor.getWriters()
    connection.socket.accepts = 100
    connection.doWrite()
    assert connection.socket.sent == b"helloworld"
    client.dataReceived(b"!")
    assert connection.socket.sent == b"helloworld!"


def test_header_queued_before_payload_keeps_its_place():
    """A PROXY header still queued goes out before the first relayed bytes."""
    reactor, factory, _ = relay("proxy_protocol_v1")
    client, _ = accept(factory)
    _, connection = origin_over_socket(reactor, accepts=0)
    client.dataReceived(b"payload")
    connection.socket.accepts = 100
    connection.doWrite()
    assert connection.socket.sent == b"PROXY TCP4 198.51.100.1 127.0.0.1 40000 7000\r\npayload"


def test_blocked_socket_pauses_client_reads():
    """A socket that takes nothing queues through Twisted, which pauses the client leg."""
    reactor, factory, _ = relay()
    client, client_t = accept(factory)
    _, connection = origin_over_socket(reactor, accepts=0)
    client.dataReceived(b"x" * connection.bufferSize)
    assert client_t.producerState == "producing"
    client.dataReceived(b"x")
    assert client_t.producerState == "paused"
    connection.socket.accepts = 2 * connection.bufferSize
    while connection in reactor.getWriters():  # Twisted sends 128 KiB per turn
        connection.doWrite()
    assert client_t.producerState == "producing"
    assert len(connection.socket.sent) == connection.bufferSize + 1


def test_nothing_sent_after_abort():
    """Bytes relayed towards an aborted connection are dropped, as Twisted drops them."""
    reactor, factory, _ = relay()
    client, _ = accept(factory)
    _, connection = origin_over_socket(reactor, accepts=100)
    connection.abortConnection()
    client.dataReceived(b"late")
    assert connection.socket.sent == b""


def test_header_and_early_client_bytes_leave_in_one_send():
    """What the client sent while the origin was connecting follows the PROXY
    header in the same send: the origin gets one segment, not two."""
    reactor, factory, counters = relay("proxy_protocol_v1")
    client = factory.buildProtocol(CLIENT)
    client_connection = tcp.Connection(FakeSocket(100, waiting=b"GET / HTTP/1.0"), client, reactor)
    client_connection.connected = True
    client_connection.getPeer = lambda: CLIENT
    client_connection.getHost = lambda: EDGE
    client.makeConnection(client_connection)
    _, connection = origin_over_socket(reactor, accepts=1000)
    header = b"PROXY TCP4 198.51.100.1 127.0.0.1 40000 7000\r\n"
    assert connection.socket.sent == header + b"GET / HTTP/1.0"
    assert connection.socket.sends == 1
    assert counters.bytes_in == len(b"GET / HTTP/1.0")
