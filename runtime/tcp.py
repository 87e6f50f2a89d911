# -*- test-case-name: tests.runtime.test_runtime_tcp -*-
"""The TCP relay: one client leg, one origin leg, bytes both ways.

Shaped like twisted.protocols.portforward: the client leg stops reading until
the origin answers, then each transport is registered as the producer of the
other, so a slow reader on either side pauses the opposite socket instead of
growing a buffer. Both legs are half-closeable: a FIN from one side becomes a
write shutdown towards the other. On Linux, ``SplicedClientLeg`` connects the
origin as a bare socket and the kernel relays the bytes (``splice.SpliceRelay``)
with the same half-close, counters and timeouts; the Twisted relay above is
the fallback.
"""

import socket
import struct

from twisted.internet import defer, error, protocol
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.protocols.policies import TimeoutMixin
from twisted.python import failure
from zope.interface import implementer

from l4plan.runtime import connect, logs, proxy_header, splice, twisted_private
from l4plan.runtime.idle import Idle
from l4plan.runtime.limits import UNLIMITED
from l4plan.runtime.origins import SelfConnection, not_own

RECV_SIZE = 65536
PIPES = splice.PipePool() if splice.available() else None  # this process's pipe pool
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset


@implementer(IHalfCloseableProtocol)
class _Leg(protocol.Protocol):
    """One side of a relay; ``peer`` is the other side once both exist."""

    peer = None
    send_to_peer = None  # set with peer: ``twisted_private.sender`` of the peer's transport
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
        self.peer.count_out(len(data))
        self.send_to_peer(data)


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
    """An accepted client connection; ``rule`` is fixed when it is accepted.

    This leg relays in Python through Twisted transports on both sides;
    ``SplicedClientLeg`` overrides how the origin is reached and relayed.
    """

    rule = None
    lease = None
    _stop_connecting = None  # set while the origin connection is being made
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
        if self.factory.is_own("tcp", lease.host, self._origin_port):
            return self.origin_failed(failure.Failure(SelfConnection(lease.host, self._origin_port)))
        self._stop_connecting = self.open_origin(lease.host, self._origin_port)

    def open_origin(self, host, port):
        """Start connecting to the origin; returns what gives the attempt up."""
        connector = self.factory.reactor.connectTCP(
            host, port, OriginLegFactory(self), timeout=self.factory.connect_timeout
        )
        return connector.stopConnecting

    def origin_failed(self, reason):
        """Count the failure; try another origin when the rule has one, else close."""
        self._stop_connecting = None
        self.rule.counters.origin_failures += 1
        logs.origin_failed(self.rule.key, reason.getErrorMessage())
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

    def first_bytes(self):
        """The passthrough header and what the client sent while the origin was
        being connected, to leave in one segment (b"" when passthrough is off)."""
        client, edge = self.transport.getPeer(), self.transport.getHost()
        header = proxy_header.for_tcp(
            self.rule.passthrough, (client.host, client.port), (edge.host, edge.port)
        )
        if not header:
            return b""
        early = twisted_private.waiting_bytes(self.transport, RECV_SIZE)
        self.count_in(len(early))
        return header + early

    def origin_connected(self, origin):
        """Send the passthrough header first, then wire the two legs together."""
        self._stop_connecting = None
        if self._closed:
            origin.transport.loseConnection()
            return
        self.peer = origin
        self.send_to_peer = twisted_private.sender(origin.transport)
        origin.send_to_peer = twisted_private.sender(self.transport)
        first = self.first_bytes()
        if first:
            self.send_to_peer(first)
        for transport in (self.transport, origin.transport):
            transport.setTcpNoDelay(True)  # relayed writes leave now, as nginx/HAProxy do
            if self.rule.keepalive:
                transport.setTcpKeepAlive(1)
        self.transport.registerProducer(origin.transport, True)
        origin.transport.registerProducer(self.transport, True)
        self.transport.resumeProducing()

    def dataReceived(self, data):
        self.count_in(len(data))
        self.send_to_peer(data)

    def count_in(self, size):
        """``size`` bytes went from the client towards the origin."""
        self.rule.counters.bytes_in += size
        self.resetTimeout()

    def count_out(self, size):
        """``size`` bytes went from the origin towards the client."""
        self.rule.counters.bytes_out += size
        self.resetTimeout()

    def timeoutConnection(self):
        self.abort()

    def abort(self):
        """Close both legs now, pending bytes dropped (idle, or drain expired)."""
        if self.peer is not None:
            self.peer.transport.abortConnection()
        self.transport.abortConnection()

    def connectionLost(self, reason):
        self._closed = True
        self.setTimeout(None)
        if self._stop_connecting is not None:
            self._stop_connecting()
        if self.lease is not None:
            self.lease.release()
        self.factory.release(self)
        _Leg.connectionLost(self, reason)


