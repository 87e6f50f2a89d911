# -*- test-case-name: tests.runtime.test_runtime_reconcile -*-
"""Reconcile: move a running runtime to a new document without downtime.

Listeners are compared by (protocol, address, port). A listener in both
documents keeps its socket and serves the new rule for new connections at
once; open TCP connections and UDP sessions keep the rule, origin and options
they started with (tcp.py and udp.py capture them at accept / session start).
New listeners are bound first and the document is saved before anything is
switched, so a bind or disk failure changes nothing. Removed listeners stop
accepting at once; their TCP connections drain for the drain timeout and
their UDP sessions end at once (the edge socket they answer from is gone).

Work is proportional to the change: only added and removed listeners touch
the kernel, and only the applications that changed (or whose load balancers
or access rules changed) are compiled, signed and compared again; the others
keep their Route and Rule objects, so their listeners are not even touched.
"""

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from twisted.internet import defer, threads
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IReactorThreads

from l4plan.runtime import document as runtime_document
from l4plan.runtime.routes import ListenerKey, compile_document

GENERATION_FILE = "generation.json"
BIND_SLICE = 500  # new listeners bound per reactor turn by a PUT


class ReconcileError(Exception):
    """The change could not be made and was rolled back; ``failed`` says what failed."""

    def __init__(self, message, failed):
        super().__init__(message)
        self.failed = list(failed)


@dataclass(frozen=True)
class Changes:
    """Listener names (as in status) added, removed and given a new rule."""

    added: tuple
    removed: tuple
    updated: tuple

    def to_dict(self):
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "updated": list(self.updated),
        }


def signatures(document, name, bind, bind6):
    """What every listener of application ``name`` serves, in a comparable form.

    Equal signatures mean the listener's rule did not change: same
    application flags, rule, origin ports, and the access rules or load
    balancer it uses.
    """
    app = document["applications"][name]
    flags = {k: v for k, v in app.items() if k != "rules"}
    addresses = [bind, bind6] if app["ipv6"] else [bind]
    result = {}
    for rule in app["rules"]:
        context = {
            "application": name,
            "flags": flags,
            "rule": {k: v for k, v in rule.items() if k != "ports"},
            "acl": document["ip_access_rules"] if app["waf_ip_access_control"] else None,
            "balancer": (
                document["load_balancers"].get(rule["origin"])
                if rule["origin_type"] == "load_balancer"
                else None
            ),
        }
        for mapping in rule["ports"]:
            text = json.dumps([context, mapping["origin"]], sort_keys=True)
            for address in addresses:
                result[ListenerKey(rule["protocol"], address, mapping["edge"])] = text
    return result


@dataclass(frozen=True)
class _Diff:
    """The listeners of the applications compiled again, before and after:
    ``before`` and ``after`` map their keys to signatures, ``routes`` the keys
    after to their new routes."""

    before: dict
    after: dict
    routes: dict

    def added(self):
        return sorted((key for key in self.after if key not in self.before), key=str)

    def removed(self):
        return [key for key in self.before if key not in self.after]

    def kept(self):
        return [key for key in self.after if key in self.before]


def _recompiled(before, after):
    """Names of the applications of ``Compiled`` ``after`` that do not serve the
    same objects as in ``before``, added and removed ones included."""
    names = [n for n, app in after.applications.items() if before.applications.get(n) is not app]
    return names + [n for n in before.applications if n not in after.applications]


