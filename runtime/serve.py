# -*- test-case-name: tests.runtime.test_runtime_serve -*-
"""The runtime process: listeners built from a document, a clean shutdown.

Every listener is a service under one ``Runtime`` (a MultiService), keyed by
(protocol, address, port). Stopping the runtime stops accepting everywhere,
ends UDP sessions (their edge socket is gone, replies could not leave), and
lets TCP connections finish for the drain timeout before aborting them.
"""

import gc
import importlib.metadata
import ipaddress
import json
import os
import signal
import socket
import sys
from pathlib import Path

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from l4plan.runtime import admin as admin_api
from l4plan.runtime import fleet, handover, logs, systemd
from l4plan.runtime import reactor as relay_reactor
from l4plan.runtime.limits import UNLIMITED, FdBudget, raise_soft_limit
from l4plan.runtime.metrics import Metrics
from l4plan.runtime.origins import HealthChecker, HostCache
from l4plan.runtime.reconcile import LiveConfig
from l4plan.runtime.restart import Restart
from l4plan.runtime.routes import ListenerKey, compile_document
from l4plan.runtime.tcp import PIPES, RelayFactory
from l4plan.runtime.tls import ClientPolicy, ReloadableTls, TlsError
from l4plan.runtime.udp import MAX_DATAGRAM, UdpRelay
from l4plan.runtime.workers import Workers, by_worker, watch_main

log = Logger()

BACKLOG = 1024


def _is_ipv6_wildcard(address):
    return ipaddress.ip_address(address) == ipaddress.IPv6Address("::")


def _bound_socket(address, port, kind, reuse_port):
    """A bound (for TCP, listening) socket. On [::] it leaves IPv4 to --bind
    (Linux makes [::] dual-stack); with ``reuse_port`` the processes of
    `serve --workers N` share it and the kernel spreads clients over them."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if _is_ipv6_wildcard(address):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise CannotListenError(address, port, exc) from exc
    return sock


def listen(reactor, key, server, reuse_port=False, inherited=None):
    """Open the listener ``key`` for ``server`` (a factory, or a datagram protocol).

    ``inherited`` is the socket of ``key`` the process before this one handed
    over (a restart): it is served as it is. Otherwise the reactor opens the
    socket itself unless it needs an option Twisted does not set:
    IPV6_V6ONLY on [::], SO_REUSEPORT for workers.
    """
    if inherited is None and not reuse_port and not _is_ipv6_wildcard(key.address):
        if key.protocol == "tcp":
            return reactor.listenTCP(key.port, server, backlog=BACKLOG, interface=key.address)
        return reactor.listenUDP(
            key.port, server, interface=key.address, maxPacketSize=MAX_DATAGRAM
        )
    kind = socket.SOCK_STREAM if key.protocol == "tcp" else socket.SOCK_DGRAM
    sock = inherited or _bound_socket(key.address, key.port, kind, reuse_port)
    with sock:  # the reactor keeps its own copy
        if key.protocol == "tcp":
            return reactor.adoptStreamPort(sock.fileno(), sock.family, server)
        return reactor.adoptDatagramPort(
            sock.fileno(), sock.family, server, maxPacketSize=MAX_DATAGRAM
        )


class _Listener(Service):
    """One edge socket serving ``server`` (a factory or a datagram protocol).

    The socket can be bound before the service starts, so a reconcile binds
    every new listener first and changes nothing when one bind fails.
    """

    server = None
    _port = None
    inherited = None  # the socket the process before this one handed over (a restart)
    handed_over = False  # True once a restart gave the socket to the next process

    def bind(self):
        """Open the socket now (once); raises CannotListenError."""
        if self._port is None:
            self._port = listen(self.reactor, self.key, self.server, self.reuse_port, self.inherited)
            self.inherited = None
            self.budget.hold(1)

    def fileno(self):
        """The socket's descriptor, for a restart to hand over."""
        return self._port.fileno()

    def _unlisten(self):
        """Close the socket; the descriptor goes back to the budget. A socket
        handed over is only no longer read here: the next process serves it,
        and Twisted would shut a TCP socket it opened down for both."""
        self.budget.hold(-1)
        if self.handed_over:
            self._port.stopReading()
            return defer.succeed(None)
        return defer.maybeDeferred(self._port.stopListening)

    def _drain(self, idle, expire):
        """``idle`` (a Deferred), or the drain timeout, which calls ``expire()`` first."""
        deadline = self.reactor.callLater(self.drain_timeout, expire)
        return idle.addCallback(lambda _: deadline.active() and deadline.cancel())

    def startService(self):
        self.bind()
        Service.startService(self)

    def use(self, route):
        """Serve ``route`` from now on; open connections and sessions keep theirs."""
        self.server.route = route


