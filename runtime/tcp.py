# -*- test-case-name: tests.runtime.test_runtime_tcp -*-
"""The TCP relay: one client leg, one origin leg, bytes both ways.

Shaped like twisted.protocols.portforward: the client leg stops reading until
the origin answers, then each transport is registered as the producer of the
other, so a slow reader on either side pauses the opposite socket instead of
growing a buffer. Both legs are half-closeable: a FIN from one side becomes a
write shutdown towards the other. On Linux, once the header is sent, the
bytes are relayed by the kernel (L{splice.SpliceRelay}) with the same
half-close, counters and timeouts; the producer wiring above is the fallback.
"""

from twisted.internet import defer, error, protocol, tcp
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from l4plan.runtime import proxy_header, splice

log = Logger()

RECV_SIZE = 65536


def _sender(transport):
    """A function that writes to C{transport}, sending at once when it can.

    Twisted's C{write} only queues: the bytes leave on the next reactor turn,
    after an epoll_ctl to watch for writability and another to stop, which is
    most of a small relayed message's cost (py-spy, keep-alive). When nothing
    is queued and the connection is open, C{send} now is what that turn would
    do; the rest (would block, partial send, errors, closing) goes to C{write},
    so ordering, backpressure, half-close and error handling stay Twisted's.
    Transports that are not Twisted TCP connections (in-memory ones) get C{write}.
    """
    if not isinstance(transport, tcp.Connection):
        return transport.write
    send = transport.socket.send

    def send_or_queue(data):
        if (
            transport.connected
            and not transport.dataBuffer
            and not transport._tempDataLen
            and not transport.disconnecting
            and not transport._writeDisconnecting
            and not transport._aborting
        ):
            try:
                sent = send(data)
            except OSError:  # would block, or an error Twisted will report
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    return send_or_queue


def _idle_socket(transport):
    """Whether C{transport} is a real TCP socket with nothing queued, so the
    kernel can take over its bytes."""
    return (
        isinstance(transport, tcp.Connection)
        and transport.connected
        and not transport.dataBuffer
        and not transport._tempDataLen
    )


def _waiting_bytes(transport):
    """What the client sent while its origin was being connected (b"" for none).

    An end of file stays readable, so the relay still sees it afterwards.
    """
    if not isinstance(transport, tcp.Connection):
        return b""
    try:
        return transport.socket.recv(RECV_SIZE)
    except OSError:  # nothing yet (would block), or an error the relay will meet
        return b""


@implementer(IHalfCloseableProtocol)
class _Leg(protocol.Protocol):
    """One side of a relay; C{peer} is the other side once both exist."""

    peer = None
    send_to_peer = None  # set with peer: L{_sender} of the peer's transport
    _read_closed = False
    _write_closed = False

    def readConnectionLost(self):
        if self._read_closed:  # reading may resume after EOF: report it once
            return
        self._read_closed = True
        if self.peer is not None:
            self.peer.transport.loseWriteConnection()
        self._close_when_both_halves_done()

    def writeConnectionLost(self):
        self._write_closed = True
        self._close_when_both_halves_done()

    def _close_when_both_halves_done(self):
        if self._read_closed and self._write_closed:
            self.transport.loseConnection()

    def connectionLost(self, reason):
        if self.peer is not None:
            self.peer.transport.loseConnection()


class OriginLeg(_Leg):
    """The connection to the origin; everything it reads goes to the client."""

    def connectionMade(self):
        self.peer.origin_connected(self)

    def dataReceived(self, data):
        self.counted_out(len(data))
        self.send_to_peer(data)

    def counted_out(self, size):
        self.peer.rule.counters.bytes_out += size
        self.peer.resetTimeout()


class OriginLegFactory(protocol.ClientFactory):
    """Connects one client leg to its origin; failures go back to that leg."""

    noisy = False

    def __init__(self, client_leg):
        self.client_leg = client_leg

    def buildProtocol(self, addr):
        leg = OriginLeg()
        leg.peer = self.client_leg
        return leg

    def clientConnectionFailed(self, connector, reason):
        self.client_leg.origin_failed(reason)


