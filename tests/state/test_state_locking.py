"""The state lock: content, waiting, release, force-unlock, and other processes."""

import errno
import json
import os
import threading
import uuid
from datetime import datetime

import pytest

from l4plan.state import (
    InvalidDuration,
    LockIdMismatch,
    NotLocked,
    Resource,
    StateError,
    StateLocked,
    lock_path,
    parse_duration,
)
from tests.state_files import force_unlock, lock, read_lock, read_state

HOLD_LOCK = """
import sys
from tests.state_files import lock
with lock(sys.argv[1], "apply") as info:
    print(info.id, flush=True)
    sys.stdin.read()
"""

TRY_LOCK = """
import sys
from l4plan.state import StateLocked
from tests.state_files import lock
try:
    with lock(sys.argv[1], "plan", float(sys.argv[2])):
        print("acquired")
except StateLocked as error:
    print(error)
"""

ADD_RESOURCES = """
import sys
from l4plan.state import Resource
from tests.state_files import update_state
path, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    new = Resource.at(f"application.{prefix}{i}", {"n": i})
    update_state(path, lambda s: s.with_resource(new), "apply", 30)
"""


def test_lock_file_content(state_path):
    """The lock file records id, operation, who (user@host pid) and an ISO UTC time."""
    with lock(state_path, "state mv") as info:
        with open(lock_path(state_path)) as f:
            recorded = json.load(f)
    assert recorded == {
        "id": info.id,
        "operation": "state mv",
        "who": info.who,
        "created": info.created,
    }
    assert uuid.UUID(info.id).version == 4
    assert info.who.endswith(f" pid {os.getpid()}") and "@" in info.who
    assert datetime.fromisoformat(info.created).utcoffset().total_seconds() == 0


def test_lock_is_released_on_exit_and_on_error(state_path):
    """The lock file goes away when the block ends, also by an exception."""
    with lock(state_path, "apply"):
        assert os.path.exists(lock_path(state_path))
    assert not os.path.exists(lock_path(state_path))
    with pytest.raises(RuntimeError):
        with lock(state_path, "apply"):
            raise RuntimeError("provider failed")
    assert read_lock(state_path) is None


def test_second_lock_fails_naming_the_holder(state_path):
    """With a zero timeout a taken lock fails at once, naming holder, ID and the fix."""
    with lock(state_path, "apply") as held:
        with pytest.raises(StateLocked) as caught:
            with lock(state_path, "plan"):
                pass
    assert caught.value.holder == held
    assert str(caught.value) == (
        f"Error acquiring the state lock: held by {held.who} since {held.created} "
        f"for apply, ID {held.id} ({state_path}, waited 0s); "
        f"wait for it with --lock-timeout, or, if that process is gone, "
        f'run "l4plan force-unlock {held.id}"'
    )


def test_waiter_gets_the_lock_once_released(state_path):
    """A waiter within its timeout takes the lock when the holder lets go."""
    taken = threading.Event()
    release = threading.Event()

    def hold():
        with lock(state_path, "apply"):
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    releaser = threading.Timer(0.3, release.set)
    holder.start()
    try:
        assert taken.wait(10)
        releaser.start()
        with lock(state_path, "plan", timeout_seconds=10) as info:
            assert read_lock(state_path) == info
    finally:
        release.set()
        releaser.cancel()
        holder.join(10)


def test_release_leaves_a_lock_that_is_not_ours(state_path):
    """After a force-unlock, the old holder does not remove the new holder's lock."""
    with lock(state_path, "apply") as first:
        force_unlock(state_path, first.id)
        with lock(state_path, "plan", 0) as second:
            pass
        assert read_lock(state_path) is None
        with lock(state_path, "plan", 0) as third:
            pass
    assert second.id != third.id


def test_force_unlock_with_the_right_id(state_path):
    """force-unlock removes the lock when given its ID and returns what it removed."""
    with lock(state_path, "apply") as held:
        assert force_unlock(state_path, held.id) == held
        assert read_lock(state_path) is None


def test_force_unlock_with_a_wrong_id(state_path):
    """A wrong ID removes nothing and shows the real holder."""
    with lock(state_path, "apply") as held:
        with pytest.raises(LockIdMismatch) as caught:
            force_unlock(state_path, "not-the-id")
        assert read_lock(state_path) == held
    assert str(caught.value) == (
        f"the lock of {state_path} has ID {held.id}, not not-the-id; it is "
        f"held by {held.who} since {held.created} for apply, ID {held.id}. "
        "Nothing was unlocked: check the ID"
    )


