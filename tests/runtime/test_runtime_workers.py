"""`serve --workers N`: the pure parts in memory, then real processes on loopback."""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from runtime_helpers import connect, free_ports, make_document, make_rule, recv_line
from test_runtime_reconcile import Reactor
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.web.resource import getChildForRequest
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from l4plan.providers.admin_client import AdminClient
from l4plan.runtime import admin, handover
from l4plan.runtime.reconcile import LiveConfig, ReconcileError
from l4plan.runtime.serve import Runtime, _bound_socket
from l4plan.runtime.settings import Settings
from l4plan.runtime.workers import MainChannel, WorkerError, Workers, by_worker, merge_status

# --- in memory ---------------------------------------------------------------


class FakeLive:
    """A LiveConfig serving a document (here a string) that changes on apply."""

    def __init__(self):
        self.document, self.generation = "old", 1

    def apply(self, document):
        self.document, self.generation = document, self.generation + 1
        return f"changes to {document}"

    def apply_sliced(self, document):
        return defer.maybeDeferred(self.apply, document)


class FakeClient:
    """A child's admin API: GET and PUT of /v1/config; a PUT fails when told."""

    def __init__(self, reactor, path):
        self.path, self.config, self.puts, self.fails = path, "old", [], False

    def request(self, method, path, body=None, generation=None):
        if method == b"GET":
            return defer.succeed({"config": self.config, "generation": 7})
        if self.fails:
            return defer.fail(WorkerError("500 cannot save the document"))
        self.config = body
        self.puts.append(body)
        return defer.succeed({"generation": generation + 1})


def serving_workers(tmp_path, count=3):
    workers = Workers(None, FakeLive(), Settings(data_dir=str(tmp_path), workers=count), FakeClient)
    for child in workers.children:
        child.generation = 1
    return workers


def outcome(d):
    results = []
    d.addBoth(results.append)
    return results[0]


def test_children_get_private_sockets_in_the_data_dir(tmp_path):
    """Child K's admin socket is D/workers/K.sock; main (worker 0) is no child."""
    workers = serving_workers(tmp_path, count=3)
    assert [c.client.path for c in workers.children] == [
        str(tmp_path / "workers" / "1.sock"),
        str(tmp_path / "workers" / "2.sock"),
    ]


def test_a_change_reaches_main_then_every_child(tmp_path):
    """Main applies first; every child is given the document main now serves."""
    workers = serving_workers(tmp_path)
    assert outcome(workers.apply("new")) == "changes to new"
    assert [c.client.config for c in workers.children] == ["new", "new"]
    assert [c.generation for c in workers.children] == [2, 2]


def test_a_failing_child_takes_every_process_back(tmp_path):
    """When one child fails, main and the children already changed go back; the
    failure names the child."""
    workers = serving_workers(tmp_path)
    workers.children[1].client.fails = True
    failure = outcome(workers.apply("new"))
    assert failure.check(ReconcileError)
    assert failure.value.failed == ["worker 2: 500 cannot save the document"]
    assert workers._live.document == "old"
    assert [c.client.puts for c in workers.children] == [["new", "old"], []]


def test_a_child_starting_during_a_change_gets_the_new_document(tmp_path):
    """A child announcing itself while a change is under way is synced after it."""
    workers = serving_workers(tmp_path)
    child = workers.children[0]
    child.generation = None
    workers._lock.acquire()
    workers._joined(child)
    workers._live.apply("new")
    workers._lock.release()
    assert (child.client.config, child.generation) == ("new", 2)
    assert workers.ready.called


def test_an_invalid_document_reaches_no_child(tmp_path):
    """Main's refusal is the answer; no child is asked."""
    workers = serving_workers(tmp_path)

    def refuse(document):
        raise ReconcileError("port in use", ["tcp 127.0.0.1:7000: in use"])

    workers._live.apply = refuse
    assert outcome(workers.apply("new")).check(ReconcileError)
    assert [c.client.puts for c in workers.children] == [[], []]


