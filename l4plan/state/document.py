"""The state as stored bytes, the same on every backend: JSON checked on read.

A backend hands ``decode`` the bytes it holds and a name for messages (a file
path, or a backend's description); what is wrong is reported through
``corrupt`` so the local backend can point at its backup file.
"""

import functools
import json

import jsonschema

from l4plan import __version__
from l4plan.files import unique_keys
from l4plan.schema import load_schema
from l4plan.state.errors import CorruptState, NewerStateFormat, StaleState
from l4plan.state.model import FORMAT_VERSION, State

MAX_REPORTED_ERRORS = 5


@functools.cache
def _validator():
    return jsonschema.Draft202012Validator(load_schema("state"))


def corrupt_in(where, recovery, noun="state"):
    """The CorruptState maker for a state held at ``where``."""
    return lambda what: CorruptState(f"{where} is not a valid {noun}: {what}; {recovery}")


def decode(raw, where, corrupt):
    """The State in ``raw``, or the error ``corrupt(what)`` makes."""
    document = _parse(raw, corrupt)
    _check_format(where, document)
    _check_schema(document, corrupt)
    _check_addresses(document, corrupt)
    return State.from_dict(document)


def decode_copy(raw, where):
    """The State in a copy the user gives (``state push``)."""
    recovery = 'give a state written by l4plan ("l4plan state pull" prints one)'
    return decode(raw, where, corrupt_in(where, recovery, "state file"))


def encode(state):
    """The bytes a backend stores for ``state``."""
    return (json.dumps(state.to_dict(), indent=2) + "\n").encode("utf-8")


def _parse(raw, corrupt):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise corrupt(f"not UTF-8 text (byte {error.start})") from None
    if not text.strip():
        raise corrupt("it is empty")
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise corrupt(f"bad JSON at {where}: {error.msg}") from None
    except RecursionError:
        raise corrupt("bad JSON: nested too deeply") from None
    except ValueError as error:
        raise corrupt(f"bad JSON: {error}") from None


def _check_format(where, document):
    """Refuse a state from a newer l4plan before its schema is checked."""
    version = document.get("format_version") if isinstance(document, dict) else None
    if type(version) is int and version > FORMAT_VERSION:
        writer = document.get("l4plan_version")
        by, upgrade = (f"l4plan {writer}", f"{writer} or later") if writer else ("a newer l4plan", "a version that reads it")
        raise NewerStateFormat(
            f"{where} has state format {version}, written by {by}; "
            f"this l4plan {__version__} reads format {FORMAT_VERSION} only: "
            f"upgrade l4plan to {upgrade}"
        )


def _json_path(parts):
    return "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in parts)


def _check_schema(document, corrupt):
    errors = sorted(
        _validator().iter_errors(document), key=lambda e: _json_path(e.absolute_path)
    )
    if errors:
        shown = [
            f"at {_json_path(e.absolute_path) or 'the top level'}: {e.message}"
            for e in errors[:MAX_REPORTED_ERRORS]
        ]
        more = len(errors) - len(shown)
        raise corrupt("; ".join(shown) + (f"; and {more} more" if more else ""))


def _check_addresses(document, corrupt):
    """Each resource must sit under its own address, which a schema cannot say."""
    for address, resource in document["resources"].items():
        own = f"{resource['type']}.{resource['name']}"
        if address != own:
            raise corrupt(f"resources[{address!r}] holds {own}")


def same_content(state, current):
    """Whether writing ``state`` over ``current`` would change nothing."""
    return (dict(state.resources), state.unmanaged, state.pending) == (
        dict(current.resources),
        current.unmanaged,
        current.pending,
    )


def check_successor(where, current, state):
    """Refuse to write a state not derived from ``current``."""
    if current.lineage is not None and state.lineage != current.lineage:
        raise StaleState(
            f"{where} has lineage {current.lineage}, but the state being "
            f"written has lineage {state.lineage}: it belongs to another state, "
            f"so nothing was written; run the command again"
        )
    if state.serial <= current.serial:
        raise StaleState(
            f"{where} changed since it was read (serial {current.serial} "
            f"stored, {state.serial} being written): another l4plan run wrote "
            f"it, so nothing was written; run the command again"
        )
