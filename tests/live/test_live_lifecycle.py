"""The runtime provider with a real runtime: failures, restarts, drift, import,
status and stop, all through the real CLI."""

import copy
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from importlib import resources

import pytest
from jsonschema import Draft202012Validator

from l4plan.providers.admin_client import AdminClient
from tests.live.conftest import application, runtime_pid
from tests.live.load import read_line, tcp_exchange
from tests.runtime.runtime_helpers import free_ports, read_until

pytestmark = pytest.mark.processes

ADMIN = "unix:.l4plan/runtime.sock"


def config():
    return AdminClient(ADMIN).request("GET", "/v1/config").body


def applied(project, *blocks):
    project.write(*blocks)
    result = project.l4plan("apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_port_in_use_fails_apply_and_changes_nothing(project, tagged_origin):
    """A port held by another process: apply fails naming it; the runtime and the
    state are as before, and the old rule still serves."""
    edge, taken, origin = free_ports(3)
    tagged_origin(origin, taken)  # holds TCP and UDP `taken`
    app = application("app", ("tcp", edge, origin, "off"))
    applied(project, app)
    before, state = config(), project.state_bytes()

    project.write(app, application("new", ("tcp", taken, origin, "off")))
    result = project.l4plan("apply", "--auto-approve")

    assert result.returncode == 1
    assert f"tcp 127.0.0.1:{taken}: [Errno 98] Address already in use" in result.stderr
    assert "The state is unchanged." in result.stderr
    assert config() == before
    assert project.state_bytes() == state
    assert tcp_exchange(edge, "still") == f"{origin} off"


def test_restart_restores_and_plan_shows_no_changes(project, tagged_origin):
    """`runtime stop` ends the runtime; the next plan starts it again with the
    applied configuration, and finds nothing to change."""
    edge, origin = free_ports(2)
    tagged_origin(origin)
    applied(project, application("app", ("tcp", edge, origin, "proxy_protocol_v2")))
    generation = config()["generation"]

    stopped = project.l4plan("runtime", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "Stopped the runtime" in stopped.stdout
    assert not (project.path / ".l4plan" / "runtime.pid").exists()
    with pytest.raises(ConnectionRefusedError):
        tcp_exchange(edge, "down")

    replan = project.l4plan("plan", "--detailed-exitcode")
    assert replan.returncode == 0, replan.stdout + replan.stderr
    assert "No changes." in replan.stdout
    assert config()["generation"] == generation
    assert tcp_exchange(edge, "up") == f"{origin} v2"


def test_change_by_hand_is_drift_and_import_adopts(project, tagged_origin):
    """A PUT made behind l4plan's back shows as drift; `import` adopts the
    application it added, and apply puts back the rule it changed."""
    edge, other_edge, origin, other_origin = free_ports(4)
    tagged_origin(origin, other_origin)
    app = application("app", ("tcp", edge, origin, "off"))
    applied(project, app)

    current = config()
    document = copy.deepcopy(current["config"])
    document["applications"]["app"]["rules"][0]["ports"][0]["origin"] = [other_origin]
    document["applications"]["app"]["rules"][0]["origin_port"] = str(other_origin)
    adopted = copy.deepcopy(document["applications"]["app"])
    adopted["domain"] = "other.example.com"
    adopted["rules"][0].update(
        edge_port=str(other_edge), ports=[{"edge": other_edge, "origin": [other_origin]}]
    )
    document["applications"]["other"] = adopted
    put = AdminClient(ADMIN).request(
        "PUT", "/v1/config", document, {"If-Match": str(current["generation"])}
    )
    assert put.status == 200, put.body

    drift = project.l4plan("plan", "--detailed-exitcode")
    assert drift.returncode == 2
    assert "# application.other has been created outside of l4plan" in drift.stdout
    assert "# application.app has changed outside of l4plan" in drift.stdout

    other = application("other", ("tcp", other_edge, other_origin, "off"))
    project.write(app, other)
    imported = project.l4plan("import", "application.other", "other")
    assert imported.returncode == 0, imported.stderr
    state = json.loads(project.state_bytes())
    assert state["resources"]["application.other"]["attributes"]["domain"] == "other.example.com"

    applied(project, app, other)
    assert project.l4plan("plan", "--detailed-exitcode").returncode == 0
    assert tcp_exchange(edge, "back") == f"{origin} off"
    assert tcp_exchange(other_edge, "adopted") == f"{other_origin} off"


def test_status_shows_listeners_and_counters(project, tagged_origin):
    """`runtime status` reads the address from the provider block and prints
    listeners with their open connections and the counters per rule."""
    edge, origin = free_ports(2)
    tagged_origin(origin)
    provider = f'provider "runtime" {{\n  admin = "{ADMIN}"\n}}\n'
    applied(project, application("app", ("tcp", edge, origin, "off")), provider)
    tcp_exchange(edge, "counted")

    status = project.l4plan("runtime", "status")
    assert status.returncode == 0, status.stderr
    assert f"tcp 127.0.0.1:{edge}  app/tcp/{edge}  0 open" in status.stdout
    assert f"app/tcp/{edge}: 0 open, 1 opened" in status.stdout
    as_json = json.loads(project.l4plan("runtime", "status", "--json").stdout)
    assert as_json["rules"][f"app/tcp/{edge}"]["opened"] == 1
    assert runtime_pid(project.path) is not None


def test_plan_shows_connections_open_on_changed_and_removed_rules(project, tagged_origin):
    """Plan text and JSON say how many connections are open on each changed or
    removed rule; a rule without any shows none in the text."""
    kept, removed, quiet, origin, other = free_ports(5)
    tagged_origin(origin, other)
    applied(
        project,
        application("app", ("tcp", kept, origin, "off"), ("tcp", removed, origin, "off")),
        application("calm", ("tcp", quiet, origin, "off")),
    )
    open_ = [
        socket.create_connection(("127.0.0.1", port), timeout=10) for port in (kept, kept, removed)
    ]
    try:
        for sock in open_:
            sock.sendall(b"hold\n")
            assert sock.recv(100).endswith(b" hold\n")
        project.write(
            application("app", ("tcp", kept, other, "off")),
            application("calm", ("tcp", quiet, other, "off")),
        )
        text = project.l4plan("plan").stdout
        as_json = json.loads(project.l4plan("plan", "--json").stdout)
    finally:
        for sock in open_:
            sock.close()

    assert "# live: 2 connections open now, they keep the old rule until they end" in text
    assert "# live: 1 connection open now, they drain, then close" in text
    assert text.count("# live:") == 2
    app = next(c for c in as_json["changes"] if c["address"] == "application.app")
    assert {r["key"]: r["open_connections"] for r in app["rule_changes"]} == {
        f"tcp/{kept}": 2,
        f"tcp/{removed}": 1,
    }
    calm = next(c for c in as_json["changes"] if c["address"] == "application.calm")
    assert calm["rule_changes"][0]["open_connections"] == 0
    schema = json.loads(resources.files("l4plan.schemas").joinpath("plan.schema.json").read_text())
    Draft202012Validator(schema).validate(as_json)


def test_saved_plan_refused_after_a_change_behind_its_back(project, tagged_origin):
    """A saved plan is not applied over a runtime changed since it was made: the
    error says to plan again, and runtime and state stay as they are."""
    edge, origin, other = free_ports(3)
    tagged_origin(origin, other)
    applied(project, application("app", ("tcp", edge, origin, "off")))
    project.write(application("app", ("tcp", edge, other, "off")))
    assert project.l4plan("plan", "--out", "change.plan").returncode == 0

    current = config()
    document = copy.deepcopy(current["config"])
    document["applications"]["app"]["keepalive_protection"] = True
    headers = {"If-Match": str(current["generation"])}
    assert AdminClient(ADMIN).request("PUT", "/v1/config", document, headers).status == 200
    state, running = project.state_bytes(), config()

    result = project.l4plan("apply", "change.plan")
    assert result.returncode == 1
    assert (
        "application.app on the runtime differs from what the plan was made against"
        in result.stderr
    )
    assert "run plan again" in result.stderr
    assert (project.state_bytes(), config()) == (state, running)


def closed_by_peer(sock):
    """Whether the peer closed (FIN) or aborted (RST) ``sock``; waits its timeout."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def foreground_runtime(project):
    """`l4plan runtime serve --drain-timeout 3` on the default admin socket,
    started by the test (not autostarted); killed by its Popen after."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "l4plan",
            "runtime",
            "serve",
            "--admin",
            ADMIN,
            "--drain-timeout",
            "3",
        ],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        bufsize=0,
    )
    try:
        read_until(proc, b"ready")
        yield proc
    finally:
        proc.kill()
        proc.communicate(timeout=20)


