"""Origins: host cache, load-balancing algorithms and active health checks."""

from collections import Counter

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionRefusedError, DNSLookupError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from l4plan.runtime.origins import FixedOrigin, HealthChecker, HostCache, HostOrigin, LoadBalancer


class Resolver:
    """A name resolver answering from a table, counting lookups."""

    def __init__(self, table):
        self.table = table
        self.lookups = 0

    def resolveHostName(
        self, receiver, host, portNumber=0, addressTypes=None, transportSemantics="TCP"
    ):
        self.lookups += 1
        receiver.resolutionBegan(None)
        for address in self.table.get(host, []):
            receiver.addressResolved(address)
        receiver.resolutionComplete()


def reactor_with(table):
    reactor = MemoryReactorClock()
    reactor.nameResolver = Resolver(table)
    return reactor


def result(d):
    out = []
    d.addBoth(out.append)
    return out[0]


LOCALHOST = {"localhost": [IPv6Address("TCP", "::1", 0), IPv4Address("TCP", "127.0.0.1", 0)]}


def test_host_cache_prefers_ipv4_and_caches_for_ttl():
    """A name is looked up once per TTL; IPv4 answers come first."""
    reactor = reactor_with(LOCALHOST)
    cache = HostCache(reactor, ttl=30)
    assert result(cache.resolve("localhost")) == "127.0.0.1"
    reactor.advance(29)
    assert result(cache.resolve("localhost")) == "127.0.0.1"
    assert reactor.nameResolver.lookups == 1
    reactor.advance(1)
    cache.resolve("localhost")
    assert reactor.nameResolver.lookups == 2


def test_host_cache_ip_literal_not_looked_up():
    """IP literals need no resolution."""
    reactor = reactor_with({})
    assert result(HostCache(reactor, 30).resolve("2001:db8::1")) == "2001:db8::1"
    assert reactor.nameResolver.lookups == 0


def test_unknown_host_fails():
    """A name without addresses fails with DNSLookupError."""
    failure = result(HostCache(reactor_with({}), 30).resolve("nowhere.invalid"))
    assert failure.check(DNSLookupError)


class HeldResolver:
    """A resolver whose lookups finish when the test says so."""

    def __init__(self):
        self.receivers = []

    def resolveHostName(
        self, receiver, host, portNumber=0, addressTypes=None, transportSemantics="TCP"
    ):
        self.receivers.append(receiver)

    def finish(self, *addresses):
        receiver = self.receivers.pop(0)
        for address in addresses:
            receiver.addressResolved(address)
        receiver.resolutionComplete()


def test_concurrent_lookups_of_one_name_share_a_query():
    """Requests for a name being looked up wait for that one lookup, success or failure."""
    reactor = MemoryReactorClock()
    reactor.nameResolver = HeldResolver()
    cache = HostCache(reactor, 30)
    first, second = cache.resolve("db.example"), cache.resolve("db.example")
    assert len(reactor.nameResolver.receivers) == 1
    reactor.nameResolver.finish(IPv4Address("TCP", "192.0.2.7", 0))
    assert result(first) == result(second) == "192.0.2.7"
    reactor.advance(30)
    failing = [cache.resolve("db.example"), cache.resolve("db.example")]
    reactor.nameResolver.finish()
    assert all(result(d).check(DNSLookupError) for d in failing)
    cache.resolve("db.example")
    assert len(reactor.nameResolver.receivers) == 1  # a failure is not cached


def test_fixed_and_host_origins():
    """IP origins lease their address; host origins lease the resolved one."""
    cache = HostCache(reactor_with(LOCALHOST), 30)
    assert result(FixedOrigin("192.0.2.1").pick("c")).host == "192.0.2.1"
    assert result(HostOrigin("localhost", cache).pick("c")).host == "127.0.0.1"


def balancer(algorithm, weights=(2, 1), health_check=None):
    spec = {
        "algorithm": algorithm,
        "origins": [{"address": f"192.0.2.{n + 1}", "weight": w} for n, w in enumerate(weights)],
        "health_check": health_check,
    }
    return LoadBalancer(spec, HostCache(reactor_with({}), 30))