def test_admin_answers_a_put_once_every_worker_did_and_refuses_another_meanwhile(tmp_path):
    """With workers the PUT is answered when they all have; a PUT meanwhile is a 409."""
    runtime = Runtime(Reactor(), Settings(data_dir=str(tmp_path)))
    live = LiveConfig.restore(runtime, tmp_path)
    runtime.startService()
    pending = defer.Deferred()
    workers = type("Workers", (), {"apply": lambda self, document: pending})()
    site = admin.make_site(live, workers=workers)
    document = tcp_document(7000, 17000)
    first = put_request(site, document)
    assert first.finished == 0
    assert put_request(site, document).responseCode == 409
    pending.callback(live.apply(document))
    assert first.finished and first.responseCode == 200
    assert json.loads(b"".join(first.written))["generation"] == 1
    runtime.stopService()


def put_request(site, document):
    """A rendered PUT /v1/config (If-Match 0) of ``document``: the DummyRequest."""
    request = DummyRequest([b"v1", b"config"])
    request.method = b"PUT"
    request.content = io.BytesIO(json.dumps(document).encode())
    request.too_large = False
    request.requestHeaders.addRawHeader(b"if-match", b"0")
    answer = getChildForRequest(site.resource, request).render(request)
    if answer != NOT_DONE_YET:
        request.write(answer)
        request.finish()
    return request


def test_status_lists_workers_and_sums_their_counters():
    """Open connections per listener and counters per rule are summed over processes."""
    counters = dict.fromkeys(
        ["opened", "active", "refused", "denied", "bytes_in", "bytes_out", "origin_failures"], 0
    )
    listener = {"name": "tcp 127.0.0.1:7000", "active": 1}
    own = {
        "generation": 3,
        "listeners": [dict(listener)],
        "draining": [],
        "rules": {"app/tcp/7000": dict(counters, opened=2, active=1)},
    }
    child = type("Child", (), {"index": 1, "pid": 4242, "generation": 3})
    dead = type("Child", (), {"index": 2, "pid": None, "generation": None})
    other = dict(own, rules={"app/tcp/7000": dict(counters, opened=5, active=2)})
    merged = merge_status(own, [(child, other), (dead, None)])
    assert merged["listeners"] == [dict(listener, active=2)]
    assert merged["rules"]["app/tcp/7000"]["opened"] == 7
    assert merged["rules"]["app/tcp/7000"]["active"] == 3
    assert merged["workers"] == [
        {"worker": 0, "pid": os.getpid(), "alive": True, "generation": 3, "opened": 2, "active": 1},
        {"worker": 1, "pid": 4242, "alive": True, "generation": 3, "opened": 5, "active": 2},
        {"worker": 2, "pid": None, "alive": False, "generation": None, "opened": 0, "active": 0},
    ]
    assert own["rules"]["app/tcp/7000"]["opened"] == 2


class HandingOver:
    """What a worker's ``MainChannel`` sees of its ``restart.Restart``."""

    def __init__(self, sockets):
        self._sockets = sockets
        self.handed = False

    def sockets(self):
        return {name: sock.fileno() for name, sock in self._sockets.items()}

    def handed_over(self):
        self.handed = True


def test_main_channel_gives_the_sockets_then_hands_over_and_its_end_stops_the_worker():
    """Main asks a worker for its sockets on the channel and gets them; then says
    they are handed over; EOF means main is gone: the worker is told to stop."""
    stopped = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    restart = HandingOver({"tcp 127.0.0.1:7000": listener})
    main_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    watch = MainChannel(worker_end, lambda: stopped.append(True), restart)
    handover.send(main_end, {"sockets": True})
    assert watch.doRead() is None
    (name, sock), = handover.receive_sockets(main_end).items()
    assert (name, sock.getsockname()) == ("tcp 127.0.0.1:7000", listener.getsockname())
    handover.send(main_end, {"hand_over": True})
    assert watch.doRead() is None and restart.handed and stopped == []
    main_end.close()
    reason = watch.doRead()
    assert reason is not None
    watch.connectionLost(reason)
    assert stopped == [True]
    for one in (sock, listener, worker_end):
        one.close()