def test_removed_rule_drains_its_connections(project, tagged_origin, foreground_runtime):
    """A rule removed by apply stops accepting at once; its open connection keeps
    working while it drains and is closed at the drain timeout. The provider
    block names the runtime and forbids autostart."""
    kept, removed, origin = free_ports(3)
    tagged_origin(origin)
    provider = f'provider "runtime" {{\n  admin     = "{ADMIN}"\n  autostart = false\n}}\n'
    applied(
        project,
        application("app", ("tcp", kept, origin, "off"), ("tcp", removed, origin, "off")),
        provider,
    )
    with socket.create_connection(("127.0.0.1", removed), timeout=10) as sock:
        sock.sendall(b"before\n")
        assert sock.recv(100) == f"{origin} off before\n".encode()
        applied(project, application("app", ("tcp", kept, origin, "off")), provider)

        with pytest.raises(ConnectionRefusedError):
            tcp_exchange(removed, "new")
        sock.sendall(b"during the drain")
        assert sock.recv(100) == b"during the drain"
        status = AdminClient(ADMIN).request("GET", "/v1/status").body
        assert [d["name"] for d in status["draining"]] == [f"tcp 127.0.0.1:{removed}"]
        assert closed_by_peer(sock)  # aborted by the runtime at the drain timeout
    assert tcp_exchange(kept, "kept") == f"{origin} off"
    assert runtime_pid(project.path) is None  # nothing was autostarted


