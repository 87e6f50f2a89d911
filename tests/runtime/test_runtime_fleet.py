"""The fleet member in memory: what it reads, applies, watches and reports,
against a gateway whose answers the test gives (MemoryReactorClock)."""

import base64
import gzip
import json

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from l4plan.runtime import fleet
from l4plan.runtime.reconcile import ReconcileError


def b64(data):
    return base64.b64encode(data).decode()


def kv(document, revision, packed=True, key="/f/desired"):
    data = json.dumps(document).encode()
    value = gzip.compress(data) if packed else data
    return {"key": b64(key.encode()), "value": b64(value), "mod_revision": str(revision)}


def canary(nodes, document, revision):
    value = json.dumps({"nodes": nodes, "hash": "canary-hash", "document": document}).encode()
    return {"key": b64(b"/f/canary"), "value": b64(value), "mod_revision": str(revision)}


class Gateway:
    """Answers range reads from ``self.desired``; records puts; watches wait for the test."""

    def __init__(self):
        self.desired, self.canary, self.revision = None, None, 10
        self.puts, self.watches, self.down = [], [], False

    def call(self, path, body):
        if self.down:
            return defer.fail(fleet.EtcdUnavailable("etcd: connection refused"))
        if path == "lease/grant":
            return defer.succeed({"ID": "77"})
        if path == "kv/range":
            answer = {"header": {"revision": str(self.revision)}}
            kvs = [one for one in (self.canary, self.desired) if one is not None]
            if kvs:
                answer["kvs"] = kvs
            return defer.succeed(answer)
        if path == "kv/put":
            self.puts.append(json.loads(base64.b64decode(body["value"])))
        return defer.succeed({"result": {"TTL": "10"}})

    def watch(self, key, start, on_result):
        ended = defer.Deferred()
        self.watches.append((start, on_result, ended))
        return ended


class Metrics:
    def snapshot(self):
        return {"game/tcp/7000": {"active": 2}, "game/tcp/7001": {"active": 0}}


class Runtime:
    metrics = Metrics()

    def listeners(self):
        return {}


class Live:
    held = None

    def __init__(self):
        self.document, self.generation, self.runtime = {"applications": {}}, 0, Runtime()
        self.waiting = []

    def on_release(self, call):
        self.waiting.append(call)

    def release(self):
        self.held = None
        for call in self.waiting:
            call()


def member(gateway, outcome=None):
    live, applied = Live(), []

    def apply(document):
        applied.append(document)
        if outcome is not None:
            return defer.fail(outcome)
        live.document, live.generation = document, live.generation + 1
        return defer.succeed(None)

    clock = Clock()
    one = fleet.FleetMember(clock, gateway, "/f/", "n2", live, apply, "0.1.0", lease_ttl=3)
    return one, applied, clock


DOC = {"applications": {"game": {}}}


def test_it_reads_in_full_applies_reports_and_watches_from_the_next_revision():
    gateway = Gateway()
    gateway.desired = kv(DOC, 8)
    one, applied, _ = member(gateway)
    one.startService()
    assert applied == [DOC]
    report = gateway.puts[-1]
    assert (report["node"], report["revision"], report["status"], report["error"]) == ("n2", 8, "ok", None)
    assert report["hash"] and one.caught_up
    assert report["active"] == {"game/tcp/7000": 2}
    assert gateway.watches[0][0] == 11


def test_a_change_waits_while_a_restart_holds_the_document():
    """Held, a node neither applies nor refuses: the process it hands over to
    reads etcd itself, and if the restart fails this one applies on release."""
    gateway = Gateway()
    gateway.desired = kv(DOC, 8)
    one, applied, _ = member(gateway)
    one.live.held = "a restart is under way"
    one.startService()
    assert applied == [] and gateway.puts == []  # no refusal reported
    one.live.release()
    assert applied == [DOC] and gateway.puts[-1]["revision"] == 8


