"""State: the value, its backends (local, pg, etcd) and their locks.

The apply engine holds the lock around read, provider apply and write::

    with backend.lock("apply", timeout_seconds):
        stored = backend.read()
        ...
        backend.write(stored, stored.state.with_resources(applied))
"""

from l4plan.state.backend import Backend, Stored, open_backend
from l4plan.state.document import decode_copy, encode
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
from l4plan.state.local import DEFAULT_PATH, LocalBackend
from l4plan.state.locking import LockInfo, lock_path
from l4plan.state.model import FORMAT_VERSION, Resource, State, parse_address

__all__ = [
    "Backend",
    "CorruptState",
    "DEFAULT_PATH",
    "FORMAT_VERSION",
    "InvalidAddress",
    "InvalidDuration",
    "LocalBackend",
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
    "Stored",
    "decode_copy",
    "encode",
    "lock_path",
    "open_backend",
    "parse_address",
    "parse_duration",
]
