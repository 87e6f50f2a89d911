"""Errors of the state backend.

Every message names the file involved and says what to do about it, so the
CLI can print ``str(error)`` as it is and exit 1.
"""


class StateError(Exception):
    """Base of every state, lock and address error."""


class CorruptState(StateError):
    """The state file cannot be read: bad encoding, bad JSON or schema violation."""


class NewerStateFormat(StateError):
    """The state file was written by a newer l4plan with a newer format."""


class StaleState(StateError):
    """The state on disk changed since the state being written was read."""


class InvalidAddress(StateError):
    """An address is not ``TYPE.NAME`` with a known type and a valid name."""


class ResourceNotFound(StateError):
    """No resource at the address in the state."""


class ResourceExists(StateError):
    """A resource already sits at the address."""


class StateLocked(StateError):
    """Another process holds the state lock; ``holder`` says who."""

    def __init__(self, message, holder=None):
        super().__init__(message)
        self.holder = holder


class LockIdMismatch(StateError):
    """force-unlock was given an ID other than the lock's."""


class NotLocked(StateError):
    """force-unlock found no lock to remove."""


class InvalidDuration(StateError):
    """A duration such as ``--lock-timeout`` could not be parsed."""
