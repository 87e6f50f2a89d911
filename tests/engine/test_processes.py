"""The commands as real processes (``python -m l4plan``): locking, terminals, exit codes."""

import json
import os
import pty
import select
import time

import pytest
from engine_helpers import SUBPROCESS_TIMEOUT, WAIT_SECONDS, application, wait_for

from tests.state_files import lock, read_lock, read_state

pytestmark = pytest.mark.processes


def on_terminal(spawn, *args, answer=None, env=None):
    """Run l4plan with stdin, stdout and stderr on a pseudo-terminal.

    Returns ``(code, output)``; ``answer`` is typed once the prompt shows.
    """
    master, slave = pty.openpty()
    try:
        process = spawn(*args, env=env, stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        slave = None
        output = _read_terminal(master, answer)
        return process.wait(timeout=SUBPROCESS_TIMEOUT), output
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)


def _read_terminal(master, answer):
    output, deadline = b"", time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if answer and b"Enter a value:" in output:
            os.write(master, answer.encode() + b"\n")
            answer = None
        if not select.select([master], [], [], 0.1)[0]:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    return output.decode()


def test_plan_apply_replan_exit_codes(project, run):
    """In real processes: plan exits 2, apply 0, plan again 0 with no changes."""
    project.write(application("game"))
    assert run("plan", "--detailed-exitcode")[0] == 2
    code, out, err = run("apply", "--auto-approve")
    assert (code, err) == (0, "")
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in out
    assert run("plan", "--detailed-exitcode")[:2] == (
        0,
        "No changes. The runtime matches the configuration.\n",
    )


def test_two_applies_at_once(project, spawn, run):
    """The second apply waits up to --lock-timeout, then fails naming the holder; a
    third that waits longer runs after the first, and the state is intact."""
    project.write(application("game"))
    hold = project.path / "hold"
    first = spawn("apply", "--auto-approve", env={"L4PLAN_FAKE_HOLD": str(hold)})
    wait_for(project.path / "hold.applying")

    started = time.monotonic()
    code, out, err = run("apply", "--auto-approve", "--lock-timeout", "300ms")
    assert code == 1 and time.monotonic() - started >= 0.3
    assert err.startswith("Error: Error acquiring the state lock: held by ")
    assert f"pid {first.pid} since " in err and "for apply, ID " in err
    assert "waited 0.3s" in err and 'run "l4plan force-unlock ' in err

    started = project.path / "patient.started"
    patient = spawn(
        "apply",
        "--auto-approve",
        "--lock-timeout",
        "20s",
        env={"L4PLAN_FAKE_STARTED": str(started)},
    )
    wait_for(started)
    time.sleep(0.5)
    assert patient.poll() is None, "the patient apply did not wait for the lock"
    (project.path / "hold.release").touch()
    assert first.wait(timeout=SUBPROCESS_TIMEOUT) == 0
    out, err = patient.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert patient.returncode == 0, err
    assert out == "No changes. The runtime matches the configuration.\n"
    state = read_state(project.path / "l4plan.state.json")
    assert state.serial == 1 and sorted(state.resources) == [
        "application.game",
        "site.example.com",
    ]


def test_prompt_yes_applies(project, spawn):
    """On a terminal, apply asks, and 'yes' applies."""
    project.write(application("game"))
    code, output = on_terminal(spawn, "apply", answer="yes")
    assert code == 0, output
    assert "Only 'yes' will be accepted to approve." in output
    assert "Apply complete!" in output
    assert list(project.remote()) == ["application.game"]


def test_prompt_anything_else_cancels(project, spawn):
    """On a terminal, any answer but 'yes' cancels with exit 1 and changes nothing."""
    project.write(application("game"))
    code, output = on_terminal(spawn, "apply", answer="y", env={"NO_COLOR": "1"})
    assert code == 1
    assert "Error: Apply cancelled; nothing was changed." in output
    assert project.state_bytes() is None
    assert not (project.path / "remote.json").exists()


