# -*- test-case-name: tests.runtime.test_runtime_twisted_private -*-
"""The one door to Twisted's private parts, checked when the runtime starts.

The runtime's hot paths reach past Twisted's public API where a profile
(py-spy, benchmarks keepalive, conn_close, udp_rr) showed Twisted's own path
costs a large share of the CPU. Everything that depends on names Twisted does
not promise lives here, so a Twisted upgrade has one module to read, and
``check`` names what is missing at start-up instead of an AttributeError
in the middle of traffic:

  - ``RelayReactor``: EPollReactor's poll loop (``_poller``, ``_selectables``,
    ``_doReadOrWrite``) without the logging context it builds per event;
  - ``sender``: a TCP write sent at once when nothing is queued (the
    ``FileDescriptor`` write state ``dataBuffer``, ``_tempDataLen``,
    ``_writeDisconnecting`` and ``Connection._aborting``);
  - ``waiting_bytes``, ``send_datagram``: the socket (public ``getHandle``)
    of Twisted's own TCP connection and UDP port, read or written directly;
  - ``reap_children``: ``twisted.internet.process.reapAllProcesses``.

Each function recognises Twisted's own classes, the only ones whose insides
it knows, and gives any other transport (an in-memory one, a TLS wrapper)
Twisted's public API instead.
"""

import errno
import socket

from twisted.internet import process, tcp, udp
from twisted.internet.error import MessageLengthError

try:
    from twisted.internet.epollreactor import EPollReactor
except ImportError:  # not Linux: Twisted's default reactor serves
    EPollReactor = None  # type: ignore[assignment,misc]

#: The Twisted versions the runtime is tested with (pyproject.toml bounds them).
TESTED = "Twisted 23.10 to 26.x"

_WRITE_STATE = ("connected", "dataBuffer", "_tempDataLen", "disconnecting", "_writeDisconnecting", "_aborting")
_REACTOR_STATE = ("_poller", "_selectables", "_doReadOrWrite")


class TwistedMismatch(RuntimeError):
    """The installed Twisted lacks a private name the runtime relies on."""


if EPollReactor is not None:

    class RelayReactor(EPollReactor):
        """EPollReactor without a logging context around each event.

        EPollReactor.doPoll runs every handler inside log.callWithLogger,
        which builds a logging context (the "system" of legacy log lines):
        a fifth of the runtime's CPU per kept-alive request, a tenth per new
        connection. The runtime logs through twisted.logger namespaces and
        never reads that context, so this loop calls the handler directly.
        """

        def doPoll(self, timeout):
            if timeout is None:
                timeout = -1  # wait until an event
            try:
                events = self._poller.poll(timeout, len(self._selectables))
            except OSError as err:
                if err.errno == errno.EINTR:
                    return
                raise
            handle, selectables = self._doReadOrWrite, self._selectables
            for fd, event in events:
                selectable = selectables.get(fd)
                if selectable is not None:
                    handle(selectable, fd, event)

        doIteration = doPoll

else:
    RelayReactor = None  # type: ignore[assignment,misc]


def check(reactor):
    """Raise ``TwistedMismatch`` unless every private name used here exists
    (on ``reactor`` when it is a ``RelayReactor``, and on a TCP connection)."""
    missing = []
    if RelayReactor is not None and isinstance(reactor, RelayReactor):
        missing += [f"EPollReactor.{name}" for name in _REACTOR_STATE if not hasattr(reactor, name)]
    ours, theirs = socket.socketpair()
    with ours, theirs:
        probe = tcp.Connection(ours, None, reactor)
        missing += [f"tcp.Connection.{name}" for name in _WRITE_STATE if not hasattr(probe, name)]
    if not hasattr(process, "reapAllProcesses"):
        missing.append("process.reapAllProcesses")
    if missing:
        raise TwistedMismatch(
            f"this Twisted lacks what the runtime relies on: {', '.join(missing)}. "
            f"Install a Twisted the runtime is tested with ({TESTED})."
        )


def sender(transport):
    """A function that writes to ``transport``, sending at once when it can.

    Twisted's ``write`` only queues: the bytes leave on the next reactor turn,
    after an epoll_ctl to watch for writability and another to stop, which is
    most of a small relayed message's cost (py-spy, keep-alive). When nothing
    is queued and the connection is open, ``send`` now is what that turn would
    do; the rest (would block, partial send, errors, closing) goes to ``write``,
    so ordering, backpressure, half-close and error handling stay Twisted's.
    """
    if not isinstance(transport, tcp.Connection):
        return transport.write
    send = transport.getHandle().send

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


def waiting_bytes(transport, size):
    """Up to ``size`` bytes already readable on ``transport`` (b"" for none, or
    for a transport that is not a Twisted TCP connection: it delivers its
    bytes through dataReceived). An end of file stays readable."""
    if not isinstance(transport, tcp.Connection):
        return b""
    try:
        return transport.getHandle().recv(size)
    except OSError:  # nothing yet (would block), or an error the relay will meet
        return b""


def send_datagram(transport, datagram, address):
    """Send ``datagram`` to ``address`` (which this socket's own recvfrom gave).

    Twisted's ``udp.Port.write`` checks the address (isIPAddress and
    isIPv6Address against the socket's family) on every datagram, a large
    share of the reply path (py-spy, udp_rr); for an address the socket
    received from, the checks cannot fail. A full socket buffer or an
    oversized datagram drops it, as the network would.
    """
    try:
        if isinstance(transport, udp.Port):
            transport.getHandle().sendto(datagram, address)
        else:
            transport.write(datagram, address)
    except (OSError, MessageLengthError):
        pass


def reap_children():
    """Reap every exited child process Twisted started."""
    process.reapAllProcesses()
