"""state list/show/rm/mv and force-unlock through the real command line."""

import json
import os

import pytest
from click.testing import CliRunner

from l4plan.cli import main
from l4plan.state import Resource, State
from tests.state_files import lock, read_lock, read_state, write_state

RUN_CLI = "from l4plan.cli import main; main()"

HOLD_LOCK = """
import sys
from tests.state_files import lock
with lock(sys.argv[1], "apply") as info:
    print(info.id, flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def seeded(state_path):
    """A state holding an application, a load balancer and the site."""
    resources = [
        Resource.at(
            "application.game", {"domain": "game.example.com"}, {"id": "app-1"}
        ),
        Resource.at("load_balancer.pool", {"algorithm": "round_robin"}),
        Resource.at("site.example.com", {"plan": "enterprise"}),
    ]
    return write_state(state_path, State.empty().with_resources(resources))


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_list(state_path, seeded):
    """state list prints the addresses, sorted, one a line."""
    result = run("state", "list", "--state", str(state_path))
    assert (result.exit_code, result.stdout) == (
        0,
        "application.game\nload_balancer.pool\nsite.example.com\n",
    )


def test_list_without_state_is_empty(state_path):
    """No state file: nothing to list, and no file is created."""
    result = run("state", "list", "--state", str(state_path))
    assert (result.exit_code, result.stdout) == (0, "")
    assert not state_path.exists()


def test_list_in_workdir(tmp_path, seeded, monkeypatch):
    """The default state path is l4plan.state.json in the directory given by -C."""
    monkeypatch.chdir(tmp_path.parent)
    result = run("-C", str(tmp_path), "state", "list")
    assert result.stdout.splitlines()[0] == "application.game"


def test_show(state_path, seeded):
    """state show prints the resource as JSON: type, name, attributes, identity."""
    result = run("state", "show", "application.game", "--state", str(state_path))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "type": "application",
        "name": "game",
        "attributes": {"domain": "game.example.com"},
        "identity": {"id": "app-1"},
    }


def test_show_missing_address(state_path, seeded):
    """state show of an unknown address fails naming it."""
    result = run("state", "show", "application.ghost", "--state", str(state_path))
    assert result.exit_code == 1
    assert result.stderr == (
        'Error: application.ghost is not in the state; "l4plan state list" shows '
        "the addresses it holds\n"
    )


def test_rm(state_path, seeded):
    """state rm forgets the address, bumps the serial and keeps a backup."""
    result = run("state", "rm", "application.game", "--state", str(state_path))
    assert (result.exit_code, result.stdout) == (0, "Removed application.game\n")
    after = read_state(state_path)
    assert list(after.resources) == ["load_balancer.pool", "site.example.com"]
    assert (after.serial, after.lineage) == (seeded.serial + 1, seeded.lineage)
    assert read_state(f"{state_path}.backup") == seeded
    assert read_lock(state_path) is None


def test_rm_several(state_path, seeded):
    """state rm takes several addresses and removes them in one write."""
    result = run(
        "state",
        "rm",
        "application.game",
        "site.example.com",
        "--state",
        str(state_path),
    )
    assert result.exit_code == 0
    after = read_state(state_path)
    assert (list(after.resources), after.serial) == (
        ["load_balancer.pool"],
        seeded.serial + 1,
    )


def test_rm_missing_address_changes_nothing(state_path, seeded):
    """state rm of an unknown address fails naming it and leaves the file alone."""
    content = state_path.read_bytes()
    result = run(
        "state",
        "rm",
        "application.game",
        "application.ghost",
        "--state",
        str(state_path),
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: application.ghost is not in the state")
    assert state_path.read_bytes() == content


def test_mv(state_path, seeded):
    """state mv renames the resource and keeps its attributes and identity."""
    result = run(
        "state",
        "mv",
        "application.game",
        "application.arena",
        "--state",
        str(state_path),
    )
    assert (result.exit_code, result.stdout) == (
        0,
        "Moved application.game to application.arena\n",
    )
    moved = read_state(state_path).resource("application.arena")
    assert (moved.attributes, moved.identity) == (
        {"domain": "game.example.com"},
        {"id": "app-1"},
    )


@pytest.mark.parametrize(
    "source, destination, message",
    [
        ("application.ghost", "application.x", "application.ghost is not in the state"),
        ("application.game", "load_balancer.pool", "a resource keeps its type"),
        (
            "load_balancer.pool",
            "load_balancer.pool",
            "load_balancer.pool is already in",
        ),
        ("application.game", "application.Bad", "invalid address 'application.Bad'"),
    ],
)
def test_mv_refused_changes_nothing(state_path, seeded, source, destination, message):
    """state mv of a missing address, onto an existing one or across types fails cleanly."""
    content = state_path.read_bytes()
    result = run("state", "mv", source, destination, "--state", str(state_path))
    assert result.exit_code == 1
    assert message in result.stderr and result.stderr.startswith("Error: ")
    assert state_path.read_bytes() == content


def test_corrupt_state_is_reported(state_path):
    """A corrupt file gives the backend's message and exit 1."""
    state_path.write_text("{")
    result = run("state", "list", "--state", str(state_path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {state_path} is not a valid state file")


def test_rm_while_locked_fails_naming_holder(state_path, seeded):
    """state rm does not write while another operation holds the lock."""
    content = state_path.read_bytes()
    with lock(state_path, "apply") as held:
        result = run("state", "rm", "application.game", "--state", str(state_path))
    assert result.exit_code == 1
    assert (
        f"held by {held.who} since {held.created} for apply, ID {held.id}"
        in result.stderr
    )
    assert state_path.read_bytes() == content


def test_bad_lock_timeout_is_a_usage_error(state_path, seeded):
    """A malformed --lock-timeout is refused before anything is touched."""
    result = run(
        "state",
        "rm",
        "application.game",
        "--lock-timeout",
        "soon",
        "--state",
        str(state_path),
    )
    assert result.exit_code == 1
    assert (
        "Invalid value for '--lock-timeout': invalid duration 'soon'" in result.stderr
    )


def test_force_unlock_right_and_wrong_id(state_path):
    """force-unlock refuses a wrong ID and removes the lock with the right one."""
    with lock(state_path, "apply") as held:
        wrong = run("force-unlock", "nope", "--state", str(state_path))
        assert wrong.exit_code == 1
        assert wrong.stderr.startswith(
            f"Error: the lock of {state_path} has ID {held.id}, not nope"
        )
        assert read_lock(state_path) == held
        right = run("force-unlock", held.id, "--force", "--state", str(state_path))
        assert right.exit_code == 0
        assert (
            right.stdout
            == f"Unlocked {state_path}: removed the lock {held.describe()}\n"
        )
        assert read_lock(state_path) is None


def test_force_unlock_when_not_locked(state_path):
    """force-unlock without a lock says there is none."""
    result = run("force-unlock", "some-id", "--state", str(state_path))
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {state_path} is not locked\n",
    )


@pytest.mark.processes
def test_cli_process_waits_for_lock_then_fails(state_path, seeded, spawn):
    """A real `l4plan state rm --lock-timeout 1s` against a held lock names the holder."""
    holder = spawn(HOLD_LOCK, str(state_path))
    lock_id = holder.stdout.readline().strip()
    held = read_lock(state_path)
    content = state_path.read_bytes()
    cli = spawn(
        RUN_CLI,
        "state",
        "rm",
        "application.game",
        "--lock-timeout",
        "1s",
        "--state",
        str(state_path),
    )
    out, err = cli.communicate(timeout=30)
    assert (cli.returncode, out) == (1, "")
    assert err == (
        f"Error: Error acquiring the state lock: held by {held.who} since "
        f"{held.created} for apply, ID {lock_id} ({state_path}, waited 1s); "
        f"wait for it with --lock-timeout, or, if that process is gone, "
        f'run "l4plan force-unlock {lock_id}"\n'
    )
    assert state_path.read_bytes() == content
    holder.stdin.close()
    assert holder.wait(timeout=10) == 0
    retry = spawn(
        RUN_CLI, "state", "rm", "application.game", "--state", str(state_path)
    )
    out, err = retry.communicate(timeout=30)
    assert (retry.returncode, out, err) == (0, "Removed application.game\n", "")
    assert "application.game" not in read_state(state_path).resources


@pytest.mark.processes
def test_a_killed_holders_lock_dies_with_it(state_path, seeded, spawn):
    """A SIGKILLed holder leaves its lock file behind, but the OS lock died with
    it: the next command proceeds without force-unlock, which finds nothing."""
    holder = spawn(HOLD_LOCK, str(state_path))
    lock_id = holder.stdout.readline().strip()
    assert read_lock(state_path).id == lock_id
    holder.kill()
    holder.wait(timeout=10)
    assert os.path.exists(f"{state_path}.lock")
    assert read_lock(state_path) is None
    unlock = spawn(RUN_CLI, "force-unlock", lock_id, "--force", "--state", str(state_path))
    out, err = unlock.communicate(timeout=30)
    assert (unlock.returncode, err) == (1, f"Error: {state_path} is not locked\n")
    retry = spawn(RUN_CLI, "state", "rm", "application.game", "--state", str(state_path))
    out, err = retry.communicate(timeout=30)
    assert (retry.returncode, out, err) == (0, "Removed application.game\n", "")


def test_state_in_a_missing_directory(tmp_path):
    """A state path whose directory does not exist is an error, not a traceback."""
    missing = tmp_path / "nowhere" / "l4plan.state.json"
    result = run("state", "rm", "application.game", "--state", str(missing))
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: cannot create the lock file {missing}.lock: No such file or "
        "directory; check that its directory exists and is writable\n",
    )


def test_force_unlock_asks_and_refuses_without_a_terminal(state_path):
    """Without --force and with no terminal to confirm on, force-unlock keeps the lock."""
    with lock(state_path, "apply") as held:
        result = run("force-unlock", held.id, "--state", str(state_path))
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: Refusing to force-unlock without confirmation: the lock is "
            f"{held.describe()}, and there is no terminal to ask on. Make sure "
            "that process is gone, then run again with --force.\n"
        )
        assert read_lock(state_path) == held