def test_round_robin_respects_weights_smoothly():
    """Weights 2:1 give the sequence a, b, a: spread, not bunched."""
    lb = balancer("round_robin")
    picks = [result(lb.pick("c")).host for _ in range(6)]
    assert picks == ["192.0.2.1", "192.0.2.2", "192.0.2.1"] * 2


def test_least_connections_counts_leases():
    """The origin with the fewest live leases per weight is chosen; release frees."""
    lb = balancer("least_connections", weights=(1, 1))
    first = result(lb.pick("c"))
    second = result(lb.pick("c"))
    assert {first.host, second.host} == {"192.0.2.1", "192.0.2.2"}
    first.release()
    first.release()  # releasing twice counts once
    assert result(lb.pick("c")).host == first.host
    assert [b.active for b in lb.backends] == [1, 1]


def test_source_hash_is_stable_per_client():
    """The same client address always lands on the same origin."""
    lb = balancer("source_hash", weights=(1, 1, 1))
    hosts = {result(lb.pick("198.51.100.7")).host for _ in range(5)}
    assert len(hosts) == 1
    spread = Counter(result(lb.pick(f"198.51.100.{n}")).host for n in range(60))
    assert len(spread) == 3


def test_unhealthy_origin_skipped_and_all_down_uses_all():
    """Unhealthy origins are not picked, unless every origin is unhealthy."""
    lb = balancer("round_robin", weights=(1, 1))
    lb.backends[0].healthy = False
    assert {result(lb.pick("c")).host for _ in range(4)} == {"192.0.2.2"}
    lb.backends[1].healthy = False
    assert {result(lb.pick("c")).host for _ in range(4)} == {"192.0.2.1", "192.0.2.2"}


CHECK = {"interval": 5, "timeout": 2, "unhealthy_threshold": 2, "healthy_threshold": 2}


def run_checks(reactor, outcomes):
    """Answer the pending probes in order: True accepts, False refuses."""
    probes = reactor.tcpClients[-len(outcomes) :]
    for (_, _, factory, _, _), ok in zip(probes, outcomes):
        if ok:
            factory.buildProtocol(None)
        else:
            factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))


def test_health_check_takes_origin_out_and_back():
    """Failed probes past the threshold mark an origin down; passes bring it back."""
    reactor = reactor_with({})
    lb = balancer("round_robin", weights=(1, 1), health_check=CHECK)
    checker = HealthChecker(reactor, lb, 17000, HostCache(reactor, 30))
    checker.start()
    assert [(c[0], c[1], c[3]) for c in reactor.tcpClients] == [
        ("192.0.2.1", 17000, 2),
        ("192.0.2.2", 17000, 2),
    ]
    run_checks(reactor, [False, True])
    assert lb.backends[0].healthy
    reactor.advance(5)
    run_checks(reactor, [False, True])
    assert not lb.backends[0].healthy and lb.backends[1].healthy
    reactor.advance(5)
    run_checks(reactor, [True, True])
    assert not lb.backends[0].healthy
    reactor.advance(5)
    run_checks(reactor, [True, True])
    assert lb.backends[0].healthy
    checker.stop()


def test_probe_still_running_is_not_doubled():
    """An origin whose probe has not finished is not probed again."""
    reactor = reactor_with({})
    lb = balancer("round_robin", weights=(1,), health_check=CHECK)
    checker = HealthChecker(reactor, lb, 17000, HostCache(reactor, 30))
    checker.start()
    reactor.advance(5)
    assert len(reactor.tcpClients) == 1
    checker.stop()


@pytest.mark.parametrize("streak", [[False], [False, True, False]])
def test_failures_must_be_consecutive(streak):
    """A single failure, or failures broken by a pass, leave an origin healthy."""
    lb = balancer("round_robin", weights=(1,))
    for ok in streak:
        lb.backends[0].record(ok, healthy_threshold=2, unhealthy_threshold=2)
    assert lb.backends[0].healthy


def test_pick_excludes_tried_origins():
    """A retry never goes back to an origin that already failed, unless none is left."""
    lb = balancer("round_robin", weights=(1, 1))
    first = result(lb.pick("c"))
    assert result(lb.pick("c", exclude=[first.backend])).host != first.host
    everything = [b for b in lb.backends]
    assert result(lb.pick("c", exclude=everything)).host in {"192.0.2.1", "192.0.2.2"}
    assert lb.attempts == 2 and FixedOrigin("192.0.2.1").attempts == 1
