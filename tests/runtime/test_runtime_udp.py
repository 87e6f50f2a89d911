"""The UDP relay's protocols, driven in memory (no sockets)."""

from runtime_helpers import DatagramTransport, UdpReactor
from twisted.internet import defer, udp
from twisted.internet.error import DNSLookupError

from l4plan.runtime import proxy_header
from l4plan.runtime.acl import AccessList
from l4plan.runtime.metrics import RuleCounters
from l4plan.runtime.origins import FixedOrigin, Lease
from l4plan.runtime.routes import Route, Rule
from l4plan.runtime.udp import PENDING_LIMIT, UdpRelay

CLIENT = ("198.51.100.1", 40000)


class SlowOrigin:
    """An origin whose address is known only when the test says so."""

    def __init__(self):
        self.waiting = defer.Deferred()

    def pick(self, client_ip):
        return self.waiting


def relay(passthrough="off", acl=None, max_sessions=10, origin=None, ports=(5300,)):
    origin = origin or FixedOrigin("192.0.2.9")
    rule = Rule("app/udp/53", "udp", passthrough, False, acl, origin, RuleCounters())
    reactor = UdpReactor()
    edge = UdpRelay(Route(rule, ports), reactor, idle_timeout=30, max_sessions=max_sessions)
    edge_transport = DatagramTransport(("127.0.0.1", 53))
    edge.makeConnection(edge_transport)
    return reactor, edge, edge_transport, rule.counters


def test_session_has_own_connected_socket():
    """A new client gets a socket of its own, connected to the mapped origin."""
    reactor, edge, _, counters = relay()
    edge.datagramReceived(b"query", CLIENT)
    interface, _, origin_t = reactor.udp_ports[0]
    assert interface == "0.0.0.0"
    assert origin_t.connected_to == ("192.0.2.9", 5300)
    assert origin_t.written == [(b"query", None)]
    assert (counters.opened, counters.active, counters.bytes_in) == (1, 1, 5)


def test_same_client_reuses_session():
    """Datagrams from the same (address, port) share one session."""
    reactor, edge, _, counters = relay()
    edge.datagramReceived(b"a", CLIENT)
    edge.datagramReceived(b"b", CLIENT)
    edge.datagramReceived(b"c", ("198.51.100.1", 40001))
    assert len(reactor.udp_ports) == 2
    assert reactor.udp_ports[0][2].written == [(b"a", None), (b"b", None)]
    assert counters.opened == 2


def test_reply_goes_back_from_edge():
    """An origin's reply leaves through the edge socket to the client."""
    reactor, edge, edge_t, counters = relay()
    edge.datagramReceived(b"q", CLIENT)
    session = reactor.udp_ports[0][1]
    session.datagramReceived(b"answer", ("192.0.2.9", 5300))
    assert edge_t.written == [(b"answer", CLIENT)]
    assert counters.bytes_out == 6


def test_v2_header_on_every_datagram():
    """PROXY v2 (UDP family) goes before every datagram of the session."""
    reactor, edge, _, _ = relay("proxy_protocol_v2")
    edge.datagramReceived(b"one", CLIENT)
    edge.datagramReceived(b"two", CLIENT)
    header = proxy_header.v2(CLIENT, ("127.0.0.1", 53), "udp")
    assert header[13] == 0x12
    assert reactor.udp_ports[0][2].written == [(header + b"one", None), (header + b"two", None)]


def test_spp_header_added_and_stripped_from_replies():
    """SPP goes before each datagram; a reply's SPP header never reaches the client."""
    reactor, edge, edge_t, _ = relay("simple_proxy_protocol")
    edge.datagramReceived(b"ping", CLIENT)
    header = proxy_header.spp(CLIENT, ("127.0.0.1", 53))
    assert reactor.udp_ports[0][2].written == [(header + b"ping", None)]
    session = reactor.udp_ports[0][1]
    session.datagramReceived(header + b"pong", ("192.0.2.9", 5300))
    session.datagramReceived(b"bare", ("192.0.2.9", 5300))
    assert edge_t.written == [(b"pong", CLIENT), (b"bare", CLIENT)]


def test_idle_timeout_ends_session():
    """A session without traffic for idle_timeout closes its socket and frees its slot."""
    reactor, edge, _, counters = relay()
    edge.datagramReceived(b"q", CLIENT)
    origin_t = reactor.udp_ports[0][2]
    reactor.advance(29)
    reactor.udp_ports[0][1].datagramReceived(b"r", ("192.0.2.9", 5300))
    reactor.advance(29)
    assert not origin_t.stopped
    reactor.advance(1)
    assert origin_t.stopped and edge.sessions == {} and counters.active == 0


def test_session_cap_per_rule():
    """Datagrams of clients beyond the session cap are dropped and counted."""
    reactor, edge, _, counters = relay(max_sessions=1)
    edge.datagramReceived(b"a", CLIENT)
    edge.datagramReceived(b"b", ("198.51.100.2", 1))
    assert len(reactor.udp_ports) == 1
    assert (counters.refused, counters.active) == (1, 1)


def test_acl_drops_denied_datagrams():
    """A denied client's datagrams are dropped and counted, no session made."""
    acl = AccessList(
        [{"name": "x", "action": "deny", "sources": ["198.51.100.1/32"], "priority": 1}]
    )
    reactor, edge, _, counters = relay(acl=acl)
    edge.datagramReceived(b"a", CLIENT)
    edge.datagramReceived(b"b", CLIENT)
    assert reactor.udp_ports == [] and counters.denied == 2


