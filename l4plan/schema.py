"""The shipped JSON Schemas, and structural checks of a configuration against them.

jsonschema's own messages speak of instances; these speak of attributes and
blocks, name the fix, and suggest the closest known name for a typo.
"""

import difflib
import json
from functools import cache
from importlib import resources

import fastjsonschema
from jsonschema import Draft202012Validator

from l4plan.ports import PORT_FORMS, PortError, parse_port_spec


@cache
def load_schema(name):
    """``load_schema("config")`` → the parsed ``schemas/config.schema.json``."""
    return json.loads(schema_text(name))


def block_defaults(block_type, kind):
    """The defaults the configuration schema gives a ``block_type "kind"`` block."""
    block = load_schema("config")["properties"][block_type]["properties"].get(kind, {})
    return {k: v["default"] for k, v in block.get("properties", {}).items() if "default" in v}


def schema_text(name):
    """The text of ``schemas/NAME.schema.json`` as shipped."""
    return resources.files("l4plan.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")


@cache
def validator(name):
    """A jsonschema validator of ``schemas/NAME.schema.json`` (made once)."""
    return Draft202012Validator(load_schema(name))


@cache
def _fast_check(name):
    """A compiled check: about 15 times faster than jsonschema on a valid
    configuration, but it stops at the first error, so jsonschema explains."""
    return fastjsonschema.compile(load_schema(name))


def check_structure(document):
    """What the config schema rejects in ``document``.

    Returns the diagnostics and the set of top-level objects, as
    ``(block_type, label)`` (or ``(block_type,)``), that they concern, so that
    semantic checks can leave those objects alone.
    """
    try:
        _fast_check("config")(document.data)
        return [], set()
    except fastjsonschema.JsonSchemaException:
        errors = list(validator("config").iter_errors(document.data))
    found = {d for error in errors for d in _explain(error, document)}
    broken = {_object_of(error) for error in errors}
    return sorted(found, key=lambda d: (d.filename, d.line, d.column, d.summary)), broken


def _object_of(error):
    path = tuple(error.absolute_path)
    if "propertyNames" in error.schema_path:
        path += (error.instance,)
    return path[:2]


def _explain(error, document):
    if error.validator == "oneOf":  # a port written neither as number nor as text
        return [_diagnose(error, document, _port_message(error.instance))]
    if error.validator == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        return [_unknown(error, document, name, known) for name in _extra(error)]
    if "propertyNames" in error.schema_path:
        return [_bad_name(error, document)]
    if error.validator == "maxProperties":  # point at the block one too many
        path = (*error.absolute_path, list(error.instance)[-1])
        return [document.diagnostic(path, *_properties_count_message(error))]
    return [_diagnose(error, document, _MESSAGES.get(error.validator, _generic)(error))]


def _extra(error):
    allowed = error.schema.get("properties", {})
    return sorted(k for k in error.instance if k not in allowed)


def _unknown(error, document, name, known):
    path = tuple(error.absolute_path) + (name,)
    what = "block" if isinstance(error.instance[name], (dict, list)) else "attribute"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    fix = f'Did you mean "{close[0]}"?' if close else f"Known here: {', '.join(known)}."
    return document.diagnostic(path, f'unknown {what} "{name}"', fix)


def _bad_name(error, document):
    path = tuple(error.absolute_path)
    name = error.instance if isinstance(error.instance, str) else str(error.instance)
    return document.diagnostic(
        path + (name,),
        f'invalid name "{name}"',
        "Names start with a lowercase letter and use only a-z, 0-9, _ and -, at most 63 characters.",
    )


def _diagnose(error, document, messages):
    summary, detail = messages
    return document.diagnostic(tuple(error.absolute_path), summary, detail)


def _port_message(value):
    try:
        parse_port_spec(value)
        problem = "it is neither a whole number nor text"
    except PortError as error:
        problem = str(error)
    return f"{_shown(value)} is not a port specification: {problem}", f"{PORT_FORMS}."


def _pattern_message(error):
    if error.absolute_path and error.absolute_path[-1] in ("edge_port", "origin_port"):
        return _port_message(error.instance)
    if error.absolute_path and error.absolute_path[-1] in ("lock_ttl", "wait_timeout"):
        return (
            f"{_shown(error.instance)} is not a duration",
            'Write a number and a unit (ms, s, m or h), e.g. "15s", "1m30s".',
        )
    return _generic(error)


def _type_message(error):
    wanted = error.validator_value
    names = {"object": "a block", "array": "a list", "string": "a string", "boolean": "true or false", "integer": "a whole number"}
    wanted_text = names.get(wanted, wanted) if isinstance(wanted, str) else " or ".join(names.get(w, w) for w in wanted)
    return f"must be {wanted_text}, not {_shown(error.instance)}", "Change the value's type."


def _enum_message(error):
    choices = ", ".join(f'"{c}"' for c in error.validator_value)
    return f"{_shown(error.instance)} is not allowed", f"Use one of {choices}."


def _shown(value, limit=60):
    """A value as JSON, cut short: a message must not repeat megabytes of input."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _required_message(error):
    missing = error.message.split("'")[1]
    if missing in ("rule", "origin"):
        return f'missing "{missing}" block', f"Add at least one {missing} {{ … }} block."
    if missing == "site" and not error.absolute_path:
        return 'missing "site" block', 'Declare the zone once: site "example.com" { plan = "enterprise" }.'

    return f'missing required attribute "{missing}"', f"Add {missing} = … to this block."


def _items_message(error):
    key = error.absolute_path[-1] if error.absolute_path else "list"
    if key == "rule":
        return f"an application has 1 to 30 rules; this one has {len(error.instance)}", "Split the rules over several applications, or merge port lists and ranges."
    if error.validator == "maxItems":
        return f'"{key}" has {len(error.instance)} items, more than the {error.validator_value} allowed', "Shorten the list, or split it over several blocks."
    return f'"{key}" needs at least {error.validator_value} item(s)', "Add one."


def _length_message(error):
    key = error.absolute_path[-1] if error.absolute_path else "value"
    if isinstance(key, int):
        key = f"{error.absolute_path[-2]}[{key}]"
    return (
        f'"{key}" is {len(error.instance)} characters long, more than the {error.validator_value} allowed',
        "Shorten it.",
    )


def _properties_count_message(error):
    key = error.absolute_path[-1] if error.absolute_path else "block"
    if key == "site":
        return "a configuration declares exactly one site", 'Keep one site "ZONE" { … } block.'
    return f'at most {error.validator_value} "{key}" block', "Remove the extra block."


def _range_message(error):
    bound = "at least" if error.validator in ("minimum", "exclusiveMinimum") else "at most"
    return f"{error.instance} is out of range", f"Use a value {bound} {error.validator_value}."


def _generic(error):
    return error.message if len(error.message) <= 200 else f"{error.message[:200]}…", ""


_MESSAGES = {
    "type": _type_message,
    "enum": _enum_message,
    "required": _required_message,
    "minItems": _items_message,
    "maxItems": _items_message,
    "minProperties": _properties_count_message,
    "maxProperties": _properties_count_message,
    "minimum": _range_message,
    "maximum": _range_message,
    "pattern": _pattern_message,
    "maxLength": _length_message,
}