class TcpListener(_Listener):
    """A listening TCP socket; stopping it drains its connections."""

    def __init__(self, key, route, reactor, settings, is_own, budget):
        self.key = key
        self.reactor = reactor
        self.reuse_port = settings.reuse_port
        self.drain_timeout = settings.drain_timeout
        self.budget = budget
        self.factory = self.server = RelayFactory(
            route,
            reactor,
            settings.connect_timeout,
            settings.idle_timeout,
            settings.max_connections,
            pipes=PIPES if settings.splice else None,
            is_own=is_own,
            budget=budget,
        )

    @property
    def active(self):
        return len(self.factory.connections)

    def stopService(self):
        Service.stopService(self)
        return self._unlisten().addCallback(lambda _: self._drain_connections())

    def _drain_connections(self):
        if self.factory.connections:
            log.info(
                "{key}: draining {n} connections", key=self.key, n=len(self.factory.connections)
            )
        return self._drain(self.factory.wait_idle(), self._drain_expired)

    def _drain_expired(self):
        log.info("{key}: drain timeout", key=self.key)
        self.abort_connections()

    def abort_connections(self):
        """Abort every connection of this listener (both legs, pending bytes dropped)."""
        if self.factory.connections:
            log.info(
                "{key}: aborting {n} connections", key=self.key, n=len(self.factory.connections)
            )
        for leg in list(self.factory.connections):
            leg.abort()


class UdpListener(_Listener):
    """A UDP edge socket with its session table."""

    def __init__(self, key, route, reactor, settings, is_own, budget):
        self.key = key
        self.reactor = reactor
        self.reuse_port = settings.reuse_port
        self.drain_timeout = settings.drain_timeout
        self.budget = budget
        self.relay = self.server = UdpRelay(
            route, reactor, settings.udp_idle_timeout, settings.max_sessions, is_own, budget
        )

    @property
    def active(self):
        return len(self.relay.sessions)

    def stopService(self):
        """End the sessions now: their replies could not leave once the edge
        socket is closed. After a restart the socket lives on in the next
        process, which reads every new datagram: these sessions still answer
        from it until they idle out, for the drain timeout at most."""
        Service.stopService(self)
        if not self.handed_over:
            self.relay.close_all()
            return self._unlisten()
        return self._unlisten().addCallback(
            lambda _: self._drain(self.relay.wait_idle(), self.relay.close_all)
        )


LISTENERS = {"tcp": TcpListener, "udp": UdpListener}


