# -*- test-case-name: tests.runtime.test_runtime_workers -*-
"""`serve --workers N`: N processes serving the same ports, all reconfigured.

Every edge socket is opened with SO_REUSEPORT, so the kernel spreads new
connections and UDP clients over the processes. The main process is worker 0
and the supervisor: it alone serves the admin API and persists the document
in --data-dir. Child worker K runs `python -m l4plan.runtime.worker` on a
private copy of that document (D/workers/K) with a private admin socket
(D/workers/K.sock, mode 0600), through which main hands it every change.
Its descriptor 3 is a unix socket to main (``MainChannel``): at start it
receives the sockets a restart handed over for it (none otherwise); in a
restart main asks it for its sockets, then tells it they are handed over.

A change is all or nothing: main reconciles first (this validates and binds),
then every child; when one fails, every process goes back to the previous
document. A child that dies, or whose state is unknown after a failure, is
started again with the current document. A child stops, as on SIGTERM, when
that socket closes, so none outlives main, even a killed one.
"""

import io
import json
import os
import shutil
import signal
import socket
import sys
from dataclasses import asdict, replace
from pathlib import Path

from twisted.application.service import Service
from twisted.internet import defer, error, main, protocol
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.logger import Logger
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from l4plan.runtime import handover, twisted_private
from l4plan.runtime.document import APPLIED_FILE, DocumentError
from l4plan.runtime.reconcile import GENERATION_FILE, ReconcileError

log = Logger()

RESTART_DELAY = 1.0  # seconds before a dead child is started again: no busy crash loop
REQUEST_TIMEOUT = 60.0  # a child that takes longer to answer counts as failed
CHANNEL_FD = 3  # a child's end of its unix socket to main


class WorkerError(Exception):
    """A child worker did not do what it was asked."""


@implementer(IAgentEndpointFactory)
class _UnixSocket:
    def __init__(self, reactor, path):
        self._reactor = reactor
        self._path = path

    def endpointForURI(self, uri):
        return UNIXClientEndpoint(self._reactor, self._path)


class ChildClient:
    """JSON requests to the admin socket of one child."""

    def __init__(self, reactor, path):
        self._reactor = reactor
        self._pool = HTTPConnectionPool(reactor)  # one kept connection: no factory log per request
        self._agent = Agent.usingEndpointFactory(reactor, _UnixSocket(reactor, path), self._pool)

    def close(self):
        """Close the kept connection (the child waits for its admin connections to end)."""
        self._pool.closeCachedConnections()

    def request(self, method, path, body=None, generation=None):
        """A Deferred of the JSON answer; fails with ``WorkerError`` unless 200."""
        d = self._request(method, path, body, generation)
        return d.addTimeout(REQUEST_TIMEOUT, self._reactor)

    @defer.inlineCallbacks
    def _request(self, method, path, body, generation):
        headers = Headers({} if generation is None else {b"if-match": [b"%d" % generation]})
        producer = None if body is None else FileBodyProducer(io.BytesIO(json.dumps(body).encode()))
        response = yield self._agent.request(method, b"http://worker" + path, headers, producer)
        answer = json.loads((yield readBody(response)))
        if response.code != 200:
            reasons = answer.get("failed") or answer.get("reasons") or []
            raise WorkerError("; ".join([f"{response.code} {answer.get('error')}", *reasons]))
        return answer


class Child(protocol.ProcessProtocol):
    """Child worker ``index``: its process (while alive), the generation of main's
    document it serves (None until it got it) and its admin client."""

    channel = None  # main's end of the unix socket to this child, while it runs

    def __init__(self, index, client, on_ready, on_end):
        self.index = index
        self.client = client
        self.pid = None
        self.generation = None
        self._on_ready = on_ready
        self._on_end = on_end
        self._output = b""

    def connectionMade(self):
        self.pid = self.transport.pid

    def outReceived(self, data):
        """Announce the child once it prints "ready" (it serves its listeners)."""
        if self._output is not None:
            self._output += data
            if b"ready\n" in self._output:
                self._output = None
                self._on_ready(self)

    def processEnded(self, reason):
        self.pid, self.generation, self._output = None, None, b""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        self._on_end(self, reason.value)

    @defer.inlineCallbacks
    def sync(self, document, generation):
        """Make the child serve ``document``, main's ``generation``."""
        current = yield self.client.request(b"GET", b"/v1/config")
        if current["config"] != document:
            yield self.client.request(b"PUT", b"/v1/config", document, current["generation"])
        self.generation = generation

    def signal(self, name):
        """Send signal ``name`` ("TERM", "KILL") if the process still runs."""
        try:
            self.transport.signalProcess(name)
        except error.ProcessExitedAlready:
            pass


