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

Socket work is proportional to the change: only added and removed listeners
touch the kernel. The document is compiled whole, which is cheap.
"""

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from twisted.internet.error import CannotListenError

from l4plan.runtime import document as runtime_document
from l4plan.runtime.routes import ListenerKey, compile_document

GENERATION_FILE = "generation.json"


class ReconcileError(Exception):
    """The change could not be made and was rolled back; C{failed} says what failed."""

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


def signatures(document, bind, bind6):
    """What every listener of C{document} serves, in a comparable form.

    Equal signatures mean the listener's rule did not change: same
    application flags, rule, origin ports, and the access rules or load
    balancer it uses.
    """
    result = {}
    for app_name, app in document["applications"].items():
        flags = {k: v for k, v in app.items() if k != "rules"}
        addresses = [bind, bind6] if app["ipv6"] else [bind]
        for rule in app["rules"]:
            context = {
                "application": app_name,
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


def _write_atomically(path, text):
    """Write C{text} to C{path}: temporary file, fsync, rename, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
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
    """Persist the generation, then the applied document, in C{data_dir}.

    In this order a failure between the two leaves the old document with a
    generation that skipped one, which is harmless: clients read it first.
    """
    directory = Path(data_dir)
    _write_atomically(directory / GENERATION_FILE, json.dumps({"generation": generation}))
    _write_atomically(directory / runtime_document.APPLIED_FILE, json.dumps(document, indent=1))


def load_generation(data_dir):
    """The generation saved in C{data_dir}; 0 when there is none."""
    path = Path(data_dir) / GENERATION_FILE
    if not path.exists():
        return 0
    try:
        generation = json.loads(path.read_text())["generation"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise runtime_document.DocumentError(str(path), [f"cannot be read ({exc!r})"]) from exc
    if not isinstance(generation, int) or generation < 0:
        raise runtime_document.DocumentError(str(path), ["generation is not a whole number"])
    return generation


class LiveConfig:
    """The document a running L{Runtime} serves, its generation, and changes to it."""

    def __init__(self, runtime, data_dir, document, generation):
        self.runtime = runtime
        self.data_dir = data_dir
        self.document = document
        self.generation = generation
        settings = runtime.settings
        self._signatures = signatures(document, settings.bind, settings.bind6)  # kept, not redone

    @classmethod
    def restore(cls, runtime, data_dir):
        """Load what C{data_dir} holds into C{runtime} (not started yet)."""
        document = runtime_document.load_applied(data_dir)
        generation = load_generation(data_dir)
        runtime.load(document)
        return cls(runtime, data_dir, document, generation)

    def apply(self, document):
        """Serve C{document} from now on; the L{Changes}, all or nothing.

        Raises L{runtime_document.DocumentError} for an invalid document and
        L{ReconcileError} when a listener cannot be bound or the document
        cannot be saved; in both cases nothing changed.
        """
        runtime_document.validate(document, "document", checked=self.document)
        runtime, settings = self.runtime, self.runtime.settings
        try:
            compiled = compile_document(
                document, settings.bind, settings.bind6, runtime.hosts, runtime.metrics
            )
        except ValueError as error:  # what the schema cannot check, e.g. a CIDR
            raise runtime_document.DocumentError("document", [str(error)]) from error
        after = signatures(document, settings.bind, settings.bind6)
        current = runtime.listeners()
        added = [key for key in compiled.routes if key not in current]
        new = self._bind(sorted(added, key=str), compiled.routes)
        try:
            save(self.data_dir, document, self.generation + 1)
        except OSError as exc:
            _close(new)
            raise ReconcileError(f"cannot save the document: {exc}", [str(self.data_dir)]) from exc
        changes = self._switch(compiled, current, new, after)
        self.document, self.generation, self._signatures = document, self.generation + 1, after
        return changes

    def _bind(self, keys, routes):
        """Bind a listener for every key; on any failure close them all and raise."""
        bound, failed = [], []
        for key in keys:
            listener = self.runtime.make_listener(key, routes[key])
            try:
                listener.bind()
            except CannotListenError as error:
                failed.append(f"{key}: {error.socketError}")
                continue
            bound.append(listener)
        if failed:
            _close(bound)
            raise ReconcileError("cannot open every new listener, so nothing was changed", failed)
        return bound

    def _switch(self, compiled, current, new, after):
        """Give kept listeners their new routes, start new ones, retire the rest;
        C{after} are the new document's L{signatures}."""
        before = self._signatures
        updated, removed = [], []
        for key, listener in current.items():
            if key not in compiled.routes:
                removed.append(listener.name)
                self.runtime.retire(listener)
                continue
            listener.use(compiled.routes[key])
            if before.get(key) != after[key]:
                updated.append(listener.name)
        for listener in new:
            listener.setServiceParent(self.runtime)
        self.runtime.use_health_checks(compiled.health_checks)
        return Changes(tuple(l.name for l in new), tuple(sorted(removed)), tuple(sorted(updated)))


def _close(listeners):
    for listener in listeners:
        listener.stopService()
