"""Variables: ``var.NAME`` and ``"${var.NAME}"``, and nothing else evaluated.

A value comes from, highest first: ``--var NAME=VALUE``, ``--var-file FILE``
(HCL or JSON), the environment ``L4PLAN_VAR_NAME``, then the declaration's
``default``. A string that is only a reference takes the variable's value with
its type; a reference inside a longer string is interpolated as text.
"""

import json
import re
from dataclasses import dataclass, field

from l4plan.config.hcl_file import parse_attributes
from l4plan.config.loader import read_text
from l4plan.diagnostics import ConfigError, Diagnostic

_TEMPLATE = re.compile(r"\$\{([^}]*)\}")
_REFERENCE = re.compile(r"^\s*var\.([A-Za-z_][A-Za-z0-9_-]*)\s*$")
ENV_PREFIX = "L4PLAN_VAR_"


@dataclass(frozen=True)
class VariableInputs:
    """Values given outside the configuration, each as ``{name: value}``."""

    cli: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)


def parse_var_options(pairs):
    """``["a=1", "b=x"]`` from ``--var`` → ``{"a": "1", "b": "x"}``."""
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(
                [Diagnostic(f'--var "{pair}" is not NAME=VALUE', 'Write it as --var name=value.', "--var")]
            )
        values[name.strip()] = value
    return values


def read_var_files(paths):
    """Merge ``--var-file`` files (HCL or JSON attributes ``name = value``)."""
    values = {}
    for path in paths:
        if str(path).endswith(".json"):
            values.update(_json_var_file(path))
        else:
            values.update(_hcl_var_file(path))
    return values


def _json_var_file(path):
    text = read_text(path, str(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError([Diagnostic(f"invalid JSON in the variable file: {error.msg}", "Write an object of name: value pairs.", str(path), error.lineno, error.colno)]) from None
    if not isinstance(data, dict):
        raise ConfigError([Diagnostic("a variable file holds an object of name: value", "", str(path))])
    return data


def _hcl_var_file(path):
    return parse_attributes(read_text(path, str(path)), str(path))


def environment_values(environ):
    return {k[len(ENV_PREFIX) :]: v for k, v in environ.items() if k.startswith(ENV_PREFIX)}


def resolve(document, inputs):
    """Replace every reference in ``document.data``; raise ConfigError listing all problems."""
    declared = document.data.get("variable", {}) or {}
    if not isinstance(declared, dict):
        declared = {}
    diagnostics = [_undeclared(name, source) for source, name in _given(inputs) if name not in declared]
    values = {name: _value_of(name, body, inputs) for name, body in declared.items()}
    for name, body in declared.items():
        if values[name] is _UNSET:
            diagnostics.append(
                document.diagnostic(
                    ("variable", name),
                    f'variable "{name}" has no value',
                    f"Give it a default, or set it with --var {name}=VALUE, a --var-file or {ENV_PREFIX}{name}.",
                )
            )
    for block_type, blocks in document.data.items():
        if block_type != "variable":
            document.data[block_type] = _substitute(blocks, (block_type,), values, document, diagnostics)
    if diagnostics:
        raise ConfigError(diagnostics)
    return document


_UNSET = object()


def _given(inputs):
    for source, values in (("--var", inputs.cli), ("--var-file", inputs.files)):
        for name in values:
            yield source, name


def _undeclared(name, source):
    return Diagnostic(
        f'a value is given for the undeclared variable "{name}"',
        f'Declare it with variable "{name}" {{ }} or remove it from {source}.',
        source,
    )


def _value_of(name, body, inputs):
    default = body.get("default", _UNSET) if isinstance(body, dict) else _UNSET
    for source in (inputs.cli, inputs.files, inputs.environment):
        if name in source:
            return _coerce(source[name], default)
    return default


def _coerce(value, default):
    """Text from the command line or environment takes the default's type."""
    if not isinstance(value, str) or isinstance(default, str) or default in (_UNSET, None):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if type(parsed) is type(default) else value


def _substitute(value, path, values, document, diagnostics):
    if isinstance(value, dict):
        return {k: _substitute(v, path + (k,), values, document, diagnostics) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, path + (i,), values, document, diagnostics) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        return _template(value, path, values, document, diagnostics)
    return value


def _template(text, path, values, document, diagnostics):
    whole = _TEMPLATE.fullmatch(text.strip())
    if whole:
        return _lookup(whole.group(1), path, values, document, diagnostics)
    return _TEMPLATE.sub(
        lambda m: _as_text(_lookup(m.group(1), path, values, document, diagnostics)), text
    )


def _lookup(expression, path, values, document, diagnostics):
    match = _REFERENCE.match(expression)
    if not match:
        diagnostics.append(
            document.diagnostic(
                path,
                f'"${{{expression}}}" is not a variable reference',
                "Only var.NAME references are evaluated: no functions, operators or other expressions.",
            )
        )
        return None
    name = match.group(1)
    if name not in values:
        known = f"declared: {', '.join(sorted(values))}" if values else "no variables are declared"
        diagnostics.append(
            document.diagnostic(
                path,
                f'unknown variable "var.{name}"',
                f'Declare it with variable "{name}" {{ default = … }} ({known}).',
            )
        )
        return None
    return None if values[name] is _UNSET else values[name]


def _as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
