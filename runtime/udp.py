# -*- test-case-name: tests.runtime.test_runtime_udp -*-
"""The UDP relay: one session per client (address, port).

The edge listener's ``UdpRelay`` keeps the session table; each ``UdpSession``
owns a connected socket towards its origin, so replies are matched to the
client by the socket they arrive on and sent back from the edge port.
"""

from twisted.internet.error import MessageLengthError
from twisted.internet.protocol import DatagramProtocol
from twisted.python.failure import Failure

from l4plan.runtime import logs, proxy_header, twisted_private
from l4plan.runtime.idle import Idle
from l4plan.runtime.limits import UNLIMITED
from l4plan.runtime.origins import SelfConnection, not_own

PENDING_LIMIT = 64  # datagrams kept while the origin's address is looked up
MAX_DATAGRAM = 65535  # Twisted reads 8192 bytes by default and would truncate
MAX_PAYLOAD = 65507  # the most one IPv4 UDP datagram carries (65535 - IP and UDP headers)


def _send(transport, datagram, *addr):
    """Send one datagram; a full socket buffer or an oversized datagram drops it,
    as the network would, instead of raising out of the reactor once per packet."""
    try:
        transport.write(datagram, *addr)
    except (OSError, MessageLengthError):
        pass


class UdpSession(DatagramProtocol):
    """A client's flow: datagrams out with their header, replies back."""

    noisy = False  # no "Starting protocol" line per session

    lease = None
    closed = False

    def __init__(self, relay, client, rule, origin_port):
        self.relay = relay
        self.client = client
        self.rule = rule
        self.origin_port = origin_port
        edge = relay.transport.getHost()
        self.header = proxy_header.for_udp(rule.passthrough, client, (edge.host, edge.port))
        self._strip_spp = rule.passthrough == "simple_proxy_protocol"
        self._pending = []
        self._port = None
        self._timer = None

    def start(self):
        self._timer = self.relay.reactor.callLater(self.relay.idle_timeout, self.close)
        d = self.rule.origin.pick(self.client[0])
        d.addCallback(self._open)
        d.addErrback(self._failed)

    def _open(self, lease):
        self.lease = lease
        if self.closed:
            lease.release()
            return
        if self.relay.is_own("udp", lease.host, self.origin_port):  # one datagram would fill the table
            return self._failed(Failure(SelfConnection(lease.host, self.origin_port)))
        interface = "::" if ":" in lease.host else "0.0.0.0"
        self._port = self.relay.reactor.listenUDP(
            0, self, interface=interface, maxPacketSize=MAX_DATAGRAM
        )
        self.transport.connect(lease.host, self.origin_port)
        pending, self._pending = self._pending, []
        for datagram in pending:
            _send(self.transport, datagram)

    def _failed(self, reason):
        self.rule.counters.origin_failures += 1
        logs.origin_failed(self.rule.key, reason.getErrorMessage())
        self.close()

    def send(self, data):
        """A datagram from the client, towards the origin."""
        if self.closed:  # its origin failed at once; the next datagram tries again
            return
        if len(self.header) + len(data) > MAX_PAYLOAD:  # no room for the header
            self.rule.counters.dropped_too_large += 1
            return
        self.rule.counters.bytes_in += len(data)
        self._timer.reset(self.relay.idle_timeout)
        if self._port is None:
            if len(self._pending) < PENDING_LIMIT:
                self._pending.append(self.header + data)
            return
        _send(self.transport, self.header + data)

    def datagramReceived(self, data, addr):
        """A reply from the origin, back to the client from the edge port."""
        if self._strip_spp:
            data = proxy_header.strip_spp(data, self.header)
        self.rule.counters.bytes_out += len(data)
        self._timer.reset(self.relay.idle_timeout)
        self.relay.reply(data, self.client)

    def connectionRefused(self):
        self.rule.counters.origin_failures += 1

    def close(self):
        """End the session: its socket, its lease and its table entry."""
        if self.closed:
            return
        self.closed = True
        if self._timer.active():
            self._timer.cancel()
        if self._port is not None:
            self._port.stopListening()
        if self.lease is not None:
            self.lease.release()
        self.relay.session_closed(self)


class UdpRelay(DatagramProtocol):
    """One UDP listener: its route, the session table and the session cap."""

    def __init__(self, route, reactor, idle_timeout, max_sessions, is_own=not_own, budget=UNLIMITED):
        self.is_own = is_own  # (protocol, host, port) -> whether it is our own listener
        self.budget = budget  # the process's descriptors: 1 a session
        self.route = route
        self.reactor = reactor
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self.sessions = {}
        self._idle = Idle(self.sessions)

    def datagramReceived(self, data, addr):
        session = self.sessions.get(addr)
        if session is None:
            session = self._open(addr)
            if session is None:
                return
        session.send(data)

    def reply(self, datagram, client):
        """Send ``datagram`` to ``client`` from the edge socket."""
        twisted_private.send_datagram(self.transport, datagram, client)

    def _open(self, client):
        """A session for a new client; the ACL and the cap are checked here, once
        per session, and again for every datagram of a client turned away."""
        rule = self.route.rule
        if rule.acl is not None and not rule.acl.allows(client[0]):
            rule.counters.denied += 1
            return None
        cap = min(self.max_sessions, self.budget.rule_cap(1))
        if rule.counters.active >= cap or not self.budget.take(client[0], 1):
            rule.counters.refused += 1
            return None
        session = UdpSession(self, client, rule, self.route.next_origin_port())
        self.sessions[client] = session
        rule.counters.opened += 1
        rule.counters.active += 1
        session.start()
        return session

    def session_closed(self, session):
        if self.sessions.get(session.client) is session:
            del self.sessions[session.client]
            self.budget.give(session.client[0], 1)
            session.rule.counters.active -= 1
            self._idle.check()

    def wait_idle(self):
        """A Deferred that fires when no session of this listener is left."""
        return self._idle.wait()

    def close_all(self):
        """End every session (the edge socket is going away: replies could not leave)."""
        for session in list(self.sessions.values()):
            session.close()
