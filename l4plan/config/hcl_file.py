"""Read one ``*.l4.hcl`` file into a Document, with the line of every part.

``hcl_fast`` reads the HCL configurations are written in, values and
positions at once. A file it does not cover goes to python-hcl2: values come
from serializing its lark tree, positions from walking the same tree, and its
syntax errors become the diagnostics below.
"""

import hcl2

from l4plan import hcl2_tree as tree_of
from l4plan.config import hcl_fast
from l4plan.config.document import REPEATED_BLOCKS, Document, format_path
from l4plan.config.hcl_fast import Attribute, Block
from l4plan.diagnostics import ConfigError, Diagnostic
from l4plan.hcl2_tree import DBLQUOTE, LarkError, Token, Tree, UnexpectedInput

_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)


def load_hcl(text, filename):
    """Parse HCL ``text``; raise ConfigError naming file:line on bad syntax."""
    items, values = _parse(text, filename)
    document = Document(positions={})
    diagnostics: list = []
    headers = _locate_body(items, (), filename, document.positions, diagnostics)
    document.data = _top_level(values, headers, filename, diagnostics)
    if diagnostics:
        raise ConfigError(diagnostics)
    return document


def parse_attributes(text, filename):
    """The plain values of an HCL file of ``name = value`` lines (a --var-file)."""
    return _parse(text, filename)[1]


#: No line of HCL is longer (a string cannot span lines): the parser takes
#: seconds and gigabytes on a line of megabytes, so such a line is refused first.
MAX_LINE = 65536


def _check_line_lengths(text, filename):
    if len(text) <= MAX_LINE:
        return
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > MAX_LINE:
            raise ConfigError(
                [
                    Diagnostic(
                        f"line {number} is {len(line)} characters long, more than the {MAX_LINE} allowed",
                        "Shorten the value on it; a comment is at most 256 characters, a domain 253.",
                        filename,
                        number,
                    )
                ]
            )


def _parse(text, filename):
    """``(items, plain values)``; bad syntax raises ConfigError at file:line."""
    _check_line_lengths(text, filename)
    try:
        return hcl_fast.parse(text)
    except hcl_fast.Unsupported:
        pass
    try:
        tree = tree_of.parse(text)
        values = tree_of.values(tree, _OPTIONS)
    except UnexpectedInput as error:
        found = _unclosed(text, filename) or _syntax_diagnostic(error, filename)
        raise ConfigError([found]) from None
    except LarkError as error:
        raise ConfigError([Diagnostic(f"invalid HCL: {error}", "", filename)]) from None
    return _items(_body(tree)), values


_CLOSERS = {"{": "}", "[": "]", "(": ")"}


def _unclosed(text, filename):
    """A string cut by the end of its line, or a bracket never closed, found by
    one scan outside comments: the parser only notices them later, where its
    position would mislead (at the next quote, or at the end of the file)."""
    opened, index, line, line_start = [], 0, 1, 0
    while index < len(text):
        char = text[index]
        if char == "\n":
            line, line_start = line + 1, index + 1
        elif char == "#" or text.startswith("//", index):
            end = text.find("\n", index)  # the newline itself is counted next turn
            index = (end if end >= 0 else len(text)) - 1
        elif text.startswith("/*", index):
            end = text.find("*/", index + 2)
            line += text.count("\n", index, end if end >= 0 else len(text))
            line_start = text.rfind("\n", 0, end) + 1 if end >= 0 else line_start
            index = end + 1 if end >= 0 else len(text)
        elif char == '"':
            end = _string_end(text, index)
            if end is None:
                return _unclosed_diagnostic("string", "add the closing quote on the same line", filename, line, index - line_start + 1)
            index = end
        elif char in _CLOSERS:
            opened.append((char, line, index - line_start + 1))
        elif char in _CLOSERS.values() and opened and _CLOSERS[opened[-1][0]] == char:
            opened.pop()
        index += 1
    if opened:
        char, at_line, column = opened[-1]
        what = "block" if char == "{" else "list" if char == "[" else "parenthesis"
        return _unclosed_diagnostic(what, f'add its closing "{_CLOSERS[char]}"', filename, at_line, column)
    return None


def _string_end(text, index):
    """The index of the quote closing the string opened at ``index``, or None
    when the line ends first."""
    index += 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == '"':
            return index
        if char == "\n":
            return None
        index += 1
    return None


def _unclosed_diagnostic(what, fix, filename, line, column):
    return Diagnostic(
        f"invalid HCL syntax: this {what} is never closed",
        f"The {what} opened here runs to the end of {'the line' if what == 'string' else 'the file'}: {fix}.",
        filename,
        line,
        column,
    )


