"""Read one ``*.l4.json`` file into a Document, with the line of every part.

The standard ``json`` module keeps no positions, so this is a small
recursive-descent reader that records the line and column of every object
member and array item as it goes. Nested ``rule``/``origin`` blocks may be
written as one object or a list of objects, as in ``.tf.json``.
"""

import bisect
import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]  # documented in json's source, not its stubs
from typing import NoReturn

from l4plan.config.document import REPEATED_BLOCKS, Document
from l4plan.diagnostics import ConfigError, Diagnostic
from l4plan.files import unique_keys

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_LITERALS = {"true": True, "false": False, "null": None}


class _Reader:
    def __init__(self, text, filename):
        self.text = text
        self.filename = filename
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.positions = {}

    def position(self, index):
        line = bisect.bisect_left(self.newlines, index)
        column = index - (self.newlines[line - 1] + 1 if line else 0)
        return (self.filename, line + 1, column + 1)

    def fail(self, index, message) -> NoReturn:
        _, line, column = self.position(index)
        detail = "Check for a missing comma, quote or bracket near this place."
        raise ConfigError([Diagnostic(f"invalid JSON: {message}", detail, self.filename, line, column)])

    def skip(self, index):
        return _WHITESPACE.match(self.text, index).end()  # type: ignore[union-attr]  # matches the empty string

    def value(self, index, path):
        index = self.skip(index)
        self.positions.setdefault(path, self.position(index))
        char = self.text[index : index + 1]
        if char == "{":
            return self.members(index + 1, path)
        if char == "[":
            return self.items(index + 1, path)
        if char == '"':
            return self.string(index)
        return self.scalar(index)

    def string(self, index):
        try:
            return scanstring(self.text, index + 1)
        except json.JSONDecodeError as error:
            self.fail(error.pos, error.msg.lower())

    def scalar(self, index):
        for word, literal in _LITERALS.items():
            if self.text.startswith(word, index):
                return literal, index + len(word)
        match = _NUMBER.match(self.text, index)
        if not match or not match.group():
            self.fail(index, "expected a value")
        number = float(match.group()) if match.group(1) or match.group(2) else int(match.group())
        return number, match.end()

    def members(self, index, path):
        result: dict = {}
        index = self.skip(index)
        if self.text.startswith("}", index):
            return result, index + 1
        while True:
            index = self.skip(index)
            if not self.text.startswith('"', index):
                self.fail(index, "expected a quoted member name")
            key_at = index
            key, index = self.string(index)
            if key in result:
                self.fail(key_at, f'"{key}" appears twice in this object')
            self.positions[path + (key,)] = self.position(key_at)
            index = self.skip(index)
            if not self.text.startswith(":", index):
                self.fail(index, f'expected ":" after "{key}"')
            result[key], index = self.value(index + 1, path + (key,))
            index = self.skip(index)
            if self.text.startswith("}", index):
                return result, index + 1
            if not self.text.startswith(",", index):
                self.fail(index, 'expected "," or "}"')
            index += 1

    def items(self, index, path):
        result: list = []
        index = self.skip(index)
        if self.text.startswith("]", index):
            return result, index + 1
        while True:
            item, index = self.value(index, path + (len(result),))
            result.append(item)
            index = self.skip(index)
            if self.text.startswith("]", index):
                return result, index + 1
            if not self.text.startswith(",", index):
                self.fail(index, 'expected "," or "]"')
            index += 1


def load_json(text, filename):
    """Parse JSON ``text``; raise ConfigError naming file:line on bad syntax.

    The standard parser reads the values; the positioned reader runs only
    when a position is needed, or to explain a syntax error.
    """
    try:
        data = json.loads(text, object_pairs_hook=unique_keys)
    except RecursionError:
        detail = "A configuration nests a few levels; this file nests beyond what can be read."
        raise ConfigError([Diagnostic("invalid JSON: nested too deeply", detail, filename, 1, 1)]) from None
    except ValueError:
        _read_positions(text, filename)
        raise AssertionError("the positioned reader accepted what json rejected") from None
    if not isinstance(data, dict):
        _Reader(text, filename).fail(0, "the document must be an object of blocks")
    wrapped: list = []
    data = _as_lists(data, (), wrapped)
    return Document(data, sources=[lambda: _shift_positions(_read_positions(text, filename), wrapped)])


def _read_positions(text, filename):
    reader = _Reader(text, filename)
    _, end = reader.value(0, ())
    if reader.skip(end) != len(text):
        reader.fail(reader.skip(end), "unexpected text after the document")
    return reader.positions


def _as_lists(value, path, wrapped):
    """Wrap a lone ``rule``/``origin`` object in a list, as HCL gives it."""
    if isinstance(value, list):
        return [_as_lists(v, path + (i,), wrapped) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, item in value.items():
        if key in REPEATED_BLOCKS and isinstance(item, dict):
            wrapped.append(path + (key,))
            item = [item]
        result[key] = _as_lists(item, path + (key,), wrapped)
    return result


def _shift_positions(positions, wrapped):
    """Positions inside a wrapped object move under index 0 of its new list."""
    for prefix in sorted(wrapped, key=len, reverse=True):
        size = len(prefix)
        for path in [p for p in positions if p[:size] == prefix and len(p) > size]:
            positions[prefix + (0,) + path[size:]] = positions.pop(path)
        positions[prefix + (0,)] = positions[prefix]
    return positions
