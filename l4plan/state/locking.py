"""The state lock: a file beside the state, created atomically.

``O_CREAT | O_EXCL`` makes creating the lock file the test-and-set: of two
processes exactly one creates it. The file records who holds the lock so the
loser can say so, and its ``id`` is what ``force-unlock`` must be given.
"""

import getpass
import json
import os
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from l4plan.state.errors import LockIdMismatch, NotLocked, StateError, StateLocked

POLL_SECONDS = 0.1


@dataclass(frozen=True)
class LockInfo:
    """The content of a lock file."""

    id: str
    operation: str
    who: str
    created: str

    @classmethod
    def new(cls, operation):
        """A lock for ``operation`` held by this process, made now."""
        created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(str(uuid.uuid4()), operation, _who(), created)

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        return cls(data["id"], data["operation"], data["who"], data["created"])

    def to_json(self):
        return json.dumps(asdict(self), indent=2) + "\n"

    def describe(self):
        return (
            f"held by {self.who} since {self.created} "
            f"for {self.operation}, ID {self.id}"
        )


def _who():
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def lock_path(path):
    """Where the lock of the state at ``path`` lives."""
    return f"{os.fspath(path)}.lock"


def read_lock(path):
    """The lock on the state at ``path``, or None when it is not locked."""
    lock_file = lock_path(path)
    try:
        with open(lock_file, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateError(f"cannot read the lock file {lock_file}: {error.strerror}") from None
    try:
        return LockInfo.from_json(text)
    except (ValueError, KeyError, TypeError):
        raise StateError(
            f"lock file {lock_file} is unreadable (a process may have died while "
            f"creating it); if no l4plan process is running, delete {lock_file}"
        ) from None


def _try_create(lock_file, info):
    """Create the lock file holding ``info``; False when it already exists."""
    try:
        fd = os.open(lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as error:
        raise StateError(
            f"cannot create the lock file {lock_file}: {error.strerror}; check "
            f"that its directory exists and is writable"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(info.to_json())
            f.flush()
            os.fsync(f.fileno())
    except BaseException as error:
        try:
            os.unlink(lock_file)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise StateError(
                f"cannot write the lock file {lock_file}: {error.strerror}; free "
                f"space on that file system, then run the command again"
            ) from None
        raise
    return True


def _locked_error(path, timeout_seconds):
    lock_file = lock_path(path)
    where = f"lock file {lock_file}, waited {timeout_seconds:g}s"
    try:
        holder = read_lock(path)
    except StateError as unreadable:
        return StateLocked(f"Error acquiring the state lock: {unreadable}")
    if holder is None:
        return StateLocked(
            f"Error acquiring the state lock: it was released just as the wait "
            f"ended ({where}); run the command again"
        )
    return StateLocked(
        f"Error acquiring the state lock: {holder.describe()} ({where}); "
        f'run "l4plan force-unlock {holder.id}" if that process is gone',
        holder,
    )


def acquire(path, operation, timeout_seconds=0.0):
    """Take the lock of the state at ``path``, retrying until the timeout.

    Raises StateLocked naming the holder when the timeout passes.
    """
    info = LockInfo.new(operation)
    lock_file = lock_path(path)
    deadline = time.monotonic() + timeout_seconds
    while not _try_create(lock_file, info):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _locked_error(path, timeout_seconds)
        time.sleep(min(POLL_SECONDS, remaining))
    return info


def release(path, info):
    """Remove the lock if it is still ours (it may have been force-unlocked)."""
    try:
        current = read_lock(path)
    except StateError:
        return
    if current is not None and current.id == info.id:
        try:
            os.unlink(lock_path(path))
        except FileNotFoundError:
            pass
        except OSError as error:
            raise StateError(
                f"cannot remove the lock file {lock_path(path)}: {error.strerror}; "
                f"the lock stays: once the file system is writable again, run "
                f'"l4plan force-unlock {info.id}"'
            ) from None


@contextmanager
def lock(path, operation, timeout_seconds=0.0):
    """Hold the state lock for the ``with`` block; released even on errors."""
    info = acquire(path, operation, timeout_seconds)
    try:
        yield info
    finally:
        release(path, info)


def force_unlock(path, lock_id):
    """Remove a stale lock, only when ``lock_id`` is the ID it was taken with."""
    lock_file = lock_path(path)
    current = read_lock(path)
    if current is None:
        raise NotLocked(f"{os.fspath(path)} is not locked: {lock_file} does not exist")
    if current.id != lock_id:
        raise LockIdMismatch(
            f"the lock {lock_file} has ID {current.id}, not {lock_id}; it is "
            f"{current.describe()}. Nothing was unlocked: check the ID"
        )
    os.unlink(lock_file)
    return current
