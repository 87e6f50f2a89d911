# -*- test-case-name: tests.fleet -*-
"""Fleet membership: the desired document from etcd, served here, and this node's report.

The node reads ``PREFIX desired`` in full, reconciles it with the same
zero-downtime reconcile a PUT uses, then watches the key from the revision
it read + 1. Whenever the watch ends — etcd restarted, a member gone, a
compaction — it reads in full again and watches from there, so it never
skips a change and never moves forward on a guess (APISIX lost events by
resuming a watch after a timeout, apache/apisix#13067). A document equal to
the one served is not applied again, so a re-read touches no listener.

The node's report, ``PREFIX nodes/NAME``, is bound to a lease the node keeps
alive: a dead node's report disappears within the lease's TTL. While etcd is
away the node serves what it last applied (persisted in its data dir) and
retries with backoff and jitter.

etcd speaks JSON over HTTP here (its v3 gateway: keys and values base64,
int64 as strings, zero values left out), through twisted.web's client.
"""

import base64
import gzip
import hashlib
import json
import random
import time
from io import BytesIO

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from l4plan.runtime.document import DocumentError, parse_json
from l4plan.runtime.reconcile import ReconcileError

log = Logger()

GZIP_MAGIC = b"\x1f\x8b"
RETRY_FIRST, RETRY_MAX = 0.5, 10.0
CONNECT_TIMEOUT = 5


class EtcdUnavailable(Exception):
    """No endpoint answered, or etcd answered with an error."""


def _b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def _unb64(text):
    return base64.b64decode(text or "")


def decode_value(value):
    """The JSON bytes of a stored document (stored gzipped, or as plain JSON)."""
    return gzip.decompress(value) if value.startswith(GZIP_MAGIC) else value


class Gateway:
    """Calls to etcd's JSON gateway, moving to the next endpoint when one fails."""

    def __init__(self, reactor, endpoints, tls=None):
        """``tls`` is an IPolicyForHTTPS for ``https://`` endpoints (tls.ClientPolicy)."""
        options = {} if tls is None else {"contextFactory": tls}
        self.agent = Agent(reactor, connectTimeout=CONNECT_TIMEOUT, **options)
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self._current = 0

    @property
    def endpoint(self):
        return self.endpoints[self._current]

    def _post(self, path, body):
        request = self.agent.request(
            b"POST",
            f"{self.endpoint}/v3/{path}".encode(),
            Headers({b"content-type": [b"application/json"]}),
            FileBodyProducer(BytesIO(json.dumps(body).encode())),
        )
        return request.addErrback(self._failed)

    def _failed(self, failure):
        if failure.check(EtcdUnavailable):
            return failure
        endpoint = self.endpoint
        self._current = (self._current + 1) % len(self.endpoints)
        raise EtcdUnavailable(f"{endpoint}: {failure.getErrorMessage()}")

    @defer.inlineCallbacks
    def call(self, path, body):
        """The JSON answer of ``POST /v3/PATH``."""
        response = yield self._post(path, body)
        data = yield readBody(response).addErrback(self._failed)
        answer = json.loads(data or b"{}")
        if response.code != 200:
            raise EtcdUnavailable(f"{self.endpoint}: {answer.get('message') or response.code}")
        return answer

    @defer.inlineCallbacks
    def watch(self, keys, start_revision, on_result):
        """Watch ``keys`` (a range request: key, range_end) from
        ``start_revision``, calling ``on_result(result)`` for each message;
        fires when the stream ends, whatever ended it."""
        request = {"create_request": {**keys, "start_revision": str(start_revision)}}
        response = yield self._post("watch", request)
        if response.code != 200:
            raise EtcdUnavailable(f"{self.endpoint}: watch answered {response.code}")
        ended = defer.Deferred()
        response.deliverBody(_Messages(on_result, ended))
        yield ended