def _write_atomically(path, text):
    """Write ``text`` to ``path``: temporary file, fsync, rename, fsync the directory.

    The runtime that serves a data directory is its only writer, so earlier
    temporary files of ``path`` were left by a killed runtime: removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save(data_dir, document, generation):
    """Persist the generation, then the applied document, in ``data_dir``.

    In this order a failure between the two leaves the old document with a
    generation that skipped one, which is harmless: clients read it first.
    """
    directory = Path(data_dir)
    _write_atomically(directory / GENERATION_FILE, json.dumps({"generation": generation}))
    _write_atomically(directory / runtime_document.APPLIED_FILE, json.dumps(document))


def load_generation(data_dir):
    """The generation saved in ``data_dir``; 0 when there is none."""
    path = Path(data_dir) / GENERATION_FILE
    if not path.exists():
        return 0
    try:
        generation = runtime_document.parse_json(path.read_text())["generation"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise runtime_document.DocumentError(str(path), [f"cannot be read ({exc!r})"]) from exc
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        raise runtime_document.DocumentError(str(path), ["generation is not a whole number"])
    return generation


class _Plan(NamedTuple):
    """A document ready to be served: its routes, signatures and listener diff."""

    compiled: object
    after: dict
    diff: "_Diff"


class LiveConfig:
    """The document a running ``Runtime`` serves, its generation, and changes to it."""

    def __init__(self, runtime, data_dir, document, generation, compiled):
        self.runtime = runtime
        self.data_dir = data_dir
        self.document = document
        self.generation = generation
        self._compiled = compiled  # the runtime's routes, reused where nothing changed
        self.held = None  # why no change may be made now (a restart), or None
        self._on_release = []
        settings = runtime.settings
        self._signatures = {  # by application, kept and redone only for those that change
            name: signatures(document, name, settings.bind, settings.bind6)
            for name in document["applications"]
        }

    def hold(self, why):
        """No change until ``release()``: a change under way fails with ``why``."""
        self.held = why

    def release(self):
        """Changes may be made again; tell those waiting (``on_release``)."""
        self.held = None
        for waiting in self._on_release:
            waiting()

    def on_release(self, call):
        """Call ``call()`` whenever a hold ends."""
        self._on_release.append(call)

    @classmethod
    def restore(cls, runtime, data_dir):
        """Load what ``data_dir`` holds into ``runtime`` (not started yet)."""
        document = runtime_document.load_applied(data_dir)
        generation = load_generation(data_dir)
        compiled = runtime.load(document)
        return cls(runtime, data_dir, document, generation, compiled)

    def apply(self, document):
        """Serve ``document`` from now on; the ``Changes``, all or nothing.

        Raises ``runtime_document.DocumentError`` for an invalid document and
        ``ReconcileError`` when a listener cannot be bound or the document
        cannot be saved; in both cases nothing changed.
        """
        runtime_document.validate(document, "document", checked=self.document)
        plan = self._prepare(document)
        return self._commit(document, plan, self._bind(plan.diff.added(), plan.diff.routes))

    def apply_sliced(self, document, size=BIND_SLICE):
        """``apply`` for the admin API: a Deferred of the ``Changes``. New
        listeners are bound ``size`` at a time with the reactor running between
        slices, so 10,000 new ports in one PUT do not stall the traffic of the
        others; until the last one is bound nothing changes."""
        checked = self._validate_aside(document)
        planned = checked.addCallback(lambda _: self._prepare(document))
        return planned.addCallback(self._bind_and_commit, document, size)

    def _bind_and_commit(self, plan, document, size):
        bound = self._bind_sliced(list(plan.diff.added()), plan.diff.routes, size)
        return bound.addCallback(lambda new: self._commit(document, plan, new))

    def _validate_aside(self, document):
        """Check ``document`` in a thread of the reactor's pool when it has one:
        the schema check of 10,000 ports takes a third of a second, which the
        relays should not wait for. It reads only documents nothing changes."""
        reactor = self.runtime.reactor
        validate = runtime_document.validate
        if not IReactorThreads.providedBy(reactor):  # a reactor without threads runs it here
            return defer.maybeDeferred(validate, document, "document", self.document)
        pool = reactor.getThreadPool()
        return threads.deferToThreadPool(reactor, pool, validate, document, "document", self.document)

    def _prepare(self, document):
        """The ``_Plan`` of ``document``, which passed the schema: compiled, signed, diffed."""
        runtime, settings = self.runtime, self.runtime.settings
        try:
            compiled = compile_document(
                document,
                settings.bind,
                settings.bind6,
                runtime.hosts,
                runtime.metrics,
                previous=self._compiled,
            )
        except ValueError as error:  # what the schema cannot check, e.g. a CIDR
            raise runtime_document.DocumentError("document", [str(error)]) from error
        names = _recompiled(self._compiled, compiled)
        after = self._signatures_after(document, names)
        return _Plan(compiled, after, self._diff(compiled, names, after))

    def _commit(self, document, plan, new):
        """Save ``document``, then switch to it with the listeners ``new`` bound for it."""
        compiled, after, diff = plan.compiled, plan.after, plan.diff
        if self.held:  # a restart began meanwhile: the next process has read the document
            _close(new)
            raise ReconcileError(self.held, [])
        try:
            save(self.data_dir, document, self.generation + 1)
        except OSError as exc:
            _close(new)
            raise ReconcileError(f"cannot save the document: {exc}", [str(self.data_dir)]) from exc
        changes = self._switch(diff, new, compiled.health_checks)
        self.document, self.generation = document, self.generation + 1
        self._compiled, self._signatures = compiled, after
        return changes

    def _bind_sliced(self, keys, routes, size):
        """A Deferred of the listeners bound for ``keys``, ``size`` per reactor turn;
        at the first slice that fails, all bound so far are closed (a ReconcileError)."""
        done, bound = defer.Deferred(), []

        def step(start):
            try:
                bound.extend(self._bind(keys[start : start + size], routes))
            except ReconcileError:
                _close(bound)
                return done.errback()
            if start + size >= len(keys):
                return done.callback(bound)
            self.runtime.reactor.callLater(0, step, start + size)

        step(0)
        return done

    def _signatures_after(self, document, names):
        """The signatures by application once ``document`` is served, redone for ``names``."""
        settings = self.runtime.settings
        after = dict(self._signatures)
        for name in names:
            if name in document["applications"]:
                after[name] = signatures(document, name, settings.bind, settings.bind6)
            else:
                del after[name]
        return after

    def _diff(self, compiled, names, after):
        """The ``_Diff`` of the applications ``names`` when ``compiled`` is served."""
        before_keys, after_keys, routes = {}, {}, {}
        for name in names:
            before_keys.update(self._signatures.get(name, {}))
            after_keys.update(after.get(name, {}))
            if name in compiled.applications:
                routes.update(compiled.applications[name].routes)
        return _Diff(before_keys, after_keys, routes)

    def _bind(self, keys, routes):
        """Bind a listener for every key; on any failure close them all and raise.

        Whatever fails, a port in use or an error no one foresaw, every
        listener bound here is closed again: a refused change leaves none."""
        bound, failed = [], []
        try:
            for key in keys:
                listener = self.runtime.make_listener(key, routes[key])
                try:
                    listener.bind()
                except CannotListenError as error:
                    failed.append(f"{key}: {error.socketError}")
                    continue
                bound.append(listener)
        except Exception as error:
            _close(bound)
            raise ReconcileError("a new listener failed, so nothing was changed", [f"{key}: {error}"]) from error
        if failed:
            _close(bound)
            raise ReconcileError("cannot open every new listener, so nothing was changed", failed)
        return bound

    def _switch(self, diff, new, health_checks):
        """Give kept listeners their new routes, start new ones, retire the removed."""
        removed = [str(key) for key in diff.removed()]
        for name in removed:
            self.runtime.retire(self.runtime.getServiceNamed(name))
        updated = []
        for key in diff.kept():
            self.runtime.getServiceNamed(str(key)).use(diff.routes[key])
            if diff.before[key] != diff.after[key]:
                updated.append(str(key))
        for listener in new:
            listener.setServiceParent(self.runtime)
        self.runtime.use_health_checks(health_checks)
        return Changes(tuple(one.name for one in new), tuple(sorted(removed)), tuple(sorted(updated)))


def _close(listeners):
    for listener in listeners:
        listener.stopService()
