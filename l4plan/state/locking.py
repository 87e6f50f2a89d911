"""Lock holder info, and the local backend's lock: an OS lock on a file.

``flock`` on ``STATE.lock`` is the lock: the kernel releases it when its
holder exits, however it dies, so a killed apply never leaves a lock that
sticks. The file also records who holds it, so a waiter can say so; a file
whose ``flock`` nobody holds is a leftover and means "not locked".
"""

import fcntl
import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from l4plan.state.errors import StateError

#: How long a reader waits for a new holder to finish writing its info.
INFO_WAIT_SECONDS = 0.5


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock, the same on every backend."""

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


def take(lock_file, info):
    """The fd holding the lock at ``lock_file`` for ``info``, or None when held."""
    while True:
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise StateError(
                f"cannot create the lock file {lock_file}: {error.strerror}; check "
                f"that its directory exists and is writable"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if _still_at(fd, lock_file):
            break
        os.close(fd)  # the holder removed it as we opened it: take the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, info.to_json().encode("utf-8"))
        os.fsync(fd)
    except OSError as error:
        release(lock_file, fd)
        raise StateError(
            f"cannot write the lock file {lock_file}: {error.strerror}; free "
            f"space on that file system, then run the command again"
        ) from None
    return fd


def _still_at(fd, lock_file):
    try:
        return os.stat(lock_file).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def release(lock_file, fd):
    """Let go of the lock, removing its file if it is still the one ``fd``
    locks; a file that cannot be removed is harmless, since nobody holds it."""
    try:
        if _still_at(fd, lock_file):
            os.unlink(lock_file)
    except OSError:
        pass
    finally:
        os.close(fd)


def holder(lock_file):
    """The LockInfo of a live lock at ``lock_file``, or None."""
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateError(f"cannot read the lock file {lock_file}: {error.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _info(fd, lock_file)
        return None  # a leftover: nobody holds it
    finally:
        os.close(fd)


def _info(fd, lock_file):
    deadline = time.monotonic() + INFO_WAIT_SECONDS
    while True:
        text = os.pread(fd, 65536, 0).decode("utf-8", "replace")
        try:
            return LockInfo.from_json(text)
        except (ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                raise StateError(
                    f"the lock file {lock_file} is held but does not say by whom; "
                    f"wait for the holder to finish"
                ) from None
            time.sleep(0.01)


def remove(lock_file):
    """Remove the lock file whoever holds it: the next locker makes a new one."""
    try:
        os.unlink(lock_file)
    except FileNotFoundError:
        pass