class Runtime(MultiService):
    """All listeners of one document, their health checks and counters.

    ``fd_limit`` is the process's descriptor limit, of which the listeners,
    connections and sessions share a budget (``FdBudget``)."""

    def __init__(self, reactor, settings, fd_limit=UNLIMITED.limit, inherited=None):
        super().__init__()
        self.reactor = reactor
        self.settings = settings
        self.inherited = dict(inherited or {})  # name -> socket a restart handed over
        self.metrics = Metrics()
        self.budget = FdBudget(fd_limit, settings.max_per_source)
        self.hosts = HostCache(reactor, settings.dns_ttl)
        self._checkers = []
        self._health_checks = []
        self._retiring = {}  # removed listener -> Deferred of the end of its drain

    def load(self, document):
        """Create (not start) the listeners and health checks of ``document``;
        return its ``Compiled`` form, which a reconcile reuses where nothing changed."""
        compiled = compile_document(
            document, self.settings.bind, self.settings.bind6, self.hosts, self.metrics
        )
        for key, route in sorted(compiled.routes.items(), key=lambda item: str(item[0])):
            self.make_listener(key, route).setServiceParent(self)
        self.use_health_checks(compiled.health_checks)
        return compiled

    def make_listener(self, key, route):
        """A listener (not bound, not started) for ``key`` serving ``route``."""
        listener = LISTENERS[key.protocol](
            key, route, self.reactor, self.settings, self.is_own, self.budget
        )
        listener.setName(str(key))
        listener.inherited = self.inherited.pop(listener.name, None)
        return listener

    def close_unused(self):
        """Close the handed-over sockets no listener of the document took."""
        for sock in self.inherited.values():
            sock.close()
        self.inherited.clear()

    def sockets(self):
        """{name: descriptor} of every listener, for a restart to hand over."""
        return {listener.name: listener.fileno() for listener in self}

    def hand_over(self):
        """The next process serves these sockets now: stopping will only stop
        reading them, and UDP sessions will answer until they idle out."""
        for listener in self:
            listener.handed_over = True

    def is_own(self, protocol, host, port):
        """Whether connecting to ``host``:``port`` would reach one of this runtime's
        own listeners (a rule pointing at itself, or at another rule's edge port)."""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        addresses = {str(ip)}
        if ip.is_loopback or ip.is_unspecified:
            addresses |= {"0.0.0.0", "::"}
        if ip.is_unspecified:
            addresses |= {self.settings.bind, self.settings.bind6}
        return any(str(ListenerKey(protocol, a, port)) in self.namedServices for a in addresses)

    def retiring(self):
        """Removed listeners whose connections are still draining."""
        return list(self._retiring)

    def use_health_checks(self, health_checks):
        """Replace the health checkers by ones for ``health_checks`` (balancer, port).

        Origins keep the health found so far (by address), so a reconcile does
        not send traffic to an origin known to be down.
        """
        known = {b.address: b.healthy for lb, _ in self._health_checks for b in lb.backends}
        for lb, _ in health_checks:
            for backend in lb.backends:
                backend.healthy = known.get(backend.address, backend.healthy)
        self._health_checks = health_checks
        for checker in self._checkers:
            checker.stop()
        self._checkers = [
            HealthChecker(self.reactor, lb, port, self.hosts) for lb, port in health_checks
        ]
        if self.running:
            for checker in self._checkers:
                checker.start()

    def listeners(self):
        """The listeners serving now, by key."""
        return {listener.key: listener for listener in self}

    def retire(self, listener):
        """Take ``listener`` out: it stops accepting now, its TCP connections
        drain in the background (UDP sessions end at once)."""
        done = defer.maybeDeferred(listener.disownServiceParent)
        self._retiring[listener] = done
        done.addBoth(self._retired, listener)

    def _retired(self, result, listener):
        del self._retiring[listener]
        return result

    def startService(self):
        super().startService()
        for checker in self._checkers:
            checker.start()

    def stopService(self):
        for checker in self._checkers:
            checker.stop()
        return defer.DeferredList([super().stopService(), *self._retiring.values()])

    def abort_connections(self):
        """End the drain now: abort every TCP connection still open."""
        for listener in [*self, *self._retiring]:
            if isinstance(listener, TcpListener):
                listener.abort_connections()


