"""The file-descriptor budget: one rule or one client cannot take every descriptor."""

import resource

from runtime_helpers import Transport, UdpReactor, make_document, make_rule
from twisted.internet.address import IPv4Address

from l4plan.runtime.limits import MIN_RESERVE, FdBudget, raise_soft_limit
from l4plan.runtime.routes import ListenerKey
from l4plan.runtime.serve import Runtime
from l4plan.runtime.settings import Settings

SETTINGS = Settings(drain_timeout=10, splice=False)


def test_budget_keeps_a_reserve_and_caps_a_source():
    """What a connection takes comes out of the limit less the reserve; a source cap holds across rules."""
    budget = FdBudget(MIN_RESERVE + 5, max_per_source=2)
    assert budget.free == 5
    assert budget.take("192.0.2.1", 2) and budget.take("192.0.2.1", 2)
    assert not budget.take("192.0.2.1", 1)  # the source's cap
    assert not budget.take("192.0.2.2", 2)  # 1 descriptor left
    assert budget.take("192.0.2.2", 1) and budget.free == 0
    budget.give("192.0.2.1", 2)
    assert budget.take("192.0.2.3", 2) and budget.free == 0


def test_soft_limit_is_raised_to_the_hard_one():
    """At start the runtime takes every descriptor the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        assert raise_soft_limit() == hard == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _connect(listener, host):
    peer = IPv4Address("TCP", host, 50000)
    leg = listener.factory.buildProtocol(peer)
    transport = Transport(peerAddress=peer)
    leg.makeConnection(transport)
    return leg, transport


def test_one_rule_flooded_leaves_descriptors_for_the_others():
    """A rule holds at most half the budget: connections past it are refused at once
    and counted, and another rule and UDP still get theirs until the budget is spent."""
    rules = [
        make_rule("7000", [(7000, [17000])]),
        make_rule("7001", [(7001, [17001])]),
        make_rule("53", [(53, [5353])], protocol="udp"),
    ]
    reactor = UdpReactor()
    runtime = Runtime(reactor, SETTINGS, fd_limit=MIN_RESERVE + 13)  # 3 listeners, 10 spare
    runtime.load(make_document(rules))
    runtime.startService()
    listeners = runtime.listeners()
    flooded = listeners[ListenerKey("tcp", "127.0.0.1", 7000)]
    legs = [_connect(flooded, f"198.51.100.{i}") for i in range(8)]
    counters = runtime.metrics.for_rule("app/tcp/7000")
    assert (counters.active, counters.refused) == (3, 5)  # half of 13: 3 connections
    assert [t.disconnecting for _, t in legs].count(True) == 5
    assert runtime.budget.free == 4
    other = listeners[ListenerKey("tcp", "127.0.0.1", 7001)]
    assert not _connect(other, "203.0.113.1")[1].disconnecting
    udp = listeners[ListenerKey("udp", "127.0.0.1", 53)].relay
    udp.datagramReceived(b"q", ("203.0.113.2", 1000))
    udp.datagramReceived(b"q", ("203.0.113.3", 1000))
    udp.datagramReceived(b"q", ("203.0.113.4", 1000))  # the budget is spent
    assert (runtime.metrics.for_rule("app/udp/53").active, runtime.metrics.for_rule("app/udp/53").refused) == (2, 1)
    legs[0][0].connectionLost(None)
    assert runtime.budget.free == 2
    runtime.stopService()


def test_one_source_cannot_hold_more_than_its_cap():
    """--max-per-source refuses a client address its next connection, across rules."""
    reactor = UdpReactor()
    settings = Settings(drain_timeout=10, splice=False, max_per_source=2)
    runtime = Runtime(reactor, settings, fd_limit=100000)
    runtime.load(make_document([make_rule("7000", [(7000, [17000])]), make_rule("7001", [(7001, [17001])])]))
    runtime.startService()
    listeners = runtime.listeners()
    _connect(listeners[ListenerKey("tcp", "127.0.0.1", 7000)], "198.51.100.1")
    _connect(listeners[ListenerKey("tcp", "127.0.0.1", 7001)], "198.51.100.1")
    _, refused = _connect(listeners[ListenerKey("tcp", "127.0.0.1", 7001)], "198.51.100.1")
    _, other = _connect(listeners[ListenerKey("tcp", "127.0.0.1", 7001)], "198.51.100.2")
    assert refused.disconnecting and not other.disconnecting
    assert runtime.metrics.for_rule("app/tcp/7001").refused == 1
    runtime.stopService()
