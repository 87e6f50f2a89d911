"""SIGKILL while writing state leaves the old or the new state, never a broken one."""

import os
import random
import signal
import time

import pytest

from l4plan.files import backup_path
from tests.state_files import read_state

pytestmark = pytest.mark.processes

# Writes ever newer states of COUNT resources in a loop. Every resource of a
# version carries that version's serial, so a reader can tell a complete
# version from a mix of two.
WRITER = """
import sys
from l4plan.state import Resource
from tests.state_files import read_state, write_state
path, count = sys.argv[1], int(sys.argv[2])
state = read_state(path)
print("writing", flush=True)
while True:
    serial = state.serial + 1
    resources = [
        Resource.at(f"application.app{i}", {"serial": serial, "padding": "x" * 2000})
        for i in range(count)
    ]
    state = write_state(path, state.with_resources(resources))
"""

COUNT = 300
MAX_KILLS = 40
TIME_BUDGET_SECONDS = 10
MIN_KILLS = 10


def assert_complete(state):
    """A version written whole: every resource present and of that version."""
    assert len(state.resources) == COUNT
    assert {r.attributes["serial"] for r in state.resources.values()} == {state.serial}


def check_after_kill(path, last_serial):
    """The file parses and is a complete version no older than before; so is .backup."""
    if not path.exists():
        assert last_serial == 0
        return 0
    state = read_state(path)
    assert_complete(state)
    assert state.serial >= last_serial
    if os.path.exists(backup_path(path)):
        backup = read_state(backup_path(path))
        assert_complete(backup)
        assert backup.serial in (state.serial - 1, state.serial)
        assert backup.lineage == state.lineage
    return state.serial


def test_sigkill_while_writing_never_breaks_state(state_path, spawn):
    """Dozens of SIGKILLs at random moments of a write loop leave only whole versions."""
    chance = random.Random(20261125)
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    last_serial, kills = 0, 0
    lineages = set()
    while kills < MAX_KILLS and time.monotonic() < deadline:
        writer = spawn(WRITER, str(state_path), str(COUNT))
        assert writer.stdout.readline().strip() == "writing"
        time.sleep(chance.uniform(0, 0.12))
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=10) == -signal.SIGKILL, writer.stderr.read()
        kills += 1
        last_serial = check_after_kill(state_path, last_serial)
        lineages.add(read_state(state_path).lineage)
    assert kills >= MIN_KILLS
    assert last_serial > 0
    assert len(lineages - {None}) == 1