def test_a_handover_names_each_workers_sockets():
    own, children = by_worker({"tcp a:1": 1, "admin": 2, "worker 1/tcp a:1": 3, "worker 2/admin": 4})
    assert own == {"tcp a:1": 1, "admin": 2}
    assert children == {1: {"tcp a:1": 3}, 2: {"admin": 4}}


@pytest.mark.parametrize("address", ["127.0.0.1", "::"])
@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_reuse_port_shares_a_port_only_between_workers(address, kind):
    """Sockets with SO_REUSEPORT share a port; one opened without it cannot join."""
    (port,) = free_ports(1)
    first = _bound_socket(address, port, kind, reuse_port=True)
    second = _bound_socket(address, port, kind, reuse_port=True)
    with first, second, pytest.raises(CannotListenError):
        _bound_socket(address, port, kind, reuse_port=False)


# --- real processes ----------------------------------------------------------


@pytest.fixture
def workers_runtime(start_runtime, tmp_path):
    """Start `serve --workers N --admin unix:...`: (process, admin client, data dir).

    The children are killed by pid in teardown should they outlive main.
    """
    started = []

    def start(document, count=2, drain_timeout=1):
        proc = start_runtime(
            document,
            "--workers",
            count,
            "--admin",
            f"unix:{tmp_path}/admin.sock",
            "--drain-timeout",
            drain_timeout,
        )
        client = AdminClient(f"unix:{tmp_path}/admin.sock", timeout=30)
        started.extend(w["pid"] for w in workers_of(client)[1:])
        return proc, client, Path(proc.args[proc.args.index("--data-dir") + 1])

    yield start
    for pid in started:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def workers_of(client):
    return client.request("GET", "/v1/status").body["workers"]


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def origins_reached(port, count):
    """Open ``count`` connections to ``port``: how many each origin port greeted."""
    reached = Counter()
    for _ in range(count):
        with connect("127.0.0.1", port) as sock:
            reached[int(recv_line(sock).split()[1])] += 1
    return reached


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def put(client, document):
    generation = client.request("GET", "/v1/config").body["generation"]
    return client.request("PUT", "/v1/config", document, {"If-Match": str(generation)})


def tcp_document(edge, origin):
    return make_document([make_rule(str(edge), [(edge, [origin])])])


@pytest.mark.processes
def test_workers_share_connections_and_every_change_then_stop(
    processes, start_origin, workers_runtime
):
    """Both processes accept connections, a PUT reaches both (no new connection
    reaches the old origin), and SIGTERM stops main and its child, exit 0."""
    edge, old, new = free_ports(3)
    start_origin("greet", "127.0.0.1", old, new)
    runtime, client, _ = workers_runtime(tcp_document(edge, old))
    assert origins_reached(edge, 60) == {old: 60}
    workers = workers_of(client)
    assert [w["opened"] > 0 for w in workers] == [True, True]
    assert sum(w["opened"] for w in workers) == 60
    metrics = client.request("GET", "/metrics").body["text"]
    assert f'l4plan_rule_opened_total{{rule="app/tcp/{edge}",' in metrics
    opened = [line for line in metrics.splitlines() if line.startswith("l4plan_rule_opened")]
    assert opened[0].endswith(" 60")

    answer = put(client, tcp_document(edge, new))
    assert answer.status == 200
    assert origins_reached(edge, 50) == {new: 50}
    assert {w["generation"] for w in workers_of(client)} == {answer.body["generation"]}

    child = workers[1]["pid"]
    status, _ = processes.stop(runtime)
    assert status == 0
    assert not alive(child)


