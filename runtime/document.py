# -*- test-case-name: tests.runtime.test_runtime_applied_document -*-
"""The runtime document: load it and check it against runtime.schema.json.

The engine validated the configuration already; the runtime checks again
because a document may come from disk or over the wire, and a bad one must
be refused whole, before any listener changes.
"""

import functools
import json
import marshal
from importlib import resources
from pathlib import Path

import jsonschema

APPLIED_FILE = "applied.json"


class DocumentError(ValueError):
    """The document cannot be run; ``reasons`` lists every problem found."""

    def __init__(self, source, reasons):
        self.reasons = list(reasons)
        super().__init__(f"{source}: " + "; ".join(self.reasons))


def parse_json(text):
    """JSON text → value, stricter than ``json.loads``: a key given twice, NaN or
    Infinity, or nesting deeper than Python's stack is a ``ValueError`` saying so
    (json.loads would keep the last key, accept NaN, or raise RecursionError)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _unique_keys(pairs):  # l4plan.files.unique_keys on the engine side of the HTTP boundary
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"the key {twice!r} appears twice in one object")
    return result


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def empty():
    """The document of a runtime that has nothing to proxy yet."""
    return {
        "format_version": 1,
        "site": None,
        "ip_access_rules": [],
        "load_balancers": {},
        "applications": {},
    }


def _is_whole_number(checker, instance):
    """JSON Schema takes 27531.0 (and Python takes True) for an integer; a port,
    a count or a generation must be a JSON whole number written as one."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_whole_number),
)


@functools.cache
def _validator():
    text = resources.files("l4plan.schemas").joinpath("runtime.schema.json").read_text()
    return _Validator(json.loads(text))


def _changed_part(document, checked):
    """``document`` without the applications and load balancers that are equal,
    name and value, to those of ``checked``, a document that passed the schema.

    Each of those entries is checked by its own subschema, independently of
    the others, so an unchanged one cannot have gained an error: leaving it out
    makes a reconcile check what changed, not the whole configuration (cProfile:
    the schema was two thirds of a one-rule reconcile). Entries are compared in
    marshal's form, because Python's ``==`` takes ``true`` for ``1``, which the
    schema does not; marshal keeps bool, int and float apart like JSON text,
    and is several times quicker to make (at 10,000 listeners, 2 ms against
    13 ms). A different key order only makes an entry checked again.
    """
    part = dict(document)
    for section in ("applications", "load_balancers"):
        new, old = document.get(section), checked.get(section)
        if isinstance(new, dict) and isinstance(old, dict):
            part[section] = {
                k: v for k, v in new.items() if k not in old or _text(old[k]) != _text(v)
            }
    return part


def _text(value):
    return marshal.dumps(value, 2)  # version 2: no references, so no dependence on sharing


def _schema_reasons(document):
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    for error in errors:
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        yield f"{where}: {error.message}"


def _semantic_reasons(document):
    """What a schema cannot say: references and edge ports used twice."""
    seen = {}
    for app_name, app in document["applications"].items():
        for index, rule in enumerate(app["rules"]):
            where = f"applications/{app_name}/rules/{index}"
            if (
                rule["origin_type"] == "load_balancer"
                and rule["origin"] not in document["load_balancers"]
            ):
                yield f"{where}/origin: no load balancer named {rule['origin']!r}"
            for mapping in rule["ports"]:
                key = (rule["protocol"], mapping["edge"])
                if key in seen:
                    yield f"{where}/ports: {key[0]} edge port {key[1]} is also used by {seen[key]}"
                seen.setdefault(key, where)


def validate(document, source="runtime document", checked=None):
    """Return ``document`` when it can be run; raise ``DocumentError`` otherwise.

    ``checked`` is a document known to be valid (the one being served): the
    parts of ``document`` equal to it are not checked against the schema again.
    """
    part = document if checked is None else _changed_part(document, checked)
    reasons = list(_schema_reasons(part))
    if not reasons:
        reasons = list(_semantic_reasons(document))
    if reasons:
        raise DocumentError(source, reasons)
    return document


def load_applied(data_dir):
    """The document persisted in ``data_dir``, or the empty one when there is none."""
    path = Path(data_dir) / APPLIED_FILE
    if not path.exists():
        return empty()
    try:
        document = parse_json(path.read_text())
    except (OSError, ValueError) as exc:
        raise DocumentError(str(path), [f"cannot be read as JSON ({exc})"]) from exc
    return validate(document, str(path))
