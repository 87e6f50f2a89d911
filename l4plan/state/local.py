"""The local backend: the state in one JSON file, written atomically.

A write goes to a temporary file in the same directory, is flushed and
fsynced, and is renamed over the state; the directory is fsynced after. The
old file is first hard-linked (or copied) to ``.backup``. At every instant the
state path names a complete file, old or new, whatever kills the process. The
lock is an OS lock (``locking``) that dies with its holder.
"""

import os
from pathlib import Path

from l4plan.files import backup_path, remove_temporaries, write_atomically
from l4plan.model import DEFAULT_BACKEND
from l4plan.state import locking
from l4plan.state.backend import Backend
from l4plan.state.errors import StateError

DEFAULT_PATH = DEFAULT_BACKEND.attributes["path"]


class LocalBackend(Backend):
    """``backend "local" { path = "l4plan.state.json" }``, relative to the configuration."""

    kind = "local"
    stored_as = "state file"

    def __init__(self, settings, workdir):
        self.path = Path(workdir, settings["path"])
        self.lock_file = locking.lock_path(self.path)
        self._held = {}

    @classmethod
    def at(cls, path):
        """The local backend of the state file ``path``."""
        return cls({"path": os.fspath(path)}, ".")

    def describe(self):
        return os.fspath(self.path)

    def recovery(self):
        return _recovery(self.path)

    # --- state ------------------------------------------------------------

    def _load(self):
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None, None
        except OSError as error:
            raise StateError(f"cannot read {self.path}: {error.strerror}") from None
        return raw, None

    def _store(self, base, state, data):
        """Every writer holds the lock, so the file is re-read only to catch
        one whose lock was forced away; temporaries found now were left by a
        killed writer."""
        current = self.read().state
        if (current.lineage, current.serial) != (base.state.lineage, base.state.serial):
            raise self._changed()
        try:
            remove_temporaries(self.path)
            write_atomically(self.path, data, keep_backup=True)
        except OSError as error:
            raise StateError(
                f"cannot write {self.path}: {error.strerror}; the previous "
                f"state is unchanged"
            ) from error
        return None

    # --- lock -------------------------------------------------------------

    def _try_lock(self, info):
        fd = locking.take(self.lock_file, info)
        if fd is None:
            return False
        self._held[info.id] = fd
        return True

    def _unlock(self, info):
        fd = self._held.pop(info.id, None)
        if fd is not None:
            locking.release(self.lock_file, fd)

    def read_lock(self):
        return locking.holder(self.lock_file)

    def _break_lock(self, info):
        locking.remove(self.lock_file)


def _recovery(path):
    """Point at the backup only when it is itself a valid state."""
    backup = backup_path(path)
    try:
        previous = LocalBackend.at(backup).read().state if os.path.exists(backup) else None
    except StateError:
        previous = None
    if previous is None:
        found = "is not a valid state either" if os.path.exists(backup) else "does not exist"
        return (
            f"its backup {backup} {found}, so repair the file by hand or restore "
            f"it from your own copy"
        )
    return (
        f"restore the previous version (serial {previous.serial}) with: "
        f"cp {backup} {os.fspath(path)}, or repair the file by hand"
    )