def test_an_equal_document_is_not_applied_again_but_its_revision_is_reported():
    gateway = Gateway()
    gateway.desired = kv(DOC, 8)
    one, applied, _ = member(gateway)
    one.startService()
    _, on_result, _ = gateway.watches[0]
    on_result({"events": [{"kv": kv(DOC, 12, packed=False)}]})
    assert applied == [DOC]
    assert gateway.puts[-1]["revision"] == 12


def test_a_watched_change_is_applied_and_a_refusal_is_reported_with_its_reason():
    gateway = Gateway()
    one, applied, _ = member(gateway, ReconcileError("no", ["tcp 127.0.0.3:7000: [Errno 98] Address already in use"]))
    one.startService()
    _, on_result, _ = gateway.watches[0]
    on_result({"events": [{"kv": kv(DOC, 12)}]})
    assert applied == [DOC]
    report = gateway.puts[-1]
    assert (report["revision"], report["status"]) == (12, "error")
    assert report["error"] == "tcp 127.0.0.3:7000: [Errno 98] Address already in use"


def test_a_compaction_ends_the_watch_and_it_reads_in_full_again():
    gateway = Gateway()
    one, applied, clock = member(gateway)
    one.startService()
    _, on_result, ended = gateway.watches[0]
    gateway.desired, gateway.revision = kv(DOC, 30), 31
    assert on_result({"canceled": True, "compact_revision": "25"}) is False
    ended.callback(None)  # the stream closes once told to stop
    clock.advance(0)
    assert applied == [DOC]
    assert gateway.watches[-1][0] == 32


def test_etcd_away_it_keeps_what_it_serves_and_retries_with_backoff():
    gateway = Gateway()
    gateway.down = True
    one, applied, clock = member(gateway)
    one.startService()
    assert not one.caught_up and gateway.watches == []
    gateway.down = False
    gateway.desired = kv(DOC, 5)
    clock.advance(fleet.RETRY_FIRST * 1.5)
    assert applied == [DOC] and one.caught_up


def test_watch_messages_are_split_on_lines_whatever_the_chunks():
    results, ended = [], defer.Deferred()
    protocol = fleet._Messages(results.append, ended)
    protocol.makeConnection(StringTransport())
    protocol.dataReceived(b'{"result":{"events":[]}}\n{"resu')
    protocol.dataReceived(b'lt":{"events":[{"kv":{}}]}}\n')
    assert results == [{"events": []}, {"events": [{"kv": {}}]}]


def test_a_watch_told_to_stop_stops_reading():
    transport = StringTransport()
    protocol = fleet._Messages(lambda result: False, defer.Deferred())
    protocol.makeConnection(transport)
    protocol.dataReceived(b'{"result":{"canceled":true}}\n{"result":{}}\n')
    assert transport.producerState == "stopped"


def test_a_canary_node_serves_the_canary_the_others_the_desired_document():
    new = {"applications": {"chat": {}}}
    for node, expected in (("n2", new), ("n3", DOC)):
        gateway = Gateway()
        gateway.desired, gateway.canary = kv(DOC, 8), canary(["n2"], new, 9)
        one, applied, _ = member(gateway)
        one.node = node
        one.startService()
        assert applied == [expected]
        assert gateway.puts[-1]["revision"] == (9 if node == "n2" else 8)


def test_a_canary_deleted_and_the_desired_document_replaced_in_one_txn_is_one_change():
    new = {"applications": {"chat": {}}}
    gateway = Gateway()
    gateway.desired, gateway.canary = kv(DOC, 8), canary(["n2"], new, 9)
    one, applied, _ = member(gateway)
    one.startService()
    _, on_result, _ = gateway.watches[0]
    on_result({"events": [
        {"type": "DELETE", "kv": {"key": b64(b"/f/canary")}},
        {"kv": kv(new, 10)},
    ]})
    assert applied == [new]  # already served as the canary: not applied again
    assert gateway.puts[-1]["revision"] == 10
