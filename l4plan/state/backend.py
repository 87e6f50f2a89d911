"""The state backend interface, and finding backends by name.

A backend keeps one state and its lock. The engine reads a ``Stored`` (the
state and an opaque version), and writes a successor with compare-and-swap on
that version: a writer whose lock was broken still cannot overwrite a newer
state. Backends register with ``[project.entry-points."l4plan.backends"]
NAME = "module:Class"``; ``local`` is one of them.

A subclass provides ``describe``, ``_load``, ``_store``, ``_try_lock``,
``_unlock``, ``read_lock`` and ``_break_lock``; waiting, messages and the
successor checks are the same everywhere and live here.
"""

import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace

from l4plan import __version__
from l4plan.plugins import plugin_class
from l4plan.schema import block_defaults
from l4plan.state.document import check_successor, corrupt_in, decode, encode, same_content
from l4plan.state.errors import LockIdMismatch, NotLocked, StaleState, StateError, StateLocked
from l4plan.state.locking import LockInfo
from l4plan.state.model import FORMAT_VERSION, State

GROUP = "l4plan.backends"
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Stored:
    """A state as read, and the version a write must find to replace it."""

    state: State
    version: object = None


class Backend:
    """Where one state and its lock are kept. A subclass is made with
    ``(settings, workdir)``: its block's attributes over the defaults the
    configuration schema gives them, and the configuration's directory."""

    kind = "?"
    #: What messages call the stored state ("state file" for local).
    stored_as = "state"

    def describe(self):
        """One line naming the backend and where it keeps the state (no secrets)."""
        raise NotImplementedError

    def close(self):
        """Let go of connections; the backend is not used afterwards."""

    # --- state ------------------------------------------------------------

    def read(self):
        """The Stored state; nothing stored yet is the empty state."""
        raw, version = self._load()
        if raw is None:
            return Stored(State.empty(), version)
        return Stored(decode(raw, self.describe(), self._corrupt), version)

    def write(self, base, state):
        """Store ``state``, derived from ``base``; returns the Stored written.

        The same content as ``base`` writes nothing: the serial moves only
        with content. The first write gives the state its lineage.
        """
        if same_content(state, base.state):
            return base
        check_successor(self.describe(), base.state, state)
        return self._put(base, state)

    def push(self, base, state, force=False):
        """Replace the stored state by ``state`` (``state push``)."""
        if not force:
            check_successor(self.describe(), base.state, state)
        return self._put(base, state)

    def update(self, change, operation, lock_timeout=0.0):
        """Read, ``change`` and write under the lock; returns the state written."""
        with self.lock(operation, lock_timeout):
            base = self.read()
            return self.write(base, change(base.state)).state

    def _put(self, base, state):
        written = replace(
            state,
            lineage=state.lineage or str(uuid.uuid4()),
            l4plan_version=__version__,
            format_version=FORMAT_VERSION,
        )
        return Stored(written, self._store(base, written, encode(written)))

    def _corrupt(self, what):
        return corrupt_in(self.describe(), self.recovery(), self.stored_as)(what)

    def recovery(self):
        """What to do about a stored state that cannot be read."""
        return (
            'restore a good copy with "l4plan state push --force FILE", '
            "or repair it by hand"
        )

    def _load(self):
        """``(bytes or None, version)`` of what is stored."""
        raise NotImplementedError

    def _store(self, base, state, data):
        """Store ``data`` (the bytes of ``state``) if what is stored is still
        ``base``; the new version. Raises ``self._changed()`` otherwise."""
        raise NotImplementedError

    def _changed(self):
        """The StaleState of a write that found another's in its place."""
        return StaleState(
            f"{self.describe()} changed since it was read: another l4plan run "
            f"wrote it, so nothing was written; run the command again"
        )

    # --- lock -------------------------------------------------------------

    @contextmanager
    def lock(self, operation, timeout_seconds=0.0):
        """Hold the lock for the ``with`` block; released even on errors."""
        info = self.acquire(operation, timeout_seconds)
        try:
            yield info
        finally:
            self._unlock(info)

    def acquire(self, operation, timeout_seconds=0.0):
        """Take the lock, retrying until the timeout; StateLocked names the holder."""
        info = LockInfo.new(operation)
        deadline = time.monotonic() + timeout_seconds
        while not self._try_lock(info):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._locked_error(timeout_seconds)
            time.sleep(min(POLL_SECONDS, remaining))
        return info

    def _locked_error(self, timeout_seconds):
        where = f"{self.describe()}, waited {timeout_seconds:g}s"
        try:
            holder = self.read_lock()
        except StateError as unreadable:
            return StateLocked(f"Error acquiring the state lock: {unreadable}")
        if holder is None:
            return StateLocked(
                f"Error acquiring the state lock: it was released just as the "
                f"wait ended ({where}); run the command again"
            )
        return StateLocked(
            f"Error acquiring the state lock: {holder.describe()} ({where}); "
            f"wait for it with --lock-timeout, or, if that process is gone, "
            f'run "l4plan force-unlock {holder.id}"',
            holder,
        )

    def force_unlock(self, lock_id):
        """Remove the lock, only when ``lock_id`` is the ID it was taken with."""
        current = self.read_lock()
        if current is None:
            raise NotLocked(f"{self.describe()} is not locked")
        if current.id != lock_id:
            raise LockIdMismatch(
                f"the lock of {self.describe()} has ID {current.id}, not "
                f"{lock_id}; it is {current.describe()}. Nothing was unlocked: "
                f"check the ID"
            )
        self._break_lock(current)
        return current

    def read_lock(self):
        """The LockInfo of the live lock, or None."""
        raise NotImplementedError

    def _try_lock(self, info):
        """Take the lock as ``info``; False when another holds it."""
        raise NotImplementedError

    def _unlock(self, info):
        """Release the lock if it is still ``info``'s."""
        raise NotImplementedError

    def _break_lock(self, info):
        """Remove the lock ``info`` whoever holds it (force-unlock)."""
        raise NotImplementedError


def open_backend(settings, workdir):
    """The backend of a ``backend`` block (a model.Settings), made ready to use."""
    cls = plugin_class(GROUP, settings.kind, "backend", Backend, StateError)
    return cls({**block_defaults("backend", settings.kind), **settings.attributes}, workdir)
