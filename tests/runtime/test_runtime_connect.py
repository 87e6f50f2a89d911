"""The lean origin connect on real loopback sockets, its events driven by hand."""

import socket

import pytest
from twisted.internet import defer, error
from twisted.internet.testing import MemoryReactorClock

from l4plan.runtime import connect


def results(d):
    got = []
    d.addBoth(got.append)
    return got


def test_connects_and_hands_over_the_socket():
    reactor = MemoryReactorClock()
    with socket.create_server(("127.0.0.1", 0)) as server:
        d = connect.connect(reactor, "127.0.0.1", server.getsockname()[1], timeout=5)
        got = results(d)
        (waiting,) = reactor.getWriters()
        accepted, _ = server.accept()
        waiting.doWrite()
        with accepted:
            (sock,) = got
            assert sock.getpeername() == accepted.getsockname()
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert not sock.getblocking()
            sock.close()
    assert not reactor.getWriters() and not reactor.getDelayedCalls()


def test_refused_is_a_connect_error():
    reactor = MemoryReactorClock()
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    got = results(connect.connect(reactor, "127.0.0.1", port, timeout=5))
    if not got:  # in progress: the refusal arrives as an event
        (waiting,) = reactor.getWriters()
        waiting.doWrite()
    assert got[0].check(error.ConnectionRefusedError)
    assert not reactor.getWriters() and not reactor.getDelayedCalls()


def test_timeout_closes_the_socket():
    reactor = MemoryReactorClock()
    with socket.create_server(("127.0.0.1", 0), backlog=0) as server:
        d = connect.connect(reactor, "127.0.0.1", server.getsockname()[1], timeout=5)
        (waiting,) = reactor.getWriters()
        reactor.advance(5)
    assert results(d)[0].check(error.TimeoutError)
    assert waiting.socket.fileno() == -1
    assert not reactor.getWriters()


def test_cancel_closes_the_socket():
    reactor = MemoryReactorClock()
    with socket.create_server(("127.0.0.1", 0)) as server:
        d = connect.connect(reactor, "127.0.0.1", server.getsockname()[1], timeout=5)
        (waiting,) = reactor.getWriters()
        d.cancel()
    assert results(d)[0].check(defer.CancelledError)
    assert waiting.socket.fileno() == -1
    assert not reactor.getWriters() and not reactor.getDelayedCalls()


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_ipv6_origin():
    reactor = MemoryReactorClock()
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("::1 is not configured")
    with server:
        got = results(connect.connect(reactor, "::1", server.getsockname()[1], timeout=5))
        accepted, _ = server.accept()
        reactor.getWriters()[0].doWrite()
        accepted.close()
    assert got[0].family == socket.AF_INET6
    got[0].close()
