"""A fleet: runtimes on 127.0.0.2, .3 and .4 following one etcd, driven by
apply through the real CLI with provider "fleet"."""

import base64
import json
import os
import signal
import socket
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
from runtime_helpers import L4PLAN, connect, free_ports

from benchmarks.fleet_converge import fleet_figure
from l4plan.providers.admin_client import AdminClient
from tests.processes import started
from tests.servers import Etcd, write_certificates

pytestmark = pytest.mark.processes

NODES = ("n2", "n3", "n4")
LOAD_ROUNDS = 2000  # bounds the load loop; it stops when the applies are done
SITE = 'site "example.com" {\n  plan = "enterprise"\n}\n'


def app(name, edge, origin):
    return (
        f'application "{name}" {{\n  domain = "{name}.example.com"\n'
        f'  rule {{\n    protocol = "tcp"\n    edge_port = "{edge}"\n'
        f'    origin = "127.0.0.1"\n    origin_port = "{origin}"\n  }}\n}}\n'
    )


class Fleet:
    def __init__(self, processes, tmp_path, etcd):
        self.processes, self.tmp_path, self.etcd = processes, tmp_path, etcd
        self.prefix = f"/fleet/{uuid.uuid4().hex}/"
        self.config = tmp_path / "config"
        self.config.mkdir()
        self.nodes = {}

    def address(self, node):
        return f"127.0.0.{node[1:]}"

    def start(self, node, *extra):
        data = self.tmp_path / node
        data.mkdir(exist_ok=True)
        self.nodes[node] = self.processes.start(
            [L4PLAN, "runtime", "serve", "--data-dir", data, "--bind", self.address(node),
             "--admin", f"unix:{data}/admin.sock", "--etcd", ",".join(self.etcd.endpoints),
             "--etcd-prefix", self.prefix, "--node", node, "--node-ttl", "2", *extra],
            node,
        )
        return self.nodes[node]

    def reports(self):
        """The nodes' reports in etcd, by node."""
        prefix = f"{self.prefix}nodes/"
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        answer = self.etcd.call(self.etcd.names[0], "kv/range", {
            "key": base64.b64encode(prefix.encode()).decode(),
            "range_end": base64.b64encode(end.encode()).decode(),
        })
        reports = (json.loads(base64.b64decode(kv["value"])) for kv in answer.get("kvs") or [])
        return {report["node"]: report for report in reports}

    def reported(self):
        """The names of the nodes whose report is in etcd."""
        return set(self.reports())

    def wait_reported(self, nodes=NODES):
        """Wait (bounded) until every node of ``nodes`` has reported: a node is
        ready to serve before it has read etcd, and apply waits only for those
        it finds."""
        deadline = time.monotonic() + 20
        while not set(nodes) <= self.reported():
            assert time.monotonic() < deadline, f"reported: {self.reported()}"
            time.sleep(0.02)

    def configure(self, *apps, tls=None):
        files = "".join(f'  {k} = "{v}"\n' for k, v in (tls or {}).items())
        provider = (
            f'provider "fleet" {{\n  endpoints = {list(self.etcd.endpoints)!r}\n'
            f'  prefix = "{self.prefix}"\n  wait_timeout = "20s"\n{files}}}\n'
        ).replace("'", '"')
        (self.config / "main.l4.hcl").write_text(SITE + provider + "".join(apps))

    def apply_everywhere(self, cli, port):
        """Apply; every node converges and serves ``port``."""
        result = self.l4plan(cli, "apply", "--auto-approve")
        assert result.exit_code == 0, result.output
        assert "3/3 nodes converged" in result.stderr
        for node in NODES:
            assert echoes(self.address(node), port)
        return result

    def l4plan(self, cli, *args):
        return cli("-C", self.config, *args)


@pytest.fixture(scope="module")
def etcd():
    server = started(Etcd)
    yield server
    server.close()


def started_fleet(processes, tmp_path, etcd, start_origin, *node_options):
    """Three nodes following ``etcd``, an echo origin, and ports for two rules."""
    made = Fleet(processes, tmp_path, etcd)
    made.origin, made.edge, made.edge2 = free_ports(3)
    start_origin("echo", "127.0.0.1", made.origin)
    for node in NODES:
        made.start(node, *node_options)
    made.wait_reported()
    return made


@pytest.fixture
def fleet(processes, tmp_path, etcd, start_origin):
    return started_fleet(processes, tmp_path, etcd, start_origin)


@contextmanager
def held(address, port):
    """``address:port`` taken, as by another program."""
    with socket.socket() as sock:
        sock.bind((address, port))
        sock.listen()
        yield


