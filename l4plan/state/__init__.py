"""State: the local backend, atomic writes and locking.

The apply engine holds the lock around read, provider apply and write::

    with lock(path, "apply", timeout_seconds):
        state = read_state(path)
        ...
        write_state(path, state.with_resources(applied))
"""

from l4plan.state.duration import parse_duration
from l4plan.state.errors import (
    CorruptState,
    InvalidAddress,
    InvalidDuration,
    LockIdMismatch,
    NewerStateFormat,
    NotLocked,
    ResourceExists,
    ResourceNotFound,
    StaleState,
    StateError,
    StateLocked,
)
from l4plan.state.local import (
    DEFAULT_PATH,
    atomic_write,
    backup_path,
    read_state,
    render,
    update_state,
    write_state,
)
from l4plan.state.locking import LockInfo, force_unlock, lock, lock_path, read_lock
from l4plan.state.model import FORMAT_VERSION, Resource, State, parse_address

__all__ = [
    "DEFAULT_PATH",
    "FORMAT_VERSION",
    "CorruptState",
    "InvalidAddress",
    "InvalidDuration",
    "LockIdMismatch",
    "LockInfo",
    "NewerStateFormat",
    "NotLocked",
    "Resource",
    "ResourceExists",
    "ResourceNotFound",
    "StaleState",
    "State",
    "StateError",
    "StateLocked",
    "atomic_write",
    "backup_path",
    "force_unlock",
    "lock",
    "lock_path",
    "parse_address",
    "parse_duration",
    "read_lock",
    "read_state",
    "render",
    "update_state",
    "write_state",
]