def _syntax_diagnostic(error, filename):
    found = getattr(error, "token", None)
    text = str(found).strip().splitlines()[0] if found is not None and str(found).strip() else ""
    what = f'unexpected "{text}"' if text else "unexpected end of input"
    return Diagnostic(
        f"invalid HCL syntax: {what}",
        "Check the brackets, quotes and '=' signs on this line and the one before it.",
        filename,
        getattr(error, "line", 0) or 0,
        getattr(error, "column", 0) or 0,
    )


def _top_level(values, headers, filename, diagnostics):
    """``{"application": [{"game": {...}}]}`` → ``{"application": {"game": {...}}}``.

    ``headers`` are the (type, labels, line) of the top-level blocks in file
    order, which is also the order of each type's entries in ``values``.
    """
    data = {key: value for key, value in values.items() if not isinstance(value, list)}
    entries = {key: iter(value) for key, value in values.items() if isinstance(value, list)}
    for block_type, labels, line in headers:
        entry = next(entries[block_type])
        if len(labels) != 1:
            diagnostics.append(
                Diagnostic(
                    f'the "{block_type}" block needs exactly one label, it has {len(labels)}',
                    f'Write it as {block_type} "NAME" {{ … }}.',
                    filename,
                    line,
                    path=block_type,
                )
            )
            continue
        bodies = data.setdefault(block_type, {})
        if labels[0] in bodies:
            diagnostics.append(
                Diagnostic(
                    f'{block_type} "{labels[0]}" is declared twice in this file',
                    "Give each block its own name, or merge the two.",
                    filename,
                    line,
                    path=f"{block_type}.{labels[0]}",
                )
            )
        bodies[labels[0]] = _nested(entry[labels[0]])
    return data


def _nested(body):
    """Repeated blocks stay lists; single blocks become objects (a list if repeated by mistake)."""
    result = {}
    for key, value in body.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            value = [_nested(v) for v in value]
            if key not in REPEATED_BLOCKS and len(value) == 1:
                value = value[0]
        result[key] = value
    return result


def _body(tree):
    return next(c for c in tree.children if isinstance(c, Tree) and c.data == tree_of.BODY)


def _items(body):
    """The attributes and blocks of a lark body, as ``hcl_fast`` gives them."""
    items: list[Attribute | Block] = []
    for node in body.children:
        if not isinstance(node, Tree):
            continue
        if node.data == tree_of.ATTRIBUTE:
            items.append(Attribute(_text(node.children[0]), node.meta.line, node.meta.column))
        elif node.data == tree_of.BLOCK:
            parts = [c for c in node.children if isinstance(c, Tree) and c.data in (tree_of.IDENTIFIER, tree_of.STRING)]
            block = Block(_text(parts[0]), [_text(p) for p in parts[1:]], node.meta.line, node.meta.column)
            block.body = _items(_body(node))
            items.append(block)
    return items


def _locate_body(items, path, filename, positions, diagnostics):
    """Record the position of every attribute and block; return the block headers.

    An attribute set twice in one body is an error, as in Terraform
    (python-hcl2 would silently keep the last)."""
    counts: dict = {}
    headers = []
    attributes: dict = {}
    for item in items:
        position = (filename, item.line, item.column)
        if isinstance(item, Attribute):
            if item.name in attributes:
                diagnostics.append(_redefined(item, attributes[item.name], filename, path))
            attributes.setdefault(item.name, item.line)
            positions[path + (item.name,)] = position
            continue
        headers.append((item.type, item.labels, item.line))
        if path:
            index = counts.get(item.type, 0)
            counts[item.type] = index + 1
            key = path + (item.type, index) if item.type in REPEATED_BLOCKS else path + (item.type,)
            positions.setdefault(path + (item.type,), position)
        else:
            key = (item.type, *item.labels)
            positions.setdefault((item.type,), position)
        positions[key] = position
        _locate_body(item.body, key, filename, positions, diagnostics)
    return headers


def _redefined(item, first_line, filename, path):
    return Diagnostic(
        f'Attribute redefined: "{item.name}" was already set at line {first_line}',
        "Each attribute may be set only once in a block; remove one of the two.",
        filename,
        item.line,
        item.column,
        path=format_path((*path, item.name)),
    )


def _text(node):
    return "".join(str(v) for v in node.scan_values(lambda v: isinstance(v, Token) and v.type != DBLQUOTE))
