"""The local backend: the state in one JSON file, written atomically.

A write goes to a temporary file in the same directory, is flushed and
fsynced, and is renamed over the state; the directory is fsynced after. The
old file is first hard-linked (or copied) to ``.backup``. At every instant the
state path names a complete file, old or new, whatever kills the process.
"""

import functools
import json
import os
import uuid
from dataclasses import replace

import jsonschema

from l4plan import __version__
from l4plan.files import backup_path, remove_temporaries, unique_keys, write_atomically
from l4plan.model import DEFAULT_BACKEND
from l4plan.schema import load_schema
from l4plan.state.errors import (
    CorruptState,
    NewerStateFormat,
    StaleState,
    StateError,
)
from l4plan.state.locking import lock
from l4plan.state.model import FORMAT_VERSION, State

DEFAULT_PATH = DEFAULT_BACKEND.attributes["path"]
MAX_REPORTED_ERRORS = 5


@functools.cache
def _validator():
    return jsonschema.Draft202012Validator(load_schema("state"))


def _corrupt(path, what):
    """CorruptState saying what is wrong with ``path`` and how to recover."""
    return CorruptState(
        f"{os.fspath(path)} is not a valid state file: {what}; {_recovery(path)}"
    )


def _recovery(path):
    """Point at the backup only when it is itself a valid state."""
    backup = backup_path(path)
    try:
        previous = read_state(backup) if os.path.exists(backup) else None
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


def _parse(path, raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _corrupt(path, f"not UTF-8 text (byte {error.start})") from None
    if not text.strip():
        raise _corrupt(path, "the file is empty")
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise _corrupt(path, f"bad JSON at {where}: {error.msg}") from None
    except RecursionError:
        raise _corrupt(path, "bad JSON: nested too deeply") from None
    except ValueError as error:
        raise _corrupt(path, f"bad JSON: {error}") from None


def _check_format(path, document):
    """Refuse a file from a newer l4plan before its schema is checked."""
    version = document.get("format_version") if isinstance(document, dict) else None
    if type(version) is int and version > FORMAT_VERSION:
        writer = document.get("l4plan_version")
        by, upgrade = (f"l4plan {writer}", f"{writer} or later") if writer else ("a newer l4plan", "a version that reads it")
        raise NewerStateFormat(
            f"{os.fspath(path)} has state format {version}, written by {by}; "
            f"this l4plan {__version__} reads format {FORMAT_VERSION} only: "
            f"upgrade l4plan to {upgrade}"
        )


def _json_path(parts):
    return "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in parts)


def _check_schema(path, document):
    errors = sorted(
        _validator().iter_errors(document), key=lambda e: _json_path(e.absolute_path)
    )
    if errors:
        shown = [
            f"at {_json_path(e.absolute_path) or 'the top level'}: {e.message}"
            for e in errors[:MAX_REPORTED_ERRORS]
        ]
        more = len(errors) - len(shown)
        raise _corrupt(path, "; ".join(shown) + (f"; and {more} more" if more else ""))


def _check_addresses(path, document):
    """Each resource must sit under its own address, which a schema cannot say."""
    for address, resource in document["resources"].items():
        own = f"{resource['type']}.{resource['name']}"
        if address != own:
            raise _corrupt(path, f"resources[{address!r}] holds {own}")


def read_state(path=DEFAULT_PATH):
    """The state at ``path``; a missing file is the empty state."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return State.empty()
    except OSError as error:
        raise StateError(f"cannot read {os.fspath(path)}: {error.strerror}") from None
    document = _parse(path, raw)
    _check_format(path, document)
    _check_schema(path, document)
    _check_addresses(path, document)
    return State.from_dict(document)


def render(state):
    """The bytes of a state file."""
    return (json.dumps(state.to_dict(), indent=2) + "\n").encode("utf-8")


def _check_successor(path, current, state):
    """Refuse to write a state not derived from the one on disk."""
    if state.lineage != current.lineage:
        raise StaleState(
            f"{os.fspath(path)} has lineage {current.lineage}, but the state being "
            f"written has lineage {state.lineage}: it belongs to another state, "
            f"so nothing was written; run the command again"
        )
    if state.serial <= current.serial:
        raise StaleState(
            f"{os.fspath(path)} changed since it was read (serial {current.serial} "
            f"on disk, {state.serial} being written): another l4plan run wrote "
            f"it, so nothing was written; run the command again"
        )


def write_state(path, state):
    """Persist ``state`` atomically and return it as written.

    ``state`` must come from the file's current state (same lineage, higher
    serial). The same resources as on disk write nothing and return the state
    on disk: the serial moves only with content. The first write gives the
    state its lineage.
    """
    current = read_state(path)
    if (dict(state.resources), state.unmanaged, state.pending) == (
        dict(current.resources),
        current.unmanaged,
        current.pending,
    ):
        return current
    _check_successor(path, current, state)
    written = replace(
        state,
        lineage=state.lineage or str(uuid.uuid4()),
        l4plan_version=__version__,
        format_version=FORMAT_VERSION,
    )
    try:
        atomic_write(path, render(written))
    except OSError as error:
        raise StateError(
            f"cannot write {os.fspath(path)}: {error.strerror}; the previous "
            f"state is unchanged"
        ) from error
    return written


def update_state(path, change, operation, lock_timeout=0.0):
    """Read, ``change`` and write the state while holding its lock.

    ``change`` maps a State to a State (e.g. ``lambda s: s.without(address)``);
    returns the state as written.
    """
    with lock(path, operation, lock_timeout):
        return write_state(path, change(read_state(path)))


def atomic_write(path, data):
    """Replace the file at ``path`` by ``data``; the old one becomes ``.backup``.

    A new file is created with mode 0600 (state can hold provider identity
    data); an existing file keeps its mode. Every write holds the state lock,
    so temporary files of this state found now were left by a killed writer:
    they are removed first.
    """
    remove_temporaries(path)
    write_atomically(path, data, keep_backup=True)