class ClientLeg(_Leg, TimeoutMixin):
    """An accepted client connection; C{rule} is fixed when it is accepted."""

    rule = None
    lease = None
    spliced = None  # the SpliceRelay moving this connection's bytes, if any
    _connector = None  # set while the origin connection is being made
    _closed = False

    def connectionMade(self):
        self.rule = self.factory.route.rule
        if not self.factory.admit(self):
            self.transport.abortConnection()
            return
        self.transport.pauseProducing()
        self.callLater = self.factory.reactor.callLater
        self.setTimeout(self.factory.idle_timeout)
        self._origin_port = self.factory.route.next_origin_port()
        self._tried = []  # backends of failed attempts, not to be chosen again
        self._pick()

    def _pick(self):
        d = self.rule.origin.pick(self.transport.getPeer().host, exclude=self._tried)
        d.addCallback(self._connect)
        d.addErrback(self.origin_failed)

    def _connect(self, lease):
        self.lease = lease
        if self._closed:
            lease.release()
            return
        self._connector = self.factory.reactor.connectTCP(
            lease.host,
            self._origin_port,
            OriginLegFactory(self),
            timeout=self.factory.connect_timeout,
        )

    def origin_failed(self, reason):
        """Count the failure; try another origin when the rule has one, else close."""
        self._connector = None
        self.rule.counters.origin_failures += 1
        log.info(
            "{rule}: origin failed: {reason}",
            rule=self.rule.key,
            reason=reason.getErrorMessage(),
        )
        if self.lease is not None:
            self._tried.append(self.lease.backend)
            self.lease.release()
            self.lease = None
        else:
            self._tried.append(None)  # resolution failed: still one attempt
        if len(self._tried) < self.rule.origin.attempts and not self._closed:
            self._pick()
        else:
            self.transport.loseConnection()

    def origin_connected(self, origin):
        """Send the passthrough header first, then wire the two legs together."""
        self._connector = None
        if self._closed:
            origin.transport.loseConnection()
            return
        self.peer = origin
        self.send_to_peer = _sender(origin.transport)
        origin.send_to_peer = _sender(self.transport)
        client, edge = self.transport.getPeer(), self.transport.getHost()
        header = proxy_header.for_tcp(
            self.rule.passthrough, (client.host, client.port), (edge.host, edge.port)
        )
        if header:  # with what the client sent meanwhile: one segment, not two
            early = _waiting_bytes(self.transport)
            self._counted_in(len(early))
            self.send_to_peer(header + early)
        for transport in (self.transport, origin.transport):
            transport.setTcpNoDelay(True)  # relayed writes leave now, as nginx/HAProxy do
            if self.rule.keepalive:
                transport.setTcpKeepAlive(1)
        pipes = self.factory.pipes
        if (
            pipes is not None
            and _idle_socket(self.transport)
            and _idle_socket(origin.transport)
        ):
            self.spliced = splice.SpliceRelay(
                self.factory.reactor,
                pipes,
                self.transport,
                origin.transport,
                self._counted_in,
                origin.counted_out,
            )
            return
        self.transport.registerProducer(origin.transport, True)
        origin.transport.registerProducer(self.transport, True)
        self.transport.resumeProducing()

    def dataReceived(self, data):
        self._counted_in(len(data))
        self.send_to_peer(data)

    def _counted_in(self, size):
        self.rule.counters.bytes_in += size
        self.resetTimeout()

    def timeoutConnection(self):
        self.abort()

    def abort(self):
        """Close both legs now, pending bytes dropped (idle, or drain expired)."""
        if self.spliced is not None:
            self.spliced.end(error.ConnectionAborted())
            return
        if self.peer is not None:
            self.peer.transport.abortConnection()
        self.transport.abortConnection()

    def connectionLost(self, reason):
        self._closed = True
        self.setTimeout(None)
        if self._connector is not None:
            self._connector.stopConnecting()
        if self.lease is not None:
            self.lease.release()
        self.factory.release(self)
        _Leg.connectionLost(self, reason)


class RelayFactory(protocol.ServerFactory):
    """One TCP listener: its route, timeouts, limit and live connections.

    C{pipes} lends the pipes of spliced connections; None relays in Python.
    """

    protocol = ClientLeg
    noisy = False
    pipes = splice.PipePool() if splice.available() else None

    def __init__(self, route, reactor, connect_timeout, idle_timeout, max_connections):
        self.route = route
        self.reactor = reactor
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.connections = set()
        self._idle_waiters = []

    def admit(self, leg):
        """Count C{leg} in, or count why it is turned away (ACL, limit) and say no."""
        counters = leg.rule.counters
        if leg.rule.acl is not None and not leg.rule.acl.allows(
            leg.transport.getPeer().host
        ):
            counters.denied += 1
            return False
        if counters.active >= self.max_connections:
            counters.refused += 1
            return False
        counters.opened += 1
        counters.active += 1
        self.connections.add(leg)
        return True

    def release(self, leg):
        if leg in self.connections:
            self.connections.discard(leg)
            leg.rule.counters.active -= 1
            if not self.connections:
                waiters, self._idle_waiters = self._idle_waiters, []
                for d in waiters:
                    d.callback(None)

    def wait_idle(self):
        """A Deferred that fires when no connection of this listener is left."""
        if not self.connections:
            return defer.succeed(None)
        d = defer.Deferred()
        self._idle_waiters.append(d)
        return d