class SplicedClientLeg(ClientLeg):
    """A client leg whose origin is a bare socket and whose bytes the kernel
    relays (``splice.SpliceRelay``): no Twisted transport, protocol or
    connector for the origin, and no byte passes through Python."""

    spliced = None  # the SpliceRelay, once the origin is connected
    origin_socket = None
    _aborted = False  # abort() came before the relay: do not start it

    def open_origin(self, host, port):
        d = connect.connect(self.factory.reactor, host, port, self.factory.connect_timeout)
        d.addCallbacks(self._origin_socket_connected, self._origin_socket_failed)
        return d.cancel

    def _origin_socket_failed(self, reason):
        if not reason.check(defer.CancelledError):  # cancelled: the client left first
            self.origin_failed(reason)

    def _origin_socket_connected(self, sock):
        self._stop_connecting = None
        if self._aborted:  # the client's socket closes on the next reactor turn
            sock.close()
            return
        self.origin_socket = sock
        self.transport.setTcpNoDelay(True)
        if self.rule.keepalive:
            self.transport.setTcpKeepAlive(1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.spliced = splice.SpliceRelay(
            self.factory.reactor,
            self.factory.pipes,
            self.transport.socket,
            sock,
            self.count_in,
            self.count_out,
            self._relay_ended,
            first=self.first_bytes(),
        )

    def _relay_ended(self, reason):
        """Close the origin socket, then the client's transport (which runs
        ``connectionLost``): reset both when ``reason`` is an abort."""
        if isinstance(reason, error.ConnectionAborted):
            self.origin_socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        self.origin_socket.close()
        self.transport.connectionLost(failure.Failure(reason))

    def abort(self):
        if self.spliced is not None:
            self.spliced.end(error.ConnectionAborted())
        else:
            self._aborted = True
            self.transport.abortConnection()


class RelayFactory(protocol.ServerFactory):
    """One TCP listener: its route, timeouts, limit and live connections.

    ``pipes`` lends the pipes of spliced connections (``SplicedClientLeg``);
    None relays in Python (``ClientLeg``).
    """

    noisy = False

    def __init__(
        self,
        route,
        reactor,
        connect_timeout,
        idle_timeout,
        max_connections,
        pipes=PIPES,
        is_own=not_own,
        budget=UNLIMITED,
    ):
        self.protocol = ClientLeg if pipes is None else SplicedClientLeg
        self.budget = budget  # the process's descriptors: 2 a connection
        self.is_own = is_own  # (protocol, host, port) -> whether it is our own listener
        self.pipes = pipes
        self.route = route
        self.reactor = reactor
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.connections = set()
        self._idle = Idle(self.connections)

    def admit(self, leg):
        """Count ``leg`` in, or count why it is turned away (ACL, limit) and say no."""
        counters = leg.rule.counters
        if leg.rule.acl is not None and not leg.rule.acl.allows(leg.transport.getPeer().host):
            counters.denied += 1
            return False
        source = leg.transport.getPeer().host
        cap = min(self.max_connections, self.budget.rule_cap(2))
        if counters.active >= cap or not self.budget.take(source, 2):
            counters.refused += 1
            return False
        leg.source = source
        counters.opened += 1
        counters.active += 1
        self.connections.add(leg)
        return True

    def release(self, leg):
        if leg in self.connections:
            self.connections.discard(leg)
            self.budget.give(leg.source, 2)
            leg.rule.counters.active -= 1
            self._idle.check()

    def wait_idle(self):
        """A Deferred that fires when no connection of this listener is left."""
        return self._idle.wait()
