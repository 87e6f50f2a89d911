"""Saved plans (``l4plan plan --out FILE``) and the check that they are fresh.

A saved plan records the plan (with the lineage and serial of the state it was
made against), the desired resources apply needs, a sha256 digest of them and
the l4plan version. ``apply PLANFILE`` applies exactly that, and only while the
state is still the one the plan was made against.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from l4plan import __version__
from l4plan.files import write_atomically
from l4plan.plan import Plan
from l4plan.schema import validator

#: 2: changes carry attribute_changes (plan format 2.0). An older file is
#: refused with the fix rather than misread; applying one was refused anyway
#: once l4plan's version had moved on (check_fresh).
FORMAT_VERSION = 2
_KEYS = {
    "format_version": (int, "a whole number"),
    "l4plan_version": (str, "text"),
    "config_digest": (str, "text"),
    "plan": (dict, "an object"),
    "desired": (dict, "an object"),
}


class PlanFileError(Exception):
    """A saved plan that cannot be read or used; the message names the file."""


class StalePlan(PlanFileError):
    """The state moved on since the plan was made."""


class ForeignPlan(PlanFileError):
    """The plan was made against another state (lineage) or l4plan version."""


@dataclass(frozen=True)
class SavedPlan:
    plan: Plan
    desired: dict
    config_digest: str
    l4plan_version: str = __version__


def config_digest(desired):
    """``sha256:…`` of the desired resources in canonical JSON."""
    canonical = json.dumps(desired, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def save_plan(path, plan, desired, digest=None):
    """Write the plan file atomically; ``digest`` defaults to that of ``desired``."""
    document = {
        "format_version": FORMAT_VERSION,
        "l4plan_version": __version__,
        "config_digest": digest or config_digest(desired),
        "plan": plan.to_dict(whole_no_ops=True),
        "desired": desired,
    }
    write_atomically(path, (json.dumps(document, sort_keys=True, indent=2) + "\n").encode())


def load_plan(path):
    """The SavedPlan in ``path``, or PlanFileError saying what is wrong with it."""
    document = _read_document(Path(path))
    _check_document(path, document)
    return SavedPlan(
        plan=Plan.from_dict(document["plan"]),
        desired=document["desired"],
        config_digest=document["config_digest"],
        l4plan_version=document["l4plan_version"],
    )


def _read_document(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PlanFileError(
            f"Cannot read saved plan {path}: {error.strerror}"
        ) from None
    except ValueError as error:
        raise _corrupt(path, f"not valid JSON ({error})") from None


def _corrupt(path, why):
    return PlanFileError(
        f"{path} is not a usable saved plan: {why}; "
        "make a new one with l4plan plan --out"
    )


def _check_document(path, document):
    if not isinstance(document, dict):
        raise _corrupt(path, "not a JSON object")
    for key, (kind, described) in _KEYS.items():
        value = document.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise _corrupt(path, f'"{key}" is missing or not {described}')
    if document["format_version"] > FORMAT_VERSION:
        raise PlanFileError(
            f"{path} was saved by a newer l4plan (plan file format "
            f"{document['format_version']}); use that version, or plan again"
        )
    if document["format_version"] < FORMAT_VERSION:
        raise PlanFileError(
            f"{path} was saved by an older l4plan (plan file format "
            f"{document['format_version']}, this l4plan reads {FORMAT_VERSION}); "
            "make a new one with l4plan plan --out"
        )
    error = jsonschema.exceptions.best_match(
        validator("plan").iter_errors(document["plan"])
    )
    if error:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        raise _corrupt(path, f"plan at {where}: {error.message}")


def check_fresh(saved, lineage, serial):
    """Refuse a plan made by another version, for another state, or before a change."""
    made = saved.plan
    if saved.l4plan_version != __version__:
        raise ForeignPlan(
            f"Saved plan was made by l4plan {saved.l4plan_version}, and this is "
            f"l4plan {__version__}; run plan again with this version"
        )
    if made.lineage is not None and made.lineage != lineage:
        raise ForeignPlan(
            f"Saved plan was made for another state (lineage {made.lineage}, "
            f"this state has lineage {lineage or 'none'}); run plan again against this state"
        )
    if made.serial != serial or (made.lineage is None and lineage is not None):
        raise StalePlan(
            f"Saved plan is stale: the state changed since it was made "
            f"(serial {made.serial}, now {serial}); run plan again"
        )