class Workers(Service):
    """Main's side of the workers: it starts and restarts the children and
    applies every change to them after ``live`` (main's ``LiveConfig``).

    ``ready`` fires once every child served the current document.
    ``inherited`` ({index: {name: socket}}) are the sockets a restart handed
    over for each child.
    """

    def __init__(self, reactor, live, settings, clients=ChildClient, inherited=None):
        self._reactor = reactor
        self._inherited = dict(inherited or {})
        self._handed_over = False
        self._live = live
        self._settings = settings
        self._root = Path(settings.data_dir) / "workers"
        self._lock = defer.DeferredLock()  # one change at a time, child (re)starts included
        self._restarts = {}
        self._ended = {}
        self.ready = defer.Deferred()
        self.children = [
            Child(index, clients(reactor, self._socket(index)), self._joined, self._exited)
            for index in range(1, settings.workers)
        ]

    def _socket(self, index):
        return str(self._root / f"{index}.sock")

    def startService(self):
        super().startService()
        signal.signal(signal.SIGCHLD, self._child_signal)
        for child in self.children:
            self._spawn(child)

    def _child_signal(self, signum, frame):
        """Reap exited children: the reactor runs without its own signal handlers
        (serve.SignalHandler has SIGTERM/SIGINT), so it would miss a child that
        exits after closing its pipes, and wait for it forever."""
        self._reactor.callFromThread(twisted_private.reap_children)

    def stopService(self):
        """Stop every child (each drains like main); fires once all have exited."""
        super().stopService()
        for call in self._restarts.values():
            call.cancel()
        self._restarts.clear()
        if not self._handed_over:  # handed over, they are stopping already
            for child in self.children:
                child.signal("TERM")
        return defer.DeferredList(list(self._ended.values()))

    def sockets(self):
        """A restart: every serving child's sockets, {"worker K/NAME": socket}.
        Blocks while each answers on its channel (it does from its reactor)."""
        borrowed = {}
        for child in self._serving():
            handover.send(child.channel, {"sockets": True})
            for name, sock in handover.receive_sockets(child.channel).items():
                borrowed[f"{_PREFIX}{child.index}/{name}"] = sock
        return borrowed

    def hand_over(self):
        """The new main serves every socket now: each child stops as main does."""
        self._handed_over = True
        for child in self.children:
            child.client.close()
            if child.channel is not None:
                try:
                    handover.send(child.channel, {"hand_over": True})
                except OSError:
                    pass  # it ended meanwhile

    def abort_connections(self):
        """A second SIGTERM/SIGINT: main and every child close their connections now."""
        self._live.runtime.abort_connections()
        for child in self.children:
            child.signal("TERM")

    def _spawn(self, child):
        """Start ``child`` on a copy of the document main has saved."""
        self._restarts.pop(child.index, None)
        data_dir = self._root / str(child.index)
        data_dir.mkdir(parents=True, exist_ok=True)
        for name in (APPLIED_FILE, GENERATION_FILE):
            saved = Path(self._settings.data_dir) / name
            if saved.exists():
                shutil.copyfile(saved, data_dir / name)
            else:
                (data_dir / name).unlink(missing_ok=True)
        # Worker 0 alone follows a fleet and serves the admin API over TCP.
        own = replace(self._settings, data_dir=str(data_dir), pid_file=None, etcd=(), node=None, token_file=None,
                      etcd_ca_file=None, etcd_cert_file=None, etcd_key_file=None,
                      tls_cert=None, tls_key=None, tls_client_ca=None)
        settings = json.dumps(asdict(own))
        self._ended[child.index] = defer.Deferred()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.settimeout(REQUEST_TIMEOUT)
        with theirs:
            self._reactor.spawnProcess(
                child,
                sys.executable,
                [sys.executable, "-m", "l4plan.runtime.worker", settings, self._socket(child.index)],
                env=os.environ,
                childFDs={0: "w", 1: "r", 2: 2, CHANNEL_FD: theirs.fileno()},  # 0: a pipe never written
            )
        child.channel = ours
        inherited = self._inherited.pop(child.index, {})
        handover.send_sockets(ours, {name: sock.fileno() for name, sock in inherited.items()})
        for sock in inherited.values():
            sock.close()

    def _joined(self, child):
        d = self._lock.run(self._catch_up, child)
        d.addCallbacks(self._served, self._discard, (child,), None, (child,))

    def _catch_up(self, child):
        """Sync ``child`` to what main serves once the change under way, if any, is over."""
        return child.sync(self._live.document, self._live.generation)

    def _served(self, _, child):
        log.info("worker {index} (pid {pid}) serves", index=child.index, pid=child.pid)
        if not self.ready.called and all(c.generation is not None for c in self.children):
            self.ready.callback(None)

    def _discard(self, failure, child):
        """A child whose document is unknown or wrong is killed, so it starts again."""
        log.error("worker {index}: {why}; restarting it", index=child.index, why=failure.value)
        child.signal("KILL")

    def _exited(self, child, reason):
        self._ended.pop(child.index).callback(None)
        if not self.running:
            return
        log.error("worker {index} exited ({reason}); restarting it", index=child.index, reason=reason)
        self._restarts[child.index] = self._reactor.callLater(RESTART_DELAY, self._spawn, child)

    def apply(self, document):
        """Like ``LiveConfig.apply``, on every process: a Deferred of main's changes."""
        return self._lock.run(self._apply, document)

    @defer.inlineCallbacks
    def _apply(self, document):
        previous = self._live.document
        changes = yield self._live.apply_sliced(document)
        failed = yield self._sync(self._serving(), document)
        if failed:
            yield self._roll_back(previous)
            raise ReconcileError(
                "a worker could not apply the document, so every worker went back to the previous one",
                [f"worker {child.index}: {why.getErrorMessage()}" for child, why in failed],
            )
        return changes

    def _serving(self):
        return [child for child in self.children if child.generation is not None]

    @defer.inlineCallbacks
    def _sync(self, children, document):
        """Give ``document`` to ``children`` at once; [(child, Failure)] of those that failed."""
        generation = self._live.generation
        results = yield defer.DeferredList(
            [child.sync(document, generation) for child in children], consumeErrors=True
        )
        return [(child, why) for child, (ok, why) in zip(children, results) if not ok]

    @defer.inlineCallbacks
    def _roll_back(self, previous):
        """Main and every child back to ``previous``; a child that cannot is restarted."""
        try:
            self._live.apply(previous)
        except (DocumentError, ReconcileError) as error:
            log.error("main could not go back to the previous document: {why}", why=error)
        for child, why in (yield self._sync(self._serving(), self._live.document)):
            self._discard(why, child)

    @defer.inlineCallbacks
    def status(self, own):
        """``own`` (main's status) with the workers and the counters of all of them."""
        serving = self._serving()
        results = yield defer.DeferredList(
            [child.client.request(b"GET", b"/v1/status") for child in serving], consumeErrors=True
        )
        answers = {child.index: why for child, (ok, why) in zip(serving, results) if ok}
        return merge_status(own, [(child, answers.get(child.index)) for child in self.children])


