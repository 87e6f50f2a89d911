"""A fast reader for the HCL l4plan configurations are written in.

python-hcl2's lark parser costs about 1.5 ms a rule, a minute for 30,000
rules. This reader covers the native-syntax subset configurations use —
blocks with labels, attributes, strings (escapes, ``${var.NAME}``), whole and
decimal numbers, booleans, null, ``var.NAME`` references, lists, objects and
comments — with one regular expression for the tokens and a small recursive
descent, and gives exactly python-hcl2's values for it (property tests hold
it to that). Anything else raises ``Unsupported``, and ``hcl_file`` reads the
file with python-hcl2 instead, whose diagnostics stay the ones users see for
every syntax error and every expression l4plan does not evaluate.
"""

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""
    (?P<newline>\r?\n)
    | (?P<space>[ \t]+ | \#[^\n]* | //[^\n]* | /\*(?:(?!\*/)[^\n])*\*/)
    | (?P<string>"(?:[^"\\\n]|\\.)*")
    | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?![0-9A-Za-z_.]))
    | (?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)
    | (?P<punct>[=:,{}\[\]])
    """,
    re.VERBOSE,
)
_INTERPOLATION = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}|\$\{|%\{")
_ESCAPES = re.compile(r"\\(?:u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[nrt\"\\])")
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_LITERALS = {"true": True, "false": False, "null": None}


class Unsupported(Exception):
    """Outside the subset read here: python-hcl2 reads (or refuses) the file."""


@dataclass
class Attribute:
    name: str
    line: int
    column: int


@dataclass
class Block:
    type: str
    labels: list
    line: int
    column: int
    body: list = field(default_factory=list)  # Attribute and Block items, in order


def parse(text):
    """``(items, values)``: the top-level Attribute and Block items with their
    positions, and the plain values python-hcl2 would give."""
    return _Parser(text).file()


class _Parser:
    def __init__(self, text):
        self.tokens = list(_tokens(text))
        self.index = 0

    def peek(self):
        return self.tokens[self.index]

    def take(self, kind=None, text=None):
        token = self.tokens[self.index]
        if (kind and token[0] != kind) or (text and token[1] != text):
            raise Unsupported
        self.index += 1
        return token

    def newlines(self):
        while self.tokens[self.index][0] == "newline":
            self.index += 1

    def file(self):
        items, values = self.body()
        if self.peek()[0] != "end":
            raise Unsupported
        return items, values

    def body(self):
        """Items up to a ``}`` or the end; every item ends its line."""
        items: list[Attribute | Block] = []
        values: dict = {}
        kinds: dict[str, type] = {}  # an attribute and a block of one name: python-hcl2's to judge
        self.newlines()
        while self.peek()[0] == "name":
            _, name, line, column = self.take()
            kind = Attribute if self.peek()[1] == "=" else Block
            if kinds.setdefault(name, kind) is not kind:
                raise Unsupported
            if kind is Attribute:
                self.index += 1
                values[name] = self.value()
                items.append(Attribute(name, line, column))
            else:
                block = Block(name, self.labels(), line, column)
                block.body, body = self.block_body()
                entry = body
                for label in reversed(block.labels):
                    entry = {label: entry}
                values.setdefault(name, []).append(entry)
                items.append(block)
            if self.peek()[0] not in ("newline", "end") and self.peek()[1] != "}":
                raise Unsupported
            self.newlines()
        return items, values

    def labels(self):
        labels = []
        while self.peek()[0] in ("name", "string"):
            kind, text, _, _ = self.take()
            if kind == "name" and "." in text:
                raise Unsupported
            labels.append(_string(text) if kind == "string" else text)
        return labels

    def block_body(self):
        self.take("punct", "{")
        if self.peek()[1] == "}":
            self.index += 1
            return [], {}
        self.take("newline")
        items, values = self.body()
        self.take("punct", "}")
        return items, values

    def value(self):
        kind, text, _, _ = self.take()
        if kind == "string":
            return _string(text)
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "name":
            if text in _LITERALS:
                return _LITERALS[text]
            return "${" + text + "}" if "." in text else text  # python-hcl2 wraps references only
        if text == "[":
            return self.items("]", self.value)
        if text == "{":
            return dict(self.items("}", self.pair))
        raise Unsupported

    def items(self, closer, read):
        """Comma-separated items up to ``closer`` (a trailing comma allowed);
        an object's items may be separated by line breaks instead."""
        found = []
        self.newlines()
        while self.peek()[1] != closer:
            found.append(read())
            self.newlines()
            if self.peek()[1] == ",":
                self.index += 1
                self.newlines()
            elif self.peek()[1] != closer and (closer == "]" or self.tokens[self.index - 1][0] != "newline"):
                raise Unsupported
        self.index += 1
        if closer == "}" and len({key for key, _ in found}) != len(found):
            raise Unsupported
        return found

    def pair(self):
        kind, text, _, _ = self.take()
        if kind == "string":
            key = _string(text)
        elif kind == "name" and "." not in text:
            key = text
        else:
            raise Unsupported
        if self.take("punct")[1] not in "=:":
            raise Unsupported
        return key, self.value()


def _tokens(text):
    """``(kind, text, line, column)`` of every token but spaces and comments, then ``end``."""
    line, line_start, position, size = 1, 0, 0, len(text)
    match = _TOKEN.match
    while position < size:
        found = match(text, position)
        if found is None:
            raise Unsupported
        kind = found.lastgroup
        if kind != "space":
            yield kind, found.group(), line, position - line_start + 1
        position = found.end()
        if kind == "newline":
            line, line_start = line + 1, position
    yield "end", "", line, position - line_start + 1


def _string(token):
    """A quoted string's value as python-hcl2 gives it: escapes decoded,
    ``${var.NAME}`` and ``$${`` kept as written."""
    content = token[1:-1]
    for found in _INTERPOLATION.finditer(content):
        if found.group() != "$${" and found.group(1) is None:
            raise Unsupported  # an expression or a directive python-hcl2 rewrites
    if "\\" not in content:
        return content
    if _ESCAPES.sub("", content).count("\\"):
        raise Unsupported
    return _ESCAPES.sub(_unescape, content)


def _unescape(found):
    text = found.group()
    return chr(int(text[2:], 16)) if text[1] in "uU" else _SIMPLE[text[1]]