class SignalHandler:
    """SIGTERM/SIGINT: the first stops the reactor (which drains), the next
    one aborts what is still draining, so an operator never has to kill -9.
    SIGHUP calls ``reload`` (the admin token and TLS files are read again),
    SIGUSR2 ``restart`` (a new process takes the sockets over)."""

    def __init__(self, reactor, runtime, reload=lambda: None, restart=None):
        self._reactor = reactor
        self._runtime = runtime
        self._reload = reload
        self._restart = restart
        self._stopping = False

    def install(self):
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR2):
            signal.signal(signum, self._received)

    def _received(self, signum, frame):
        self._reactor.callFromThread(self.handle, signal.Signals(signum).name)

    def handle(self, name):
        if name == "SIGHUP":
            self._reload()
            return
        if name == "SIGUSR2":
            if self._restart is None:
                log.error("SIGUSR2: this process cannot restart (it is a worker); signal the first one")
            elif not self._stopping:
                self._restart().addErrback(lambda _: None)  # the restart logs why it failed
            return
        if not self._stopping:
            self._stopping = True
            log.info("{name}: stopping; send it again to close open connections now", name=name)
            self._reactor.stop()
        else:
            log.info("{name} again: closing open connections now", name=name)
            self._runtime.abort_connections()


def _fleet_member(reactor, settings, live, workers):
    """This runtime's membership of the fleet in ``settings.etcd``, not started; or None."""
    if not settings.etcd:
        return None
    return fleet.FleetMember(
        reactor,
        fleet.Gateway(
            reactor,
            settings.etcd,
            ClientPolicy(settings.etcd_ca_file, settings.etcd_cert_file, settings.etcd_key_file),
        ),
        settings.etcd_prefix,
        settings.node,
        live,
        live.apply_sliced if workers is None else workers.apply,
        importlib.metadata.version("l4plan"),
        settings.node_ttl,
    )