def merge_status(own, children):
    """Main's status ``own`` plus ``children`` [(``Child``, its status or None)]:
    "workers" lists every process; open connections and counters are summed."""
    merged = json.loads(json.dumps(own))
    workers = [_worker_entry(0, os.getpid(), own["generation"], own)]
    for child, status in children:
        workers.append(_worker_entry(child.index, child.pid, child.generation, status))
        for section in ("listeners", "draining"):
            _add_active(merged[section], (status or {}).get(section, []))
        for rule, counters in (status or {}).get("rules", {}).items():
            total = merged["rules"].setdefault(rule, dict.fromkeys(counters, 0))
            for name, value in counters.items():
                total[name] += value
    merged["workers"] = workers
    return merged


def _worker_entry(index, pid, generation, status):
    rules = (status or {}).get("rules", {}).values()
    return {
        "worker": index,
        "pid": pid,
        "alive": pid is not None,
        "generation": generation,
        "opened": sum(c["opened"] for c in rules),
        "active": sum(c["active"] for c in rules),
    }


def _add_active(listeners, others):
    active = {}
    for listener in others:
        active[listener["name"]] = active.get(listener["name"], 0) + listener["active"]
    for listener in listeners:
        listener["active"] += active.get(listener["name"], 0)


_PREFIX = "worker "  # a child's sockets in a handover: "worker K/NAME"


def by_worker(inherited):
    """Sockets a restart handed over, {name: socket}: (main's own, {index: {name: socket}})."""
    own, children = {}, {}
    for name, sock in inherited.items():
        if name.startswith(_PREFIX):
            index, _, rest = name[len(_PREFIX):].partition("/")
            children.setdefault(int(index), {})[rest] = sock
        else:
            own[name] = sock
    return own, children


def watch_main(reactor, channel, stop, restart):
    """Follow ``channel``, this child's unix socket to main (see ``MainChannel``);
    not once this worker stops anyway (its reactor then drops every reader)."""
    watch = MainChannel(channel, stop, restart)
    reactor.addReader(watch)
    reactor.addSystemEventTrigger("before", "shutdown", reactor.removeReader, watch)


class MainChannel:
    """A child worker's end of the unix socket from main. Main asks on it for
    this worker's sockets (``restart.sockets()``), then says they are handed
    over (``restart.handed_over()``); its end means main is gone, however it
    ended: ``stop()``."""

    def __init__(self, channel, stop, restart):
        self._channel = channel
        self._stop = stop
        self._restart = restart

    def fileno(self):
        return self._channel.fileno()

    def doRead(self):
        try:
            message, _ = handover.receive(self._channel, "sockets", "hand_over")
        except (EOFError, OSError):
            return main.CONNECTION_DONE
        if "sockets" in message:
            handover.send_sockets(self._channel, self._restart.sockets())
        else:
            self._restart.handed_over()

    def connectionLost(self, reason):
        """EOF, or a hang-up epoll reports without calling ``doRead``."""
        self._stop()

    def logPrefix(self):
        return "main"
