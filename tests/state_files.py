"""The local backend as path-taking functions, for tests that set up and read
state files directly."""

from l4plan.state import LocalBackend


def read_state(path):
    return LocalBackend.at(path).read().state


def write_state(path, state):
    """Write ``state`` over what is in ``path`` now, as an engine step would."""
    backend = LocalBackend.at(path)
    return backend.write(backend.read(), state).state


def lock(path, operation, timeout_seconds=0.0):
    return LocalBackend.at(path).lock(operation, timeout_seconds)


def read_lock(path):
    return LocalBackend.at(path).read_lock()


def force_unlock(path, lock_id):
    return LocalBackend.at(path).force_unlock(lock_id)


def update_state(path, change, operation, lock_timeout=0.0):
    return LocalBackend.at(path).update(change, operation, lock_timeout)