def test_destroy_prompt_says_destroy(project, run, spawn):
    """destroy asks its own question and destroys on 'yes'."""
    project.write(application("game"))
    assert run("apply", "--auto-approve")[0] == 0
    code, output = on_terminal(spawn, "destroy", answer="yes")
    assert code == 0, output
    assert "Do you really want to destroy everything?" in output
    assert project.remote() == {}


def test_targeted_destroy_and_refresh_only_ask_their_own_questions(project, run, spawn):
    """A targeted destroy does not ask to destroy everything; refresh-only asks to update the state."""
    project.write(application("game"), application("chat", "8000"))
    assert run("apply", "--auto-approve")[0] == 0
    code, output = on_terminal(spawn, "destroy", "--target", "application.chat", answer="no")
    assert code == 1 and "destroy everything" not in output
    assert "Do you really want to destroy the objects shown above?" in output
    assert "# (because destroy was requested)" in output
    remote = json.loads((project.path / "remote.json").read_text())
    remote["applications"]["application.game"]["ipv6"] = True
    (project.path / "remote.json").write_text(json.dumps(remote))
    code, output = on_terminal(spawn, "apply", "--refresh-only", answer="no")
    assert "Would you like to update the state to reflect these detected changes?" in output


def test_no_terminal_refuses(project, run):
    """Without a terminal and without --auto-approve, apply refuses; nothing changes."""
    project.write(application("game"))
    code, out, err = run("apply")
    assert code == 1
    assert err.startswith("Error: Refusing to apply without approval")
    assert project.state_bytes() is None


def test_failed_apply_in_a_process(project, run):
    """A provider failure exits 1 with the reason, and the state stays as it was."""
    project.write(application("game"))
    assert run("apply", "--auto-approve")[0] == 0
    before = project.state_bytes()
    project.write(application("game", "8000"))
    code, out, err = run(
        "apply", "--auto-approve", env={"L4PLAN_FAKE_FAIL": "the runtime said 409"}
    )
    assert code == 1
    assert err == (
        'Error: Apply failed: provider "fake": the runtime said 409. '
        "The state is unchanged.\n"
    )
    assert project.state_bytes() == before


def test_colour_only_on_a_terminal(project, spawn, run):
    """The plan is coloured on a terminal, never with --no-color or NO_COLOR or a pipe."""
    project.write(application("game"))
    assert "\x1b[" in on_terminal(spawn, "plan")[1]
    assert "\x1b[" not in on_terminal(spawn, "--no-color", "plan")[1]
    assert "\x1b[" not in on_terminal(spawn, "plan", "--no-color")[1]
    assert "\x1b[" not in on_terminal(spawn, "plan", env={"NO_COLOR": "1"})[1]
    assert "\x1b[" not in run("plan")[1]


def test_usage_errors_exit_one_not_the_changes_code(project, run, tmp_path):
    """A usage error exits 1, never 2, which --detailed-exitcode keeps for "changes"."""
    missing = tmp_path / "missing"
    for args in (
        ("-C", missing, "plan", "--detailed-exitcode"),
        ("validate", "--var-file", missing),
        ("plan", "--no-such-option"),
        ("no-such-command",),
    ):
        code, _, err = run(*map(str, args))
        assert code == 1, (args, err)
        assert "Error: " in err


def test_force_unlock_asks_on_a_terminal(project, spawn):
    """On a terminal force-unlock asks Terraform's question; only "yes" removes the lock."""
    state_path = project.path / "l4plan.state.json"
    with lock(state_path, "apply") as held:
        code, output = on_terminal(spawn, "force-unlock", held.id, answer="no")
        assert code == 1 and "Do you really want to force-unlock?" in output
        assert "force-unlock cancelled; the lock is kept." in output
        assert read_lock(state_path) == held
        code, output = on_terminal(spawn, "force-unlock", held.id, answer="yes")
        assert code == 0 and f"removed the lock {held.describe()}" in output
        assert read_lock(state_path) is None
