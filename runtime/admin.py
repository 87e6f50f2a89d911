# -*- test-case-name: tests.runtime.test_runtime_admin -*-
"""The admin API (twisted.web, JSON): read and replace the document, status, metrics.

  GET  /healthz      {"status": "ok"}
  GET  /v1/config    {"generation": N, "config": DOCUMENT}
  PUT  /v1/config    If-Match: N, body DOCUMENT -> 200 {"generation": N+1, "changes"}
                     400 malformed JSON, 428 If-Match missing, 409 If-Match not
                     the current generation, 413 body over MAX_BODY, 422 invalid document,
                     500 a listener could not be bound (or the document saved,
                     or a worker failed): rolled back, {"error", "failed": [...]};
                     503 while stopping
  POST /v1/restart   a new process takes every socket over -> 200 {"pid", "previous"}
                     once it serves; 500 {"error"} when it did not (this one serves
                     on); 409 while a restart is under way
  GET  /v1/status    listeners, open connections/sessions, counters per rule;
                     with workers, each worker and the counters summed over them
  GET  /metrics      Prometheus text format

  GET  /readyz       200 {"status": "ready"} once a document is served (and,
                     in a fleet, caught up with etcd); 503 otherwise

On a unix socket (created mode 0600) the file permissions are the access
control. Over TCP (with TLS when given a certificate) every path but the
probes /healthz and /readyz needs the bearer token, checked from the headers
before any byte of a body is kept; the probes reveal nothing else. At most 64
connections at once (16 from one address), idle ones closed after 10 s, every
one after 120 s.
"""

import hmac
import io
import json
import os
import socket
import stat
from pathlib import Path

from twisted.internet import defer
from twisted.logger import Logger
from twisted.protocols import policies
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web import server
from twisted.web.resource import Resource

from l4plan.runtime.document import DocumentError, parse_json
from l4plan.runtime.idle import Idle
from l4plan.runtime.reconcile import ReconcileError

log = Logger()

MAX_BODY = 8 * 1024 * 1024
MAX_CONNECTIONS = 64  # admin connections open at once; more are closed at once
MAX_PER_PEER = 16  # of those, from one client address (TCP)
IDLE_TIMEOUT = 10  # seconds an admin connection may send nothing
CONNECTION_DEADLINE = 120  # seconds an admin connection may last, whatever it sends


def listen(reactor, endpoint, site, tls=None, inherited=None):
    """Open the admin endpoint (over TLS with ``tls``, a context factory); a
    unix socket is never reachable by others, even briefly. ``inherited`` is
    its socket, already listening: handed over by a restart, or by systemd."""
    bounded = Bounded(site, reactor)
    return Endpoint(_listen(reactor, endpoint, bounded, tls, inherited), bounded)