def test_datagrams_wait_for_origin_address():
    """Datagrams that arrive while the origin is resolved are sent once it is known."""
    origin = SlowOrigin()
    reactor, edge, _, _ = relay(origin=origin)
    for n in range(PENDING_LIMIT + 5):
        edge.datagramReceived(b"%d" % n, CLIENT)
    assert reactor.udp_ports == []
    origin.waiting.callback(Lease("2001:db8::9"))
    interface, _, origin_t = reactor.udp_ports[0]
    assert interface == "::"
    assert len(origin_t.written) == PENDING_LIMIT
    assert origin_t.written[0] == (b"0", None)


def test_origin_port_round_robin_per_session():
    """An edge port with an origin range spreads new sessions over it."""
    reactor, edge, _, _ = relay(ports=(5300, 5301))
    for port in range(3):
        edge.datagramReceived(b"q", ("198.51.100.1", port + 1))
    assert [t.connected_to[1] for _, _, t in reactor.udp_ports] == [5300, 5301, 5300]


def test_close_all_ends_sessions():
    """Stopping a listener ends its sessions."""
    reactor, edge, _, counters = relay()
    edge.datagramReceived(b"a", CLIENT)
    edge.close_all()
    assert reactor.udp_ports[0][2].stopped and counters.active == 0


class FailingOrigin:
    """An origin that cannot be resolved."""

    attempts = 1

    def pick(self, client_ip, exclude=()):
        return defer.fail(DNSLookupError("nowhere.invalid"))


def test_origin_failure_counted_and_next_datagram_retries():
    """A session whose origin fails ends at once; the next datagram starts a new one."""
    reactor, edge, _, counters = relay(origin=FailingOrigin())
    edge.datagramReceived(b"a", CLIENT)
    edge.datagramReceived(b"b", CLIENT)
    assert edge.sessions == {}
    assert (counters.opened, counters.origin_failures, counters.active, counters.bytes_in) == (
        2,
        2,
        0,
        0,
    )


class FullTransport(DatagramTransport):
    """A socket whose buffer is full."""

    def write(self, datagram, addr=None):
        raise BlockingIOError(11, "Resource temporarily unavailable")


def test_full_socket_drops_datagram_quietly():
    """A datagram that cannot be sent is dropped, as UDP allows, without raising."""
    reactor, edge, _, counters = relay()
    edge.datagramReceived(b"q", CLIENT)
    session = reactor.udp_ports[0][1]
    session.transport = FullTransport()
    edge.datagramReceived(b"q2", CLIENT)
    edge.transport = FullTransport()
    session.datagramReceived(b"reply", ("192.0.2.9", 5300))
    assert (counters.bytes_in, counters.bytes_out) == (3, 5)


class EdgeSocket:
    """The socket under a real twisted udp.Port: records sendto, or raises ``error``."""

    def __init__(self, error=None):
        self.sent = []
        self.error = error

    def sendto(self, datagram, addr):
        if self.error is not None:
            raise self.error
        self.sent.append((datagram, addr))


def edge_port(reactor, edge, socket):
    """Put ``edge`` on a twisted udp.Port whose socket is ``socket``."""
    port = udp.Port(0, edge, reactor=reactor)
    port.socket = socket
    edge.transport = port


def test_reply_sent_on_edge_socket():
    """A reply leaves by sendto on the edge socket, to the address the client came from."""
    reactor, edge, _, counters = relay()
    edge.datagramReceived(b"q", CLIENT)
    socket = EdgeSocket()
    edge_port(reactor, edge, socket)
    reactor.udp_ports[0][1].datagramReceived(b"answer", ("192.0.2.9", 5300))
    assert socket.sent == [(b"answer", CLIENT)]
    assert counters.bytes_out == 6


def test_spp_reply_stripped_on_edge_socket():
    """The SPP header of an origin's reply is stripped before the sendto."""
    reactor, edge, _, _ = relay("simple_proxy_protocol")
    edge.datagramReceived(b"q", CLIENT)
    socket = EdgeSocket()
    edge_port(reactor, edge, socket)
    header = proxy_header.spp(CLIENT, ("127.0.0.1", 53))  # the flow's, as origins echo it
    reactor.udp_ports[0][1].datagramReceived(header + b"answer", ("192.0.2.9", 5300))
    assert socket.sent == [(b"answer", CLIENT)]


def test_full_edge_socket_drops_reply_quietly():
    """A reply the edge socket cannot take is dropped without raising."""
    reactor, edge, _, counters = relay()
    edge.datagramReceived(b"q", CLIENT)
    edge_port(reactor, edge, EdgeSocket(BlockingIOError(11, "Resource temporarily unavailable")))
    reactor.udp_ports[0][1].datagramReceived(b"reply", ("192.0.2.9", 5300))
    assert counters.bytes_out == 5


def test_a_datagram_with_no_room_for_its_header_is_counted_dropped():
    """A datagram that no longer fits in one once the v2 header is added is counted
    as dropped (dropped_too_large), not as bytes relayed."""
    reactor, edge, _, counters = relay("proxy_protocol_v2")
    edge.datagramReceived(b"small", CLIENT)
    edge.datagramReceived(b"x" * 65500, CLIENT)
    assert len(reactor.udp_ports[0][2].written) == 1
    assert (counters.bytes_in, counters.dropped_too_large) == (5, 1)
