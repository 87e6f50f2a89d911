# -*- test-case-name: tests.runtime.test_runtime_origins -*-
"""Where a new connection or session goes: an IP, a host name, or a load balancer.

Every origin answers ``pick(client_ip, exclude)`` with a Deferred ``Lease``: the
IP address to reach and a ``release`` to call when the connection or session
ends (what least_connections counts). ``attempts`` says how many different
choices a failed TCP connect may try (HAProxy's redispatch): one, except for
a load balancer. The origin port is not chosen here: it comes from the rule's
port mapping.
"""

import ipaddress
import zlib
from dataclasses import dataclass, field
from typing import Callable

from twisted.internet import defer, error, protocol
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IResolutionReceiver
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

log = Logger()


class SelfConnection(error.ConnectError):
    """The origin is one of this runtime's own listeners: one client would chain
    connections through it until every file descriptor is taken."""

    def __init__(self, host, port):
        super().__init__(string=f"{host}:{port} is this runtime's own listener; refused")


def not_own(protocol, host, port):
    """The ``RelayFactory`` default: no address is the runtime's own."""
    return False


@dataclass(frozen=True)
class Lease:
    """An origin address chosen for one connection or session."""

    host: str
    release: Callable[[], None] = field(default=lambda: None)
    backend: object = None  # what to exclude when trying again


def _is_ip(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@implementer(IResolutionReceiver)
class _Collect:
    """Gathers the addresses of one resolution into a Deferred list."""

    def __init__(self):
        self.addresses = []
        self.done = defer.Deferred()

    def resolutionBegan(self, resolution):
        pass

    def addressResolved(self, address):
        self.addresses.append(address)

    def resolutionComplete(self):
        self.done.callback(self.addresses)


class HostCache:
    """Host names resolved with the reactor's resolver and kept ``ttl`` seconds.

    The reactor's resolver (getaddrinfo) does not report DNS TTLs, so one TTL
    applies to every name. IPv4 answers are preferred, then IPv6. Requests
    for a name already being looked up wait for that lookup (a burst of new
    connections makes one query, not one each).
    """

    def __init__(self, reactor, ttl):
        self._reactor = reactor
        self._ttl = ttl
        self._entries = {}
        self._waiting = {}  # host -> Deferreds waiting for the lookup in flight

    def resolve(self, host):
        """A Deferred IP address string for ``host``."""
        if _is_ip(host):
            return defer.succeed(host)
        cached = self._entries.get(host)
        if cached and cached[0] > self._reactor.seconds():
            return defer.succeed(cached[1])
        if host in self._waiting:
            waiter = defer.Deferred()
            self._waiting[host].append(waiter)
            return waiter
        self._waiting[host] = []
        receiver = _Collect()
        self._reactor.nameResolver.resolveHostName(
            receiver, host, addressTypes=[IPv4Address, IPv6Address]
        )
        return receiver.done.addCallback(self._store, host).addBoth(self._wake, host)

    def _store(self, addresses, host):
        if not addresses:
            raise error.DNSLookupError(host)
        address = sorted(addresses, key=lambda a: isinstance(a, IPv6Address))[0].host
        self._entries[host] = (self._reactor.seconds() + self._ttl, address)
        return address

    def _wake(self, result, host):
        for waiter in self._waiting.pop(host):
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)
        return result


class FixedOrigin:
    """An origin given as an IP address."""

    attempts = 1

    def __init__(self, host):
        self.host = host

    def pick(self, client_ip, exclude=()):
        return defer.succeed(Lease(self.host))


class HostOrigin:
    """A domain or object-storage host, resolved at connect time."""

    attempts = 1

    def __init__(self, host, hosts):
        self.host = host
        self._hosts = hosts

    def pick(self, client_ip, exclude=()):
        return self._hosts.resolve(self.host).addCallback(Lease)


