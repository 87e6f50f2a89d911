"""The ``fleet`` provider: many runtimes that follow one desired document in etcd.

apply writes the runtime document to ``PREFIX desired`` in one txn that
compares the key's mod_revision with the one read, then waits until every
live node (``PREFIX nodes/NAME``, each bound to its node's lease) reports that
revision with status ``ok``, printing a line per node as it converges. A node
that refuses the change makes apply write the previous document back (with
``on_failure = "rollback"``), wait for the nodes to return to it and fail
naming the node; the state is left as it was. Envoy's xDS has this ACK/NACK;
APISIX and Kong report nothing a workflow can wait on.

The document is stored gzipped: etcd refuses a request over 1.5 MiB, and a
runtime document of 10,000 listeners is larger than that as JSON.
"""

import hashlib
import json
import time

from l4plan import etcd
from l4plan.providers.base import OutcomeUnknown, Provider, ProviderError
from l4plan.providers.runtime_document import build_document, check_unchanged_since, read_document
from l4plan.schema import block_defaults
from l4plan.state.duration import parse_duration

POLL_SECONDS = 0.02  # nodes polled; a range read of their reports is cheap


class FleetProvider(Provider):
    SETTINGS = frozenset(
        {"endpoints", "prefix", "wait_timeout", "on_failure", "username", "password", "ca_file", "cert_file", "key_file"}
    )
    READS = frozenset({"application", "load_balancer", "ip_access_rule"})

    def __init__(self, name, settings, workdir):
        settings = {**block_defaults("provider", "fleet"), **settings}
        super().__init__(name, settings, workdir)
        self.endpoints = list(settings["endpoints"])
        self.prefix = settings["prefix"]
        self.wait_timeout = parse_duration(settings["wait_timeout"])
        self.on_failure = settings["on_failure"]
        try:
            self.client = etcd.client_of(settings, workdir)
        except etcd.EtcdError as error:
            raise ProviderError(f"{error} in the provider block") from None
        self._seen = None  # mod_revision of the desired document when read

    @property
    def where(self):
        return f'the fleet {self.prefix} in etcd ({", ".join(self.endpoints)})'

    # --- Provider ------------------------------------------------------------

    def _read(self):
        revision, data, document = self.desired()
        self._seen = revision
        digest = hashlib.sha256(data).hexdigest() if data is not None else None
        for line in drift_lines(self.nodes(), revision, digest):
            self.progress(line)
        return read_document(document) if document else {}

    def _apply(self, plan, desired):
        return self._apply_canary(plan, desired, ())

    def _apply_canary(self, plan, desired, canary):
        """Apply; with ``canary`` nodes, to them first (PREFIX canary), then to all."""
        revision, previous, document = self.desired()
        if self._seen is not None and revision != self._seen:
            raise ProviderError(f"{self.where} was changed by someone else since the plan; run plan again")
        running = read_document(document) if document else {}
        check_unchanged_since(plan, running, self.READS, self.where)
        unmanaged = {a: running[a] for a in plan.unmanaged if a in running}
        data = _encode(build_document({**unmanaged, **desired}))
        digest = hashlib.sha256(data).hexdigest()
        if canary:
            self._canary_first(revision, previous, data, digest, canary)
        written = self._write(revision, data, drop_canary=bool(canary))
        nodes = self._wait(written, digest)
        failed = [(name, report) for name, report in nodes.items() if report["status"] != "ok"]
        if failed:
            self._refused(written, previous, failed)
        identity = {"fleet": self.prefix, "revision": written}
        return {address: identity for address in desired if address.partition(".")[0] in self.READS}

    def open_connections(self):
        """Open connections and sessions per rule, summed over the live nodes."""
        counts: dict[str, int] = {}
        for report in self.nodes().values():
            for key, active in (report.get("active") or {}).items():
                counts[key] = counts.get(key, 0) + active
        return counts

    # --- etcd ------------------------------------------------------------------

    def desired(self):
        """``(mod_revision, stored JSON bytes or None, document or None)`` of ``PREFIX desired``."""
        kv = self._etcd(self.client.get, self.prefix + "desired")
        if kv is None:
            return 0, None, None
        data = etcd.unpack(kv["value"])
        return kv["mod_revision"], data, json.loads(data)

    def nodes(self):
        """Every live node's report, by name."""
        reports = (json.loads(kv["value"]) for kv in self._etcd(self.client.get_prefix, self.prefix + "nodes/"))
        return {report["node"]: report for report in reports}

    def _write(self, revision, data, drop_canary=False):
        key = self.prefix + "desired"
        operations = [etcd.put(key, etcd.pack(data))]
        if drop_canary:
            operations.append(etcd.delete(self.prefix + "canary"))
        succeeded, answer = self._etcd(self.client.txn, [etcd.revision_is(key, "MOD", revision)], operations)
        if not succeeded:
            raise ProviderError(f"{self.where} was changed by someone else during this apply; run plan again")
        return int(answer["header"]["revision"])

    def _etcd(self, call, *args):
        try:
            return call(*args)
        except etcd.EtcdError as error:
            raise ProviderError(f"{self.where}: {error}; check the endpoints and that etcd is up") from None

    # --- canary -------------------------------------------------------------------

    def _canary_first(self, revision, previous, data, digest, canary):
        """Serve the change on the ``canary`` nodes alone (PREFIX canary) and wait
        for them; a refusal withdraws the canary and fails: the others never saw it."""
        if previous is None:
            raise ProviderError(f"--canary needs {self.where} to serve a document already; apply once without it")
        reports = self.nodes()
        missing = sorted(set(canary) - set(reports))
        if missing:
            raise ProviderError(
                f"--canary names {', '.join(missing)}, not a node of {self.where} "
                f"(its nodes: {', '.join(sorted(reports)) or 'none'})"
            )
        self.progress(f"canary: {', '.join(canary)} first, then the other {len(reports) - len(canary)} nodes")
        value = json.dumps({"nodes": list(canary), "hash": digest, "document": json.loads(data)}).encode()
        key, desired_key = self.prefix + "canary", self.prefix + "desired"
        succeeded, answer = self._etcd(
            self.client.txn,
            [etcd.revision_is(desired_key, "MOD", revision), etcd.revision_is(key, "CREATE", 0)],
            [etcd.put(key, etcd.pack(value))],
        )
        if not succeeded:
            raise ProviderError(f"{self.where} was changed, or has a canary under way, since the plan; run plan again")
        reports = self._wait(int(answer["header"]["revision"]), digest, only=set(canary))
        failed = [(name, report) for name, report in reports.items() if report["status"] != "ok"]
        if failed:
            self._etcd(self.client.txn, [], [etcd.delete(key)])
            self.progress("withdrawing the canary")
            self._wait(0, hashlib.sha256(previous).hexdigest(), only=set(canary))
            named = "; ".join(f"node {name}: {report['error']}" for name, report in failed)
            raise ProviderError(f"{named}. The canary was withdrawn: the other nodes never took the change")

    # --- waiting for the nodes ---------------------------------------------------

    def _wait(self, revision, digest, only=None):
        """The reports of every live node (of ``only``, when given) once each has
        taken ``revision`` (``ok`` or ``error``); a node whose report expires
        meanwhile is dropped."""
        started = time.monotonic()
        deadline = started + self.wait_timeout
        done: dict[str, dict] = {}
        known: set[str] = set()
        while True:
            nodes = {n: r for n, r in self.nodes().items() if only is None or n in only}
            for name in sorted(known - set(nodes) - set(done)):
                self.progress(f"  warning: node {name} left the fleet (its lease expired); it is not waited for")
            known |= set(nodes)
            for name, report in sorted(nodes.items()):
                if name not in done and report.get("hash") == digest and report["revision"] >= revision:
                    done[name] = report
                    self.progress(_node_line(name, report, time.monotonic() - started))
            waiting = sorted(set(nodes) - set(done))
            if not waiting:
                live = {n: r for n, r in done.items() if n in nodes}
                self.progress(f"{sum(r['status'] == 'ok' for r in live.values())}/{len(nodes)} nodes converged in {time.monotonic() - started:.2f} s")
                return live
            if time.monotonic() > deadline:
                raise OutcomeUnknown(
                    f"{', '.join(waiting)} did not take revision {revision} of {self.where} within "
                    f"{self.wait_timeout:g} s (wait_timeout); `l4plan runtime status` shows each node"
                )
            time.sleep(POLL_SECONDS)

    def _refused(self, written, previous, failed):
        named = "; ".join(f"node {name}: {report['error']}" for name, report in failed)
        if self.on_failure != "rollback":
            raise ProviderError(
                f"{named}. The fleet was left as it is (on_failure = \"stop\"): the other nodes serve the "
                f"new document; fix the cause and apply again"
            )
        back = previous if previous is not None else _encode(build_document({}))
        self.progress("rolling back to the previous document")
        restored = self._write(written, back)
        self._wait(restored, hashlib.sha256(back).hexdigest())
        raise ProviderError(f"{named}. The fleet was rolled back to the previous document")


def drift_lines(nodes, revision, digest):
    """A warning per node not serving the desired document: behind, in error,
    or serving another document than the one stored."""
    lines = []
    for name, report in sorted(nodes.items()):
        if report["status"] != "ok":
            lines.append(f"warning: node {name} is in error at revision {report['revision']}: {report['error']}")
        elif report["revision"] < revision:
            lines.append(f"warning: node {name} is behind: it serves revision {report['revision']} of {revision}")
        elif digest is not None and report.get("hash") != digest:
            lines.append(f"warning: node {name} serves another document than the desired one (hash {report.get('hash')})")
    return lines


def _encode(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _node_line(name, report, seconds):
    if report["status"] == "ok":
        return f"  node {name}: ok, revision {report['revision']}, {report['listeners']} listeners ({seconds:.1f} s)"
    return f"  node {name}: error: {report['error']}"