def test_force_unlock_without_a_lock(state_path):
    """Unlocking an unlocked state says so."""
    with pytest.raises(NotLocked) as caught:
        force_unlock(state_path, "some-id")
    assert str(caught.value) == (
        f"{state_path} is not locked"
    )


@pytest.mark.parametrize("content", ["", '{"id": "x", "operation": "apply", "who": "w", "created": "c"}'])
def test_a_lock_file_nobody_holds_does_not_lock(state_path, content):
    """A file left by a crash (empty, or a dead holder's info) is not a lock."""
    with open(lock_path(state_path), "w") as f:
        f.write(content)
    assert read_lock(state_path) is None
    with lock(state_path, "apply") as held:
        assert read_lock(state_path) == held
    with pytest.raises(NotLocked):
        force_unlock(state_path, "x")


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1.5s", 1.5),
        (" 10s ", 10.0),
    ],
)
def test_parse_duration(text, seconds):
    """Durations read as Terraform's -lock-timeout reads them."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "-1s", "s", "1d", "1 s", "30sec", "1m 30s"])
def test_parse_duration_refuses(text):
    """Anything else is refused with an example of what is accepted."""
    with pytest.raises(InvalidDuration) as caught:
        parse_duration(text)
    assert str(caught.value) == (
        f"invalid duration {text!r}: write a number and a unit (ms, s, m or h), "
        'e.g. "500ms", "30s", "2m", "1m30s", or "0"'
    )


@pytest.mark.processes
def test_other_process_waits_then_fails_naming_the_holder(state_path, spawn):
    """A second process waits out its timeout and then names the holding process."""
    holder = spawn(HOLD_LOCK, str(state_path))
    lock_id = holder.stdout.readline().strip()
    held = read_lock(state_path)
    assert held.id == lock_id
    waiter = spawn(TRY_LOCK, str(state_path), "1")
    out, _ = waiter.communicate(timeout=30)
    assert out.strip() == (
        f"Error acquiring the state lock: held by {held.who} since {held.created} "
        f"for apply, ID {lock_id} ({state_path}, waited 1s); "
        f"wait for it with --lock-timeout, or, if that process is gone, "
        f'run "l4plan force-unlock {lock_id}"'
    )
    assert f" pid {holder.pid} " in out
    holder.stdin.close()
    assert holder.wait(timeout=10) == 0
    assert read_lock(state_path) is None


@pytest.mark.processes
def test_other_process_gets_the_lock_when_released(state_path, spawn):
    """A waiting process takes the lock as soon as the holder exits."""
    holder = spawn(HOLD_LOCK, str(state_path))
    assert holder.stdout.readline().strip()
    waiter = spawn(TRY_LOCK, str(state_path), "30")
    holder.stdin.close()
    out, _ = waiter.communicate(timeout=30)
    assert out.strip() == "acquired"


@pytest.mark.processes
def test_concurrent_writers_lose_no_update(state_path, spawn):
    """Two processes adding resources under the lock both land every write."""
    writers = [spawn(ADD_RESOURCES, str(state_path), prefix, "15") for prefix in "ab"]
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    state = read_state(state_path)
    assert len(state.resources) == 30
    assert state.serial == 30
    assert read_lock(state_path) is None
    assert isinstance(state.resources["application.a14"], Resource)


def test_a_full_disk_when_locking_is_one_clear_error(state_path, monkeypatch):
    """ENOSPC while writing the lock file: a StateError, and no half-written lock is left."""

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("l4plan.state.locking.os.fsync", full)
    with pytest.raises(StateError) as caught:
        with lock(state_path, "apply"):
            pass
    assert str(caught.value) == (
        f"cannot write the lock file {state_path}.lock: No space left on device; "
        "free space on that file system, then run the command again"
    )
    assert not os.path.exists(f"{state_path}.lock")


def test_a_lock_file_that_cannot_be_removed_still_releases(state_path, monkeypatch):
    """Release lets go of the OS lock even when its file cannot be removed."""

    def read_only(path):
        raise OSError(errno.EROFS, "Read-only file system")

    with lock(state_path, "apply"):
        monkeypatch.setattr("l4plan.state.locking.os.unlink", read_only)
    monkeypatch.undo()
    assert read_lock(state_path) is None
    with lock(state_path, "apply") as again:
        assert read_lock(state_path) == again
