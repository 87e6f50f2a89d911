"""plan and apply as real processes on each backend: a SIGKILLed apply's lock
dies with it, racing applies lose nothing, a restarted database is one clear
error and then works."""

import os

import pytest
from engine_helpers import SUBPROCESS_TIMEOUT, application, wait_for

pytestmark = pytest.mark.processes

ROUNDS = 20


def on(backends, project):
    settings = backends.settings()
    (project.path / "backend.l4.hcl").write_text(backends.block(settings))
    return backends.open(settings)


def test_a_sigkilled_apply_does_not_leave_the_lock_behind(backends, project, spawn, run):
    store = on(backends, project)
    project.write(application("game"))
    hold = project.path / "hold"
    killed = spawn("apply", "--auto-approve", env={"L4PLAN_FAKE_HOLD": str(hold)})
    wait_for(project.path / "hold.applying")
    assert store.read_lock().operation == "apply"
    killed.kill()
    killed.wait(timeout=SUBPROCESS_TIMEOUT)
    code, out, err = run("apply", "--auto-approve", "--lock-timeout", "10s")
    assert (code, err) == (0, ""), out
    assert "application.game" in store.read().state.resources
    assert store.read_lock() is None


def test_racing_applies_raise_the_serial_by_one_per_change(backends, project, spawn):
    """Each round changes the configuration and starts two applies at once:
    one applies it, the other then finds nothing to do."""
    store = on(backends, project)
    for round_ in range(ROUNDS):
        project.write(application("game", edge_port=str(7000 + round_)))
        racers = [spawn("apply", "--auto-approve", "--lock-timeout", "30s") for _ in range(2)]
        for racer in racers:
            out, err = racer.communicate(timeout=SUBPROCESS_TIMEOUT)
            assert racer.returncode == 0, err
        state = store.read().state
        assert state.serial == round_ + 1
        assert state.resources["application.game"].attributes["rules"][0]["edge_port"] == str(7000 + round_)


def test_a_database_down_between_plan_and_apply_is_one_error_then_apply_works(postgres, project, run):
    (project.path / "backend.l4.hcl").write_text(
        f'backend "pg" {{\n  conn_str = "{postgres.url}"\n  name = "down-{os.getpid()}"\n}}\n'
    )
    project.write(application("game"))
    code, out, err = run("plan", "--out", "game.plan")
    assert (code, err) == (0, "")
    postgres.stop()
    try:
        code, out, err = run("apply", "game.plan")
        assert code == 1
        assert err.startswith('Error: backend "pg" (host=127.0.0.1') and "cannot connect" in err
        assert err.count("\n") == 1 and "Traceback" not in err
    finally:
        postgres.start()
    code, out, err = run("apply", "game.plan")
    assert (code, err) == (0, ""), out
    assert "application.game" in project.remote()