def echoes(address, port):
    with connect(address, port) as sock:
        sock.sendall(b"ping\n")
        return sock.recv(5) == b"ping\n"


def test_apply_returns_once_every_node_serves(fleet, cli):
    fleet.configure(app("game", fleet.edge, fleet.origin))
    result = fleet.l4plan(cli, "apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "3/3 nodes converged in" in result.stderr
    for node in NODES:
        assert f"node {node}: ok" in result.stderr
        assert echoes(fleet.address(node), fleet.edge)
    again = fleet.l4plan(cli, "plan", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    status = fleet.l4plan(cli, "runtime", "status")
    assert status.exit_code == 0, status.output
    rows = status.stdout.splitlines()
    assert "3 nodes" in rows[0] and rows[2].split() == ["node", "revision", "status", "listeners", "open", "last", "seen"]
    assert [row.split()[0] for row in rows[3:]] == list(NODES)
    assert all(row.split()[2:4] == ["ok", "1"] for row in rows[3:])


def test_a_port_held_on_one_node_rolls_the_fleet_back(fleet, cli):
    fleet.configure(app("game", fleet.edge, fleet.origin))
    assert fleet.l4plan(cli, "apply", "--auto-approve").exit_code == 0
    state_before = (fleet.config / "l4plan.state.json").read_bytes()
    with held("127.0.0.3", fleet.edge2):
        fleet.configure(app("game", fleet.edge, fleet.origin), app("chat", fleet.edge2, fleet.origin))
        result = fleet.l4plan(cli, "apply", "--auto-approve")
    assert result.exit_code == 1
    assert f"node n3: tcp 127.0.0.3:{fleet.edge2}: [Errno 98] Address already in use" in result.stderr
    assert "rolled back to the previous document" in result.stderr
    assert (fleet.config / "l4plan.state.json").read_bytes() == state_before
    for node in NODES:
        assert echoes(fleet.address(node), fleet.edge)
        with pytest.raises(OSError):
            connect(fleet.address(node), fleet.edge2, timeout=2).close()


def test_a_killed_node_is_dropped_with_a_warning(fleet, cli):
    fleet.configure(app("game", fleet.edge, fleet.origin))
    assert fleet.l4plan(cli, "apply", "--auto-approve").exit_code == 0
    fleet.nodes["n4"].send_signal(signal.SIGKILL)
    fleet.configure(app("game", fleet.edge, fleet.origin), app("chat", fleet.edge2, fleet.origin))
    result = fleet.l4plan(cli, "apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "warning: node n4 left the fleet (its lease expired)" in result.stderr
    assert "2/2 nodes converged" in result.stderr
    for node in ("n2", "n3"):
        assert echoes(fleet.address(node), fleet.edge2)


def test_etcd_away_nodes_keep_serving_and_catch_up(processes, tmp_path, cli, start_origin):
    """etcd stopped: every node keeps serving, plan fails with one line, a node
    restarted meanwhile serves its last document; etcd back: apply converges."""
    etcd = started(Etcd)
    try:
        fleet = started_fleet(processes, tmp_path, etcd, start_origin)
        fleet.configure(app("game", fleet.edge, fleet.origin))
        assert fleet.l4plan(cli, "apply", "--auto-approve").exit_code == 0
        etcd.kill(etcd.names[0])
        planned = fleet.l4plan(cli, "plan")
        assert planned.exit_code == 1
        assert planned.stderr.startswith(f"Error: the fleet {fleet.prefix} in etcd ({etcd.endpoints[0]}): no endpoint answered")
        assert planned.stderr.count("\n") == 1 and "Traceback" not in planned.stderr
        for node in NODES:
            assert echoes(fleet.address(node), fleet.edge)
        processes.stop(fleet.nodes["n3"])
        fleet.start("n3")  # etcd is away: it cannot report, it serves what it persisted
        assert echoes("127.0.0.3", fleet.edge)
        etcd.start_again(etcd.names[0])
        fleet.configure(app("game", fleet.edge, fleet.origin), app("chat", fleet.edge2, fleet.origin))
        fleet.apply_everywhere(cli, fleet.edge2)
    finally:
        etcd.close()


def udp_app(name, edge, origin):
    return app(name, edge, origin).replace('protocol = "tcp"', 'protocol = "udp"')


def test_twenty_applies_under_load_drop_nothing(fleet, cli, start_origin):
    """Short TCP connections, UDP pings and three long-lived streams through all
    three nodes while 20 applies change another application each time."""
    udp_origin, udp_edge, other = free_ports(3)
    start_origin("udp", "127.0.0.1", udp_origin)
    base = [app("game", fleet.edge, fleet.origin), udp_app("voice", udp_edge, udp_origin)]
    fleet.configure(*base)
    assert fleet.l4plan(cli, "apply", "--auto-approve").exit_code == 0
    streams = [connect(fleet.address(node), fleet.edge) for node in NODES]
    stop, failures, done = threading.Event(), [], {"tcp": 0, "udp": 0}

    def load():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(2)
            for i in range(LOAD_ROUNDS):
                if stop.is_set():
                    return
                for node in NODES:
                    try:
                        if not echoes(fleet.address(node), fleet.edge):
                            failures.append(f"tcp {node}: wrong echo")
                        done["tcp"] += 1
                        udp.sendto(b"ping %d" % i, (fleet.address(node), udp_edge))
                        if udp.recvfrom(100)[0] != b"ping %d" % i:
                            failures.append(f"udp {node}: wrong reply")
                        done["udp"] += 1
                    except OSError as error:
                        failures.append(f"{node}: {error}")

    loader = threading.Thread(target=load)
    loader.start()
    try:
        for round_ in range(20):
            fleet.configure(*base, app("other", other, fleet.origin + (round_ % 2)))
            result = fleet.l4plan(cli, "apply", "--auto-approve")
            assert result.exit_code == 0, result.output
            assert "3/3 nodes converged" in result.stderr
            for number, stream in enumerate(streams):
                payload = b"round %d stream %d\n" % (round_, number)
                stream.sendall(payload)
                assert stream.recv(len(payload), socket.MSG_WAITALL) == payload
    finally:
        stop.set()
        loader.join(60)
        for stream in streams:
            stream.close()
    assert failures == []
    assert done["tcp"] > 0 and done["udp"] > 0


def desired_revision(cluster, member, prefix):
    key = base64.b64encode(f"{prefix}desired".encode()).decode()
    kvs = cluster.call(member, "kv/range", {"key": key}).get("kvs") or [{}]
    return int(kvs[0].get("mod_revision", 0))


def test_the_etcd_leader_killed_mid_apply(processes, tmp_path, cli, start_origin):
    """Three etcd members; the leader is SIGKILLed while apply waits for the
    nodes: apply succeeds or fails in one clean line, then the next converges."""
    cluster = started(Etcd, 3)
    try:
        fleet = started_fleet(processes, tmp_path, cluster, start_origin)
        fleet.configure(app("game", fleet.edge, fleet.origin))
        assert fleet.l4plan(cli, "apply", "--auto-approve").exit_code == 0
        fleet.configure(app("game", fleet.edge, fleet.origin), app("chat", fleet.edge2, fleet.origin))
        leader = cluster.leader()
        follower = next(n for n in cluster.names if n != leader)
        before = desired_revision(cluster, follower, fleet.prefix)
        applying = processes.start([L4PLAN, "-C", fleet.config, "apply", "--auto-approve"], "apply", ready=None)
        deadline = time.monotonic() + 30
        while desired_revision(cluster, follower, fleet.prefix) == before and time.monotonic() < deadline:
            time.sleep(0.005)  # until apply has written: it now waits for the nodes
        cluster.kill(leader)
        code, _ = processes.stop(applying, sig=None, timeout=60)
        assert "Traceback" not in processes.stderr(applying)
        assert code in (0, 1)
        fleet.configure(app("game", fleet.edge, fleet.origin), app("chat", fleet.edge2, fleet.origin), app("more", fleet.edge2 + 1, fleet.origin))
        fleet.apply_everywhere(cli, fleet.edge2)
    finally:
        cluster.close()


def test_the_fleet_benchmark_runs(etcd):
    """benchmarks.fleet_converge on one node, one apply: a figure comes out."""
    assert fleet_figure(etcd, 1, 0, 1) >= 0


def test_plan_shows_the_connections_open_on_every_node(fleet, cli):
    fleet.configure(app("game", fleet.edge, fleet.origin))
    assert fleet.l4plan(cli, "apply", "--auto-approve").exit_code == 0
    streams = [connect(address, fleet.edge) for address in ("127.0.0.2", "127.0.0.2", "127.0.0.3")]
    try:
        for stream in streams:
            stream.sendall(b"x\n")
            assert stream.recv(2) == b"x\n"
        fleet.configure(app("game", fleet.edge, fleet.origin + 1))
        deadline = time.monotonic() + 10
        while "3 connections open" not in (planned := fleet.l4plan(cli, "plan")).stdout:
            assert time.monotonic() < deadline, planned.output  # reports come with each lease renewal
            time.sleep(0.2)
    finally:
        for stream in streams:
            stream.close()


def test_a_fleet_over_mutual_tls(processes, tmp_path, cli, start_origin):
    """etcd on https with client-cert-auth: nodes and apply both show certificates."""
    certs = write_certificates(tmp_path)
    etcd = started(Etcd, 1, certs)
    try:
        files = {"ca_file": f"{certs}/ca.pem", "cert_file": f"{certs}/client.pem", "key_file": f"{certs}/client.key"}
        options = [a for k, v in files.items() for a in (f"--etcd-{k.replace('_', '-')}", v)]
        fleet = started_fleet(processes, tmp_path, etcd, start_origin, *options)
        fleet.configure(app("game", fleet.edge, fleet.origin), tls=files)
        fleet.apply_everywhere(cli, fleet.edge)
    finally:
        etcd.close()


def test_a_canary_goes_first_then_the_rest(fleet, cli):
    fleet.configure(app("game", fleet.edge, fleet.origin))
    assert fleet.l4plan(cli, "apply", "--auto-approve").exit_code == 0
    fleet.configure(app("game", fleet.edge, fleet.origin), app("chat", fleet.edge2, fleet.origin))
    result = fleet.l4plan(cli, "apply", "--auto-approve", "--canary", "n3")
    assert result.exit_code == 0, result.output
    assert "Canary: n3 take this change first, then every other node." in result.stdout
    lines = result.stderr.splitlines()
    assert lines[0] == "canary: n3 first, then the other 2 nodes"
    assert lines[1].startswith("  node n3: ok") and lines[2].startswith("1/1 nodes converged")
    assert "3/3 nodes converged" in lines[-1]
    for node in NODES:
        assert echoes(fleet.address(node), fleet.edge2)


def test_a_canary_that_refuses_is_withdrawn_and_the_others_never_see_the_change(fleet, cli):
    fleet.configure(app("game", fleet.edge, fleet.origin))
    assert fleet.l4plan(cli, "apply", "--auto-approve").exit_code == 0
    state_before = (fleet.config / "l4plan.state.json").read_bytes()
    reported_before = {n: r["revision"] for n, r in fleet.reports().items() if n != "n2"}
    with held("127.0.0.2", fleet.edge2):
        fleet.configure(app("game", fleet.edge, fleet.origin), app("chat", fleet.edge2, fleet.origin))
        result = fleet.l4plan(cli, "apply", "--auto-approve", "--canary", "n2")
    assert result.exit_code == 1
    assert f"node n2: tcp 127.0.0.2:{fleet.edge2}: [Errno 98] Address already in use. The canary was withdrawn" in result.stderr
    assert (fleet.config / "l4plan.state.json").read_bytes() == state_before
    assert {n: r["revision"] for n, r in fleet.reports().items() if n != "n2"} == reported_before
    for node in ("n3", "n4"):
        with pytest.raises(OSError):
            connect(fleet.address(node), fleet.edge2, timeout=2).close()
    unknown = fleet.l4plan(cli, "apply", "--auto-approve", "--canary", "n9")
    assert unknown.exit_code == 1 and "--canary names n9, not a node of the fleet" in unknown.stderr



def test_a_restarted_node_rejoins_by_itself(fleet, cli):
    """`runtime restart` on a node: the new process serves the sockets, follows
    etcd and reports as the node (the old one's report goes with its lease);
    the next apply converges on all three."""
    fleet.configure(app("game", fleet.edge, fleet.origin))
    fleet.apply_everywhere(cli, fleet.edge)
    node = fleet.tmp_path / "n2"
    answer = AdminClient(f"unix:{node}/admin.sock", timeout=90).request("POST", "/v1/restart")
    assert answer.status == 200, answer.body
    old = fleet.nodes["n2"]
    assert old.wait(timeout=60) == 0  # it drained and exited by itself (its stdout lives on in the new one)
    try:
        fleet.wait_reported()
        assert echoes(fleet.address("n2"), fleet.edge)
        fleet.configure(app("game", fleet.edge2, fleet.origin))
        fleet.apply_everywhere(cli, fleet.edge2)
        assert AdminClient(f"unix:{node}/admin.sock").request("GET", "/v1/status").body["pid"] == answer.body["pid"]
    finally:
        os.kill(answer.body["pid"], signal.SIGKILL)  # no child of the test: ended by its pid