@pytest.mark.processes
def test_a_port_in_use_changes_no_worker(start_origin, workers_runtime):
    """A new port taken by a socket without SO_REUSEPORT fails the PUT; every
    worker keeps the document and generation it had."""
    edge, taken, old = free_ports(3)
    start_origin("greet", "127.0.0.1", old)
    document = tcp_document(edge, old)
    _, client, data_dir = workers_runtime(document)
    before = client.request("GET", "/v1/config").body
    child = AdminClient(f"unix:{data_dir}/workers/1.sock", timeout=30)
    child_before = child.request("GET", "/v1/config").body
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        rules = document["applications"]["app"]["rules"] + [make_rule(str(taken), [(taken, [old])])]
        answer = put(client, make_document(rules))
    assert answer.status == 500
    assert client.request("GET", "/v1/config").body == before
    assert child.request("GET", "/v1/config").body == child_before
    assert origins_reached(edge, 20) == {old: 20}


@pytest.mark.processes
def test_a_child_that_fails_takes_every_worker_back(start_origin, workers_runtime):
    """When a child cannot apply (here: cannot save its copy), main goes back to
    the previous document too and no connection reaches the new origin."""
    edge, old, new = free_ports(3)
    start_origin("greet", "127.0.0.1", old, new)
    _, client, data_dir = workers_runtime(tcp_document(edge, old))
    (data_dir / "workers" / "1" / "generation.json").mkdir()
    answer = put(client, tcp_document(edge, new))
    assert answer.status == 500
    assert answer.body["failed"][0].startswith("worker 1: 500 cannot save the document")
    assert client.request("GET", "/v1/config").body["config"] == tcp_document(edge, old)
    assert origins_reached(edge, 50) == {old: 50}


@pytest.mark.processes
def test_a_killed_child_is_restarted_and_gets_changes(start_origin, workers_runtime):
    """SIGKILL to a child: main starts another that serves and follows the next PUT."""
    edge, old, new = free_ports(3)
    start_origin("greet", "127.0.0.1", old, new)
    _, client, _ = workers_runtime(tcp_document(edge, old))
    killed = workers_of(client)[1]["pid"]
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: workers_of(client)[1]["pid"] not in (None, killed))
    wait_for(lambda: workers_of(client)[1]["generation"] is not None)
    assert put(client, tcp_document(edge, new)).status == 200
    assert origins_reached(edge, 60) == {new: 60}
    assert all(w["opened"] > 0 for w in workers_of(client))


@pytest.mark.processes
def test_children_exit_when_main_is_killed(processes, workers_runtime):
    """Main killed with SIGKILL leaves no worker behind: the pipe from it closes."""
    edge, origin = free_ports(2)
    runtime, client, _ = workers_runtime(tcp_document(edge, origin), count=3)
    children = [w["pid"] for w in workers_of(client)[1:]]
    processes.stop(runtime, sig=signal.SIGKILL)
    wait_for(lambda: not any(alive(pid) for pid in children))


@pytest.mark.processes
def test_sigterm_lets_every_worker_drain(processes, start_origin, workers_runtime):
    """Connections open in main and in the child at SIGTERM keep working until
    their clients close them; then every process exits, main with 0."""
    edge, origin = free_ports(2)
    start_origin("greet", "127.0.0.1", origin)
    runtime, client, _ = workers_runtime(tcp_document(edge, origin), drain_timeout=30)
    open_ = [connect("127.0.0.1", edge) for _ in range(12)]
    for sock in open_:
        recv_line(sock)
    workers = workers_of(client)
    assert [w["active"] > 0 for w in workers] == [True, True]
    runtime.send_signal(signal.SIGTERM)
    for sock in open_:
        with sock:
            sock.sendall(b"still here")
            assert sock.recv(100) == b"still here"
    status, _ = processes.stop(runtime, sig=None)
    assert status == 0
    assert not alive(workers[1]["pid"])


@pytest.mark.processes
def test_workers_must_be_at_least_one(tmp_path):
    """`--workers 0` is a usage error."""
    result = subprocess.run(
        [sys.executable, "-m", "l4plan", "runtime", "serve", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "--workers" in result.stderr