class _Messages(Protocol):
    """The watch stream: one JSON object per line; ``on_result`` returning
    False (or an error message) ends it."""

    def __init__(self, on_result, ended):
        self._on_result, self._ended, self._buffer = on_result, ended, b""

    def dataReceived(self, data):
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in filter(None, (one.strip() for one in lines)):
            message = json.loads(line)
            if "result" not in message or self._on_result(message["result"]) is False:
                self.transport.stopProducing()
                return

    def connectionLost(self, reason):
        self._ended.callback(None)


class FleetMember(Service):
    """This runtime as node ``node`` of the fleet under ``prefix``.

    ``apply(document)`` is how a change is made here (a Deferred of the
    reconcile's Changes); ``live`` is the LiveConfig that tells what is served.
    """

    def __init__(self, reactor, gateway, prefix, node, live, apply, version, lease_ttl=10.0):
        self.reactor = reactor
        self.gateway = gateway
        self.desired_key = prefix + "desired"
        self.canary_key = prefix + "canary"
        # Both keys in one range ("canary" sorts before "desired"), read and watched together.
        self._keys = {"key": _b64(self.canary_key), "range_end": _b64(self.desired_key + "\0")}
        self._kvs = {}
        self.report_key = f"{prefix}nodes/{node}"
        self.node = node
        self.live = live
        live.on_release(self._resume)
        self._apply = apply
        self.version = version
        self.lease_ttl = lease_ttl
        self.lease = None
        self.revision = 0  # of the key last served, desired or canary (applied, or equal)
        self.digest = None
        self.status, self.error = "ok", None
        self.caught_up = False
        self._wanted = None  # (revision, digest, document) not yet applied
        self._applying = False
        self._retry = RETRY_FIRST
        self._keeper = task.LoopingCall(self._keep_alive)
        self._keeper.clock = reactor
        self._stopped = False

    def startService(self):
        Service.startService(self)
        self._keeper.start(self.lease_ttl / 3, now=False)
        self._follow()

    def stopService(self):
        self._stopped = True
        if self._keeper.running:
            self._keeper.stop()
        Service.stopService(self)
        if self.lease is not None:
            return self.gateway.call("lease/revoke", {"ID": self.lease}).addErrback(lambda _: None)

    # --- following the desired document -------------------------------------

    def _follow(self):
        """Read in full, then watch; once the watch ends, again (after a pause on errors)."""
        if self._stopped:
            return
        following = self._read_and_watch()
        following.addCallbacks(self._watch_ended, self._unavailable)

    @defer.inlineCallbacks
    def _read_and_watch(self):
        if self.lease is None:
            yield self._grant()
        answer = yield self.gateway.call("kv/range", self._keys)
        revision = int(answer["header"]["revision"])
        self._kvs = {_unb64(kv["key"]).decode(): kv for kv in answer.get("kvs") or []}
        if not self._choose():
            yield self._report()
        self.caught_up = True
        self._retry = RETRY_FIRST
        yield self.gateway.watch(self._keys, revision + 1, self._watched)

    def _watch_ended(self, _):
        self.caught_up = False
        self.reactor.callLater(0, self._follow)

    def _unavailable(self, failure):
        self.caught_up = False
        delay = self._retry * random.uniform(0.5, 1.5)
        self._retry = min(self._retry * 2, RETRY_MAX)
        log.info("etcd: {error}; serving generation {generation}, retrying in {delay:.1f} s",
                 error=failure.getErrorMessage(), generation=self.live.generation, delay=delay)
        self.reactor.callLater(delay, self._follow)

    def _watched(self, result):
        """Take the watched changes; False ends the watch (etcd canceled it,
        on a compaction), and the full re-read that follows catches up."""
        if result.get("canceled") or result.get("compact_revision"):
            log.info("etcd: the watch was canceled (compacted at {revision}); reading in full",
                     revision=result.get("compact_revision"))
            return False
        for event in result.get("events") or []:
            key = _unb64(event["kv"]["key"]).decode()
            if event.get("type", "PUT") == "DELETE":
                self._kvs.pop(key, None)
            else:
                self._kvs[key] = event["kv"]
        self._choose()
        return True

    def _choose(self):
        """Serve the canary's document when this node is one of its nodes, else
        the desired one; False when etcd holds neither."""
        canary, desired = self._kvs.get(self.canary_key), self._kvs.get(self.desired_key)
        try:
            if canary is not None:
                value = parse_json(decode_value(_unb64(canary.get("value"))))
                if self.node in value["nodes"]:
                    self._want(int(canary.get("mod_revision", 0)), value["hash"], value["document"])
                    return True
            if desired is None:
                return False
            data = decode_value(_unb64(desired.get("value")))
            self._want(int(desired.get("mod_revision", 0)), hashlib.sha256(data).hexdigest(), parse_json(data))
        except (OSError, EOFError, ValueError, KeyError, TypeError) as error:
            self._wanted = None
            revision = int((desired or canary or {}).get("mod_revision", 0))
            self._settle(revision, None, "error", f"the desired document cannot be read: {error}")
        return True

    def _want(self, revision, digest, document):
        """Serve ``document`` next, in order."""
        self._wanted = (revision, digest, document)
        if not self._applying:
            self._apply_wanted()

    def _apply_wanted(self):
        if self._wanted is None or self.live.held:
            return  # held by a restart: the next process serves it, or this one once released
        revision, digest, document = self._wanted
        self._wanted = None
        if document == self.live.document:
            self._settle(revision, digest, "ok", None)
            return self._apply_wanted()
        self._applying = True
        applying = defer.maybeDeferred(self._apply, document)
        applying.addCallbacks(
            lambda _: self._settle(revision, digest, "ok", None),
            lambda failure: self._settle(revision, digest, "error", _what_failed(failure)),
        )
        applying.addBoth(self._applied)

    def _resume(self):
        if not self._applying:
            self._apply_wanted()

    def _applied(self, _):
        self._applying = False
        self._apply_wanted()

    def _settle(self, revision, digest, status, error):
        self.revision, self.digest, self.status, self.error = revision, digest, status, error
        if error:
            log.info("fleet: revision {revision} refused: {error}", revision=revision, error=error)
        self._report().addErrback(lambda _: None)

    # --- the report -----------------------------------------------------------

    def report(self):
        """What this node tells the fleet (``PREFIX nodes/NAME``)."""
        runtime = self.live.runtime
        listeners = runtime.listeners()
        return {
            "node": self.node,
            "revision": self.revision,
            "hash": self.digest,
            "status": self.status,
            "error": self.error,
            "generation": self.live.generation,
            "listeners": len(listeners),
            "open_connections": sum(one.active for one in listeners.values()),
            # Rules with connections or sessions open now, for a plan's live impact.
            "active": {k: c["active"] for k, c in runtime.metrics.snapshot().items() if c["active"]},
            "version": self.version,
            "last_seen": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _report(self):
        if self.lease is None:
            return defer.succeed(None)
        put = {"key": _b64(self.report_key), "value": _b64(json.dumps(self.report())), "lease": self.lease}
        return self.gateway.call("kv/put", put)

    @defer.inlineCallbacks
    def _grant(self):
        """A new lease for this node's report."""
        grant = yield self.gateway.call("lease/grant", {"TTL": int(self.lease_ttl)})
        self.lease = grant["ID"]

    @defer.inlineCallbacks
    def _keep_alive(self):
        if self.lease is None:
            return
        try:
            answer = yield self.gateway.call("lease/keepalive", {"ID": self.lease})
        except EtcdUnavailable:
            return  # the watch notices too; the report comes back with it
        if int((answer.get("result") or {}).get("TTL", 0)) <= 0:
            self.lease = None  # expired while etcd was away: a new one, and report again
            try:
                yield self._grant()
                yield self._report()
            except EtcdUnavailable:
                pass
        else:
            yield self._report()


def _what_failed(failure):
    """One line saying why a document was refused (``tcp 127.0.0.3:7000: address already in use``)."""
    error = failure.value
    if isinstance(error, ReconcileError):
        return "; ".join(error.failed) or str(error)
    if isinstance(error, DocumentError):
        return f"invalid document: {'; '.join(error.reasons)}"
    log.failure("fleet: applying the desired document", failure)
    return failure.getErrorMessage()
