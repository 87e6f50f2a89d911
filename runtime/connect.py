# -*- test-case-name: tests.runtime.test_runtime_connect -*-
"""A lean outgoing TCP connect: a Deferred that fires with the connected socket.

A spliced relay needs only the origin's socket, not a Twisted transport and
protocol. ``reactor.connectTCP`` builds a Connector, a Client and a resolution
Deferred, waits a reactor turn, connects twice and registers the socket with
epoll four times before the first byte; per new connection that was a fifth
of the runtime's CPU (py-spy, conn_close). Here: one socket, one connect_ex,
one registration for writability, SO_ERROR read once.
"""

import errno
import os
import socket

from twisted.internet import defer, error
from twisted.internet.interfaces import IWriteDescriptor
from zope.interface import implementer


def tcp_socket(host):
    """A non-blocking TCP socket of ``host``'s family, with TCP_NODELAY."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def connect(reactor, host, port, timeout):
    """Connect to the IP address ``host``, ``port``; a Deferred of the socket.

    Fails with a ``error.ConnectError`` subclass (refused, timeout after
    ``timeout`` seconds, ...); cancelling it closes the socket.
    """
    sock = tcp_socket(host)
    code = sock.connect_ex((host, port))
    if code in (0, errno.EINPROGRESS):
        return _Connecting(reactor, sock, timeout).result
    sock.close()
    return defer.fail(_connect_error(code))


def _connect_error(code):
    """The ``error.ConnectError`` subclass Twisted uses for errno ``code``."""
    return error.getConnectError((code, os.strerror(code)))


@implementer(IWriteDescriptor)
class _Connecting:
    """A socket waiting for its connect to finish (writable = done)."""

    def __init__(self, reactor, sock, timeout):
        self.reactor = reactor
        self.socket = sock
        self.fd = sock.fileno()
        self.result = defer.Deferred(self._cancel)
        self._timer = reactor.callLater(timeout, self._fail, error.TimeoutError())
        reactor.addWriter(self)

    def fileno(self):
        return self.fd

    def logPrefix(self):
        return "connect"

    def doWrite(self):
        failed = self._socket_error()
        if failed is not None:
            return self._fail(failed)
        self._stop()
        self._settle().callback(self.socket)

    def connectionLost(self, reason):
        """The reactor saw an error or hang-up (a refused connect, often)."""
        self._fail(self._socket_error() or error.ConnectError(string=reason.getErrorMessage()))

    def _socket_error(self):
        """Why the connect failed (SO_ERROR), or None."""
        code = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return _connect_error(code) if code else None

    def _stop(self):
        self.reactor.removeWriter(self)
        if self._timer.active():
            self._timer.cancel()

    def _fail(self, reason):
        self._stop()
        self.socket.close()
        self._settle().errback(reason)

    def _settle(self):
        """The result, no longer referenced from here: the Deferred's canceller
        refers to this object, and a cycle would wait for the garbage collector."""
        result, self.result = self.result, None
        return result

    def _cancel(self, result):
        self._stop()
        self.socket.close()
        self.result = None