def _open_admin(reactor, admin, settings, live, token, workers, member, restart, inherited):
    """Serve the admin API on ``admin`` (None: no API), on the ``inherited``
    socket when one was handed over; ``(site, tls, port)``, each None when not
    used (``port`` an ``admin.Endpoint``). Raises TlsError for unusable TLS files."""
    if admin is None:
        return None, None, None
    fleet_prefix = settings.etcd_prefix if member is not None else None
    ready = (lambda: member.caught_up) if member is not None else (lambda: True)
    site = admin_api.make_site(live, token, workers, fleet_prefix, ready, restart)
    tls = None
    if settings.tls_cert and admin[0] == "tcp":
        tls = ReloadableTls(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    return site, tls, admin_api.listen(reactor, admin, site, tls, inherited)


def reload_secrets(settings, site, tls):
    """SIGHUP: read the admin token file and the TLS files again. The old token
    is refused from now on; open connections keep going. A file that cannot be
    used is logged and the old secret kept."""
    if site is not None and site.guard is not None and settings.token_file:
        try:
            token = open(settings.token_file).read().strip()
        except OSError as error:
            token, problem = "", f"cannot read {settings.token_file}: {error.strerror}"
        else:
            problem = f"{settings.token_file} is empty"
        if token:
            site.guard.token = token.encode()
            log.info("SIGHUP: admin token read again from {path}", path=settings.token_file)
        else:
            log.error("SIGHUP: {problem}; the admin token is unchanged", problem=problem)
    if tls is not None:
        try:
            tls.reload()
            log.info("SIGHUP: TLS certificate and key read again")
        except TlsError as error:
            log.error("SIGHUP: {error}; the TLS certificate is unchanged", error=str(error))


def run(settings, reactor=None, out=sys.stdout, admin=None, token=None, parent=None, command=None,
        admin_socket=None):
    """Serve the document in ``settings.data_dir`` until SIGTERM/SIGINT; exit status 0.

    ``admin`` is an endpoint (``settings.parse_endpoint``) for the admin API, which
    needs ``token`` when given. With ``settings.workers`` over 1 this process
    also starts and supervises the other workers, and says "ready" once they
    all serve; ``parent`` is the fd of the unix socket to main when this
    process is one of those workers. ``command`` starts this runtime again for a restart
    (``handover.successor_command()``); without it there is none. Started by a
    restart (``$L4PLAN_HANDOVER``), it serves the sockets handed over and tells
    the old process whether it does. ``admin_socket`` is the admin endpoint's
    socket when systemd opened it (``systemd.listen_fds()``). Raises
    ``l4plan.runtime.document.DocumentError`` for a bad document and
    ``twisted.internet.error.CannotListenError`` when a port is taken.
    """
    successor = handover.Successor.from_environment()
    try:
        return _serve(settings, reactor, out, admin, token, parent, command, successor, admin_socket)
    except Exception as error:
        if successor is not None and not successor.done:
            successor.failed(str(error) or type(error).__name__)
        raise


def _serve(settings, reactor, out, admin, token, parent, command, successor, admin_socket):
    if reactor is None:
        reactor = relay_reactor.install()
    logs.begin(settings.log_file)
    channel = None  # a worker's unix socket to main
    if parent is not None:
        channel = socket.socket(fileno=parent)
        channel.settimeout(handover.TIMEOUT)
        inherited = handover.receive_sockets(channel)
    else:
        inherited = successor.take() if successor is not None else {}
    inherited, for_workers = by_worker(inherited)
    if admin_socket is not None:
        inherited.setdefault("admin", admin_socket)
    if successor is None:
        _write_pid(settings.pid_file)
    runtime = Runtime(reactor, settings, raise_soft_limit(), inherited)
    live = LiveConfig.restore(runtime, settings.data_dir)
    workers = None
    if settings.workers > 1 and parent is None:
        workers = Workers(reactor, live, settings, inherited=for_workers)
    member = _fleet_member(reactor, settings, live, workers)
    # A worker takes part in main's restarts; main restarts when it has a command.
    restart = None
    if parent is not None or command is not None:
        restart = Restart(reactor, live, command, None, lambda: signals.handle("restart"), workers)
    own_restart = restart if command is not None else None
    site, tls, restart_admin = _open_admin(
        reactor, admin, settings, live, token, workers, member, own_restart, inherited.pop("admin", None)
    )
    if restart is not None:
        restart.admin = restart_admin
    runtime.startService()
    runtime.close_unused()
    reactor.addSystemEventTrigger("before", "shutdown", runtime.stopService)
    signals = SignalHandler(
        reactor,
        runtime if workers is None else workers,
        lambda: reload_secrets(settings, site, tls),
        own_restart,
    )
    signals.install()
    for listener in runtime:
        print(f"listening {listener.name}", file=out)
    if admin is not None:
        print(f"admin {':'.join(map(str, admin))}", file=out)
    if workers is not None:
        workers.startService()
        reactor.addSystemEventTrigger("before", "shutdown", workers.stopService)
    if channel is not None:
        watch_main(reactor, channel, lambda: signals.handle("main exited"), restart)
    if member is not None:
        member.startService()
        reactor.addSystemEventTrigger("before", "shutdown", member.stopService)
        print(f"fleet {settings.etcd_prefix} as node {settings.node}", file=out)
    ready = defer.succeed(None) if workers is None else workers.ready
    ready.addCallback(lambda _: _ready(out, settings, successor, parent is None))
    # Start-up objects (modules, schemas) live as long as the process: frozen,
    # they are not traversed by every full collection (34 ms each here).
    gc.collect()
    gc.freeze()
    reactor.run(installSignalHandlers=False)
    print(
        json.dumps({"counters": runtime.metrics.snapshot()}, sort_keys=True), file=out, flush=True
    )
    if restart is None or restart.successor is None:
        _remove_pid(settings.pid_file)
    return 0


def _ready(out, settings, successor, main):
    """Serving: say so on ``out``, and to the process this one replaces, or
    (the main process) to systemd."""
    print("ready", file=out, flush=True)
    if successor is None:
        if main:
            systemd.notify("READY=1")
        return
    _write_pid(settings.pid_file)
    successor.ready()


def _write_pid(path):
    """This process's pid in ``path`` (None: no pid file), replaced at once."""
    if path is not None:
        partial = Path(f"{path}.{os.getpid()}")
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(f"{os.getpid()}\n")
        os.replace(partial, path)


def _remove_pid(path):
    """Remove the pid file when it still names this process."""
    try:
        if path is not None and Path(path).read_text().strip() == str(os.getpid()):
            Path(path).unlink()
    except OSError:
        pass