class Backend:
    """One origin of a load balancer with its health and load."""

    def __init__(self, address, weight):
        self.address = address
        self.weight = weight
        self.healthy = True
        self.active = 0
        self.current = 0  # smooth weighted round-robin state
        self._streak = 0  # consecutive results against the current health

    def acquire(self):
        """Count one more connection or session; the returned callable ends it, once."""
        self.active += 1
        released = []

        def release():
            if not released:
                released.append(True)
                self.active -= 1

        return release

    def record(self, ok, healthy_threshold, unhealthy_threshold):
        """Count one check; flip health after enough results in a row."""
        if ok == self.healthy:
            self._streak = 0
            return
        self._streak += 1
        if self._streak >= (healthy_threshold if ok else unhealthy_threshold):
            self.healthy, self._streak = ok, 0
            log.info(
                "origin {address} is now {state}",
                address=self.address,
                state="healthy" if ok else "unhealthy",
            )


def _round_robin(backends, client_ip):
    """Smooth weighted round-robin (as nginx): even spread, weights respected."""
    total = sum(b.weight for b in backends)
    for backend in backends:
        backend.current += backend.weight
    best = max(backends, key=lambda b: b.current)
    best.current -= total
    return best


def _least_connections(backends, client_ip):
    return min(backends, key=lambda b: b.active / b.weight)


def _source_hash(backends, client_ip):
    slots = [b for b in backends for _ in range(b.weight)]
    return slots[zlib.crc32(client_ip.encode()) % len(slots)]


ALGORITHMS = {
    "round_robin": _round_robin,
    "least_connections": _least_connections,
    "source_hash": _source_hash,
}


class LoadBalancer:
    """Weighted origins chosen by the declared algorithm among healthy ones.

    When every origin is unhealthy all of them are candidates again (as nginx
    does): a wrong health verdict should not turn into a certain failure.
    """

    def __init__(self, spec, hosts):
        self.backends = [Backend(o["address"], o["weight"]) for o in spec["origins"]]
        self.health_check = spec["health_check"]
        self._choose = ALGORITHMS[spec["algorithm"]]
        self._hosts = hosts

    @property
    def attempts(self):
        return len(self.backends)

    def pick(self, client_ip, exclude=()):
        """Choose among healthy origins not in ``exclude`` (else any not excluded)."""
        untried = [b for b in self.backends if b not in exclude] or self.backends
        candidates = [b for b in untried if b.healthy] or untried
        backend = self._choose(candidates, client_ip)
        release = backend.acquire()
        d = self._hosts.resolve(backend.address)
        d.addErrback(_release_on_failure, release)
        return d.addCallback(Lease, release, backend)


def _release_on_failure(failure, release):
    release()
    return failure


class _Probe(protocol.Protocol):
    def connectionMade(self):
        self.transport.abortConnection()


class _ProbeFactory(protocol.ClientFactory):
    """A TCP connect check: success is an accepted connection."""

    protocol = _Probe
    noisy = False

    def __init__(self):
        self.result = defer.Deferred()

    def buildProtocol(self, addr):
        self.result.callback(True)
        return protocol.ClientFactory.buildProtocol(self, addr)

    def clientConnectionFailed(self, connector, reason):
        self.result.callback(False)


class HealthChecker:
    """Active TCP checks of a load balancer's origins on one origin port.

    Health is kept per origin address, so it is probed on one port: the
    lowest origin port any TCP rule maps to this load balancer. A load
    balancer used by UDP rules only has no TCP port to probe and no checks.
    """

    def __init__(self, reactor, balancer, port, hosts):
        self._reactor = reactor
        self._balancer = balancer
        self._port = port
        self._hosts = hosts
        self._pending = set()
        self._loop = LoopingCall(self.check_all)
        self._loop.clock = reactor

    def start(self):
        self._loop.start(self._balancer.health_check["interval"], now=True)

    def stop(self):
        if self._loop.running:
            self._loop.stop()

    def check_all(self):
        for backend in self._balancer.backends:
            if backend not in self._pending:
                self._pending.add(backend)
                self._check(backend).addBoth(lambda _, b=backend: self._pending.discard(b))

    def _check(self, backend):
        spec = self._balancer.health_check
        d = self._hosts.resolve(backend.address)
        d.addCallback(self._connect, spec["timeout"])
        d.addErrback(lambda _: False)
        d.addCallback(backend.record, spec["healthy_threshold"], spec["unhealthy_threshold"])
        return d

    def _connect(self, ip, timeout):
        factory = _ProbeFactory()
        self._reactor.connectTCP(ip, self._port, factory, timeout=timeout)
        return factory.result