def test_autostart_over_tcp_makes_a_private_token(project, tagged_origin):
    """With an http admin address, autostart writes a 0600 token file and starts
    the runtime with it; requests without the token are refused."""
    admin_port, edge, origin = free_ports(3)
    tagged_origin(origin)
    address = f"http://127.0.0.1:{admin_port}"
    provider = f'provider "runtime" {{\n  admin = "{address}"\n}}\n'
    applied(project, application("app", ("tcp", edge, origin, "off")), provider)

    token_file = project.path / ".l4plan" / "admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert AdminClient(address).request("GET", "/v1/config").status == 401
    token = token_file.read_text().strip()
    assert AdminClient(address, token).request("GET", "/v1/config").body["generation"] == 1
    assert project.l4plan("plan", "--detailed-exitcode").returncode == 0
    assert tcp_exchange(edge, "tcp admin") == f"{origin} off"


def test_killed_runtime_is_started_again(project, tagged_origin):
    """After a kill -9 (the socket file left behind), the next plan starts a
    runtime again with the applied configuration."""
    edge, origin = free_ports(2)
    tagged_origin(origin)
    applied(project, application("app", ("tcp", edge, origin, "off")))
    os.kill(runtime_pid(project.path), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while runtime_pid(project.path) is not None and time.monotonic() < deadline:
        time.sleep(0.05)  # dead (maybe a zombie) once its state says so
    assert (project.path / ".l4plan" / "runtime.sock").exists()

    replan = project.l4plan("plan", "--detailed-exitcode")
    assert replan.returncode == 0, replan.stdout + replan.stderr
    assert "started a local runtime" in replan.stderr
    assert tcp_exchange(edge, "again") == f"{origin} off"


def test_state_rm_lets_go_and_import_adopts_again(project, tagged_origin):
    """After `state rm`, plans neither drift nor destroy the object, apply keeps it
    serving, a declared block is refused until `import` adopts it again."""
    edge, other_edge, origin = free_ports(3)
    tagged_origin(origin)
    app = application("app", ("tcp", edge, origin, "off"))
    other = application("other", ("tcp", other_edge, origin, "proxy_protocol_v2"))
    applied(project, app, other)

    removed = project.l4plan("state", "rm", "application.other")
    assert removed.returncode == 0, removed.stderr
    project.write(app)
    plan = project.l4plan("plan", "--detailed-exitcode")
    assert (plan.returncode, plan.stdout) == (0, "No changes. The runtime matches the configuration.\n")

    applied(project, application("app", ("tcp", edge, origin, "proxy_protocol_v2")))
    assert sorted(config()["config"]["applications"]) == ["app", "other"]
    assert tcp_exchange(other_edge, "kept") == f"{origin} v2"
    assert tcp_exchange(edge, "changed") == f"{origin} v2"

    project.write(application("app", ("tcp", edge, origin, "proxy_protocol_v2")), other)
    refused = project.l4plan("plan")
    assert refused.returncode == 1
    assert 'was removed from the state with "l4plan state rm"' in refused.stderr
    assert '"l4plan import application.other other"' in refused.stderr
    imported = project.l4plan("import", "application.other", "other")
    assert imported.returncode == 0, imported.stderr
    assert "unmanaged" not in json.loads(project.state_bytes())
    again = project.l4plan("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def test_state_mv_is_a_rename_not_a_replacement(project, tagged_origin):
    """Renaming a block with `state mv` plans an in-place update of the name; apply
    renames it on the runtime, and a connection open through it stays open."""
    edge, origin = free_ports(2)
    tagged_origin(origin)
    applied(project, application("old", ("tcp", edge, origin, "off")))
    with socket.create_connection(("127.0.0.1", edge), timeout=10) as held:
        held.sendall(b"before\n")
        assert read_line(held) == f"{origin} off before\n"

        project.write(application("new", ("tcp", edge, origin, "off"), domain="old"))
        moved = project.l4plan("state", "mv", "application.old", "application.new")
        assert moved.returncode == 0, moved.stderr
        plan = project.l4plan("plan", "--detailed-exitcode")
        assert plan.returncode == 2, plan.stdout + plan.stderr
        assert "~ update in-place" in plan.stdout and '~ name = "old" -> "new"' in plan.stdout
        assert "Plan: 0 to add, 1 to change, 0 to destroy." in plan.stdout

        applied(project, application("new", ("tcp", edge, origin, "off"), domain="old"))
        assert sorted(config()["config"]["applications"]) == ["new"]
        held.sendall(b"after\n")
        assert read_line(held) == "after\n"
    assert tcp_exchange(edge, "fresh") == f"{origin} off"
