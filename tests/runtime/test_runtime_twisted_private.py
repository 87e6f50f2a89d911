"""The door to Twisted's private parts: checked at start-up, with a clear error."""

import socket

import pytest
from twisted.internet import process, tcp
from twisted.internet.testing import MemoryReactor, StringTransport

from l4plan.runtime import twisted_private


def test_this_twisted_has_everything_the_runtime_relies_on():
    twisted_private.check(MemoryReactor())


@pytest.mark.skipif(twisted_private.RelayReactor is None, reason="epoll is Linux-only")
def test_the_relay_reactor_is_checked_too(monkeypatch):
    reactor = twisted_private.RelayReactor()
    try:
        twisted_private.check(reactor)
        owner = next(c for c in type(reactor).__mro__ if "_doReadOrWrite" in vars(c))
        monkeypatch.delattr(owner, "_doReadOrWrite")
        with pytest.raises(twisted_private.TwistedMismatch, match=r"EPollReactor\._doReadOrWrite"):
            twisted_private.check(reactor)
    finally:
        reactor._poller.close()


def test_a_missing_name_is_named_with_the_fix(monkeypatch):
    monkeypatch.delattr(process, "reapAllProcesses")
    monkeypatch.delattr(tcp._AbortingMixin, "_aborting")
    with pytest.raises(twisted_private.TwistedMismatch) as raised:
        twisted_private.check(MemoryReactor())
    message = str(raised.value)
    assert "tcp.Connection._aborting, process.reapAllProcesses" in message
    assert twisted_private.TESTED in message


def test_other_transports_get_the_public_api():
    """An in-memory transport is written to, and has no bytes to peek at."""
    transport = StringTransport()
    twisted_private.sender(transport)(b"ping")
    assert transport.value() == b"ping"
    assert twisted_private.waiting_bytes(transport, 10) == b""


def test_a_twisted_connection_is_sent_to_at_once():
    """Nothing queued: the bytes leave by send() now, not on the next turn."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        connection = tcp.Connection(ours, None, MemoryReactor())
        connection.connected = True
        twisted_private.sender(connection)(b"now")
        assert theirs.recv(10) == b"now"
        assert connection.dataBuffer == b"" and not connection._tempDataLen
        theirs.send(b"early")
        assert twisted_private.waiting_bytes(connection, 10) == b"early"