def _listen(reactor, endpoint, site, tls, inherited):
    if inherited is not None:
        if tls is not None:
            site = TLSMemoryBIOFactory(tls, False, site)
        with inherited:  # the reactor keeps its own copy
            return reactor.adoptStreamPort(inherited.fileno(), inherited.family, site)
    if endpoint[0] == "tcp" and tls is not None:
        return reactor.listenSSL(endpoint[2], site, tls, interface=endpoint[1])
    if endpoint[0] == "tcp":
        return reactor.listenTCP(endpoint[2], site, interface=endpoint[1])
    path = Path(endpoint[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_socket(path)
    old_mask = os.umask(0o177)  # the socket file is born 0600, not chmod-ed afterwards
    try:
        return reactor.listenUNIX(str(path), site, mode=0o600)
    finally:
        os.umask(old_mask)


def _remove_stale_socket(path):
    """Remove the socket file of a runtime that died (nothing accepts on it).

    A live runtime's socket is left, so the bind fails. Probing beats a pid
    lock file: a killed runtime may linger as a zombie, its pid still taken,
    but its socket is closed at once.
    """
    try:
        if not stat.S_ISSOCK(path.stat().st_mode):
            return
    except FileNotFoundError:
        return
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()


class Bounded(policies.WrappingFactory):
    """The admin site behind bounds, so idle or dripping clients cannot take the
    runtime's descriptors or hold the API: at most ``limit`` connections at once
    and ``per_peer`` from one TCP address (more are closed at once), each ended
    after ``deadline`` seconds; the site's own timeout ends idle ones sooner."""

    def __init__(self, site, reactor, limit=MAX_CONNECTIONS, per_peer=MAX_PER_PEER, deadline=CONNECTION_DEADLINE):
        super().__init__(site)
        self.reactor = reactor
        self.limit = limit
        self.per_peer = per_peer
        self.deadline = deadline
        self._deadlines = {}
        self._peers = {}
        self._idle = Idle(self.protocols)

    def buildProtocol(self, addr):
        peer = getattr(addr, "host", None)  # None on a unix socket: its mode guards it
        if len(self.protocols) >= self.limit or (peer and self._peers.get(peer, 0) >= self.per_peer):
            return None
        protocol = super().buildProtocol(addr)
        protocol.peer = peer
        self._peers[peer] = self._peers.get(peer, 0) + 1
        return protocol

    def registerProtocol(self, protocol):
        super().registerProtocol(protocol)
        self._deadlines[protocol] = self.reactor.callLater(
            self.deadline, protocol.transport.abortConnection
        )

    def unregisterProtocol(self, protocol):
        super().unregisterProtocol(protocol)
        left = self._peers.pop(protocol.peer, 1) - 1
        if left:
            self._peers[protocol.peer] = left
        deadline = self._deadlines.pop(protocol, None)
        if deadline is not None and deadline.active():
            deadline.cancel()
        self._idle.check()

    def wait_idle(self):
        """A Deferred that fires when no admin connection is left."""
        return self._idle.wait()


class Endpoint:
    """The admin API's listening ``port`` and the ``bounded`` site behind it."""

    def __init__(self, port, bounded):
        self.port = port
        self.bounded = bounded

    def fileno(self):
        return self.port.fileno()

    def hand_over(self):
        """The next process serves the socket now: stop reading it here
        (closing it would remove a unix socket's file); a Deferred that fires
        once this process's admin connections have ended."""
        self.port.stopReading()
        return self.bounded.wait_idle()


def make_site(live, token=None, workers=None, fleet=None, ready=lambda: True, restart=None):
    """The admin Site for ``live`` (a ``LiveConfig``); ``token`` is required when
    given, and ``site.guard.token`` changes it (SIGHUP).

    With ``workers`` (``l4plan.runtime.workers.Workers``) a change goes to every
    worker and the status covers them all. With ``fleet`` (the etcd prefix a
    fleet node follows) the document is the fleet's: a PUT is refused.
    ``ready()`` says whether /readyz answers 200. ``restart()`` (a
    ``l4plan.runtime.restart.Restart``) serves POST /v1/restart.
    """
    api = _Api()
    api.putChild(b"healthz", _Health())
    api.putChild(b"readyz", _Ready(ready))
    api.putChild(b"metrics", _Metrics(live, workers))
    version = _Api()
    version.putChild(b"config", _Config(live, workers, fleet))
    version.putChild(b"status", _Status(live, workers))
    if restart is not None:
        version.putChild(b"restart", _Restart(restart))
    api.putChild(b"v1", version)
    site = server.Site(
        api if token is None else _Guard(api, token),
        requestFactory=LimitedRequest,
        timeout=IDLE_TIMEOUT,
    )
    site.guard = site.resource if token is not None else None
    site.noisy = False
    return site


class LimitedRequest(server.Request):
    """A request whose body is kept only when it may be: past ``max_body`` it is
    dropped as it arrives, and without the right token (checked from the
    headers, before any byte of the body) it is never stored at all."""

    max_body = MAX_BODY
    too_large = False
    unauthorized = False
    _received = 0

    def gotLength(self, length):
        guard = getattr(self.channel.site, "guard", None)
        self.unauthorized = guard is not None and not authorized(self, guard.token)
        self.too_large = length is not None and length > self.max_body
        if self.unauthorized or self.too_large:
            self.content = io.BytesIO()  # not a temporary file for a body to be dropped
            return
        server.Request.gotLength(self, length)

    def handleContentChunk(self, data):
        self._received += len(data)
        if self._received > self.max_body:
            self.too_large = True
        if self.too_large or self.unauthorized:
            return
        server.Request.handleContentChunk(self, data)


def authorized(request, token):
    """Whether ``request`` carries the bearer ``token`` (bytes), compared in constant time."""
    scheme, _, given = (request.getHeader(b"authorization") or b"").partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token)


def _answer(request, code, body):
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    return json.dumps(body, sort_keys=True).encode() + b"\n"


def _respond(request, outcome):
    """Answer with ``outcome``, a Deferred of the rendered body: at once when it
    has fired (one process), else when it fires (workers answer over sockets)."""
    done, gone = [], []
    outcome.addCallback(done.append)
    if done:
        return done[0]
    request.notifyFinish().addErrback(gone.append)  # the client went away first
    outcome.addCallback(lambda _: gone or _finish(request, done[0]))
    return server.NOT_DONE_YET


def _finish(request, body):
    request.write(body)
    request.finish()


class _Leaf(Resource):
    """A JSON resource: a method it does not serve is a 405 naming those it does."""

    isLeaf = True

    def render(self, request):
        allowed = sorted(name[len("render_"):] for name in dir(self) if name.startswith("render_") and name[7:].isupper())
        if request.method.decode("ascii", "replace") in allowed:
            return Resource.render(self, request)
        request.setHeader(b"allow", ", ".join(allowed).encode())
        return _answer(request, 405, {"error": f"{request.method.decode('ascii', 'replace')} is not allowed here (allowed: {', '.join(allowed)})"})


class _Error(Resource):
    isLeaf = True

    def __init__(self, code, message):
        super().__init__()
        self._code = code
        self._message = message

    def render(self, request):
        if self._code == 401:
            request.setHeader(b"www-authenticate", b'Bearer realm="l4plan"')
        return _answer(request, self._code, {"error": self._message})


class _Api(Resource):
    """A path segment; unknown children are a JSON 404."""

    def getChild(self, name, request):
        return _Error(404, "no such path")


class _Guard(Resource):
    """Lets a request through to ``api`` only with the right bearer token
    (``token``, bytes, replaced when the token file is read again); the
    probes need none."""

    PROBES = (b"healthz", b"readyz")

    def __init__(self, api, token):
        super().__init__()
        self._api = api
        self.token = token.encode()

    def getChildWithDefault(self, name, request):
        if name in self.PROBES or authorized(request, self.token):
            return self._api.getChildWithDefault(name, request)
        return _Error(401, "a valid bearer token is required (Authorization: Bearer TOKEN)")


class _Health(_Leaf):

    def render_GET(self, request):
        return _answer(request, 200, {"status": "ok"})


class _Ready(_Leaf):

    def __init__(self, ready):
        super().__init__()
        self._ready = ready

    def render_GET(self, request):
        if self._ready():
            return _answer(request, 200, {"status": "ready"})
        return _answer(request, 503, {"status": "not ready"})


class _Config(_Leaf):
    """The document: read it, or replace it as a whole (optimistic concurrency)."""

    def __init__(self, live, workers, fleet=None):
        super().__init__()
        self._live = live
        self._change = live.apply_sliced if workers is None else workers.apply
        self._changing = False
        self._fleet = fleet

    def render_GET(self, request):
        request.setHeader(b"etag", str(self._live.generation).encode())
        return _answer(
            request, 200, {"generation": self._live.generation, "config": self._live.document}
        )

    def render_PUT(self, request):
        if not self._live.runtime.running:
            return _answer(request, 503, {"error": "the runtime is stopping"})
        if self._live.held:
            return _answer(request, 503, {"error": self._live.held})
        if self._fleet is not None:
            return _answer(request, 409, {
                "error": f"this runtime follows the fleet under {self._fleet} in etcd; "
                "change it with the fleet provider",
                "generation": self._live.generation,
            })
        if request.too_large:
            return _answer(request, 413, {"error": f"the body is over {MAX_BODY} bytes"})
        try:
            document = parse_json(request.content.read())
        except ValueError as error:
            return _answer(request, 400, {"error": f"the body is not JSON: {error}"})
        if request.getHeader(b"if-match") is None:
            return _answer(
                request,
                428,
                {
                    "error": "If-Match is required: the generation this document replaces (GET /v1/config)",
                    "generation": self._live.generation,
                },
            )
        if self._changing or _if_match(request) != self._live.generation:
            return _answer(
                request,
                409,
                {
                    "error": "If-Match must be the current generation; read GET /v1/config again",
                    "generation": self._live.generation,
                },
            )
        self._changing = True  # until the workers answer: a PUT meanwhile is a 409
        outcome = defer.maybeDeferred(self._change, document)
        outcome.addCallbacks(self._applied, self._failed)
        return _respond(request, outcome.addCallback(lambda answer: _answer(request, *answer)))

    def _applied(self, changes):
        self._changing = False
        return 200, {"generation": self._live.generation, "changes": changes.to_dict()}

    def _failed(self, failure):
        self._changing = False
        if failure.check(DocumentError):
            return 422, {"error": "invalid document", "reasons": failure.value.reasons}
        if failure.check(ReconcileError):
            return 500, {"error": str(failure.value), "failed": failure.value.failed}
        log.failure("PUT /v1/config", failure)  # a bug; the client still gets an answer
        return 500, {"error": failure.getErrorMessage(), "failed": []}


class _Restart(_Leaf):
    """POST: start a new process from the l4plan installed now and hand it every
    socket; the answer comes once it serves (200, its pid) or did not (500, why:
    this process serves on)."""

    def __init__(self, restart):
        super().__init__()
        self._restart = restart

    def render_POST(self, request):
        if self._restart.under_way:
            return _answer(request, 409, {"error": "a restart is already under way"})
        request.setHeader(b"connection", b"close")  # this process stops once the answer is out
        outcome = self._restart()
        outcome.addCallbacks(
            lambda pid: (200, {"pid": pid, "previous": os.getpid()}),
            lambda failure: (500, {"error": failure.getErrorMessage()}),
        )
        return _respond(request, outcome.addCallback(lambda answer: _answer(request, *answer)))


def _if_match(request):
    value = (request.getHeader(b"if-match") or b"").strip().strip(b'"')
    return int(value) if value.isdigit() else None


def _listener_status(listener):
    key = listener.key
    return {
        "name": listener.name,
        "protocol": key.protocol,
        "address": key.address,
        "port": key.port,
        "rule": listener.server.route.rule.key,
        "active": listener.active,
    }


class _Status(_Leaf):

    def __init__(self, live, workers):
        super().__init__()
        self._live = live
        self._workers = workers

    def render_GET(self, request):
        runtime = self._live.runtime
        listeners = [_listener_status(listener) for listener in runtime]
        draining = [_listener_status(listener) for listener in runtime.retiring()]
        status = {
            "pid": os.getpid(),  # a restart changes it
            "generation": self._live.generation,
            "listeners": listeners,
            "draining": draining,
            "rules": _served_rules(runtime, listeners + draining),
        }
        merged = _with_workers(self._workers, status)
        return _respond(request, merged.addCallback(lambda s: _answer(request, 200, s)))


def _with_workers(workers, own):
    """A Deferred of ``own``, this process's status, merged with every other
    worker's when there are workers (fired at once when there are none)."""
    return defer.succeed(own) if workers is None else workers.status(own)


def _served_rules(runtime, listeners):
    """Counters of the rules served now, or with connections or sessions still open."""
    served = {listener["rule"] for listener in listeners}
    return {
        key: counters
        for key, counters in runtime.metrics.snapshot().items()
        if key in served or counters["active"]
    }


METRICS = (
    ("opened", "counter", "Connections (TCP) or sessions (UDP) opened"),
    ("active", "gauge", "Connections or sessions open now"),
    ("refused", "counter", "Connections or sessions refused over the limit"),
    ("denied", "counter", "Connections or sessions denied by the IP access rules"),
    ("bytes_in", "counter", "Bytes from clients to origins"),
    ("bytes_out", "counter", "Bytes from origins to clients"),
    ("origin_failures", "counter", "Failed attempts to reach an origin"),
    ("dropped_too_large", "counter", "UDP datagrams dropped: with the passthrough header they no longer fit in one datagram"),
)


def prometheus_text(snapshot, generation):
    """Counters per rule in Prometheus text format 0.0.4.

    Rule keys are APP/PROTOCOL/EDGE_PORT with names the schema restricts to
    [a-z0-9_-], so label values need no escaping.
    """
    lines = [
        "# HELP l4plan_config_generation Generation of the document served",
        "# TYPE l4plan_config_generation gauge",
        f"l4plan_config_generation {generation}",
    ]
    for name, kind, help_text in METRICS:
        metric = f"l4plan_rule_{name}_total" if kind == "counter" else f"l4plan_rule_{name}"
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}"]
        for key, counters in snapshot.items():
            application, protocol, edge_port = key.split("/", 2)
            labels = f'rule="{key}",application="{application}",protocol="{protocol}",edge_port="{edge_port}"'
            lines.append(f"{metric}{{{labels}}} {counters[name]}")
    return "\n".join(lines) + "\n"


class _Metrics(_Leaf):

    def __init__(self, live, workers):
        super().__init__()
        self._live = live
        self._workers = workers

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
        snapshot, generation = self._live.runtime.metrics.snapshot(), self._live.generation
        own = {"generation": generation, "listeners": [], "draining": [], "rules": snapshot}
        merged = _with_workers(self._workers, own)  # and the rules the other workers serve
        merged.addCallback(lambda status: prometheus_text(status["rules"], generation).encode())
        return _respond(request, merged)
