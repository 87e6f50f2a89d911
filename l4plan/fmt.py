"""Canonical formatting of l4plan HCL files (``l4plan fmt``).

The layout is HashiCorp's (``hclfmt``, ``terraform fmt``): two-space
indentation, one attribute per line, nested blocks on their own lines, one
blank line between top-level blocks, lists on one line, comments kept where
they were written, and ``=`` and end-of-line comments aligned line by line as
hclwrite aligns them (``hcl_align``).

python-hcl2's own formatter (``hcl2.formatter``) is made for trees built from
dicts: on a parsed file it misplaces comments, adds blank lines and puts every
list element on a line of its own. So this module walks the raw lark tree of
``hcl2.parses_to_tree`` instead. Layout (indentation, line breaks, spacing
around ``=`` and inside lists and objects) is rewritten; every other
expression is copied from the source exactly as written, which keeps
``var.NAME``, ``"${var.NAME}"``, numbers and heredocs unchanged. As a last
guard the result must load to the same data as the input.
"""

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import hcl2

from l4plan import hcl2_tree as tree_of
from l4plan.hcl2_tree import CLOSERS, DBLQUOTE, END, GAP, STRING_CHARS, Token, Tree, UnexpectedInput
from l4plan.hcl_align import align

INDENT = "  "
HCL_SUFFIX = ".l4.hcl"

_NEWLINE = None  # a line break in the stream of comments and line breaks
_MEANING = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


class FormatError(Exception):
    """A file that cannot be formatted: malformed HCL, with its place."""

    def __init__(self, filename, line, column, message):
        super().__init__(message)
        self.filename = filename
        self.line = line
        self.column = column
        self.message = message

    def __str__(self):
        if self.line is None:
            return f"{self.filename}: {self.message}"
        return f"{self.filename}:{self.line}:{self.column}: {self.message}"


@dataclass
class _Row:
    """One logical line of a body, object or list, before indentation.

    ``kind`` is ``attr`` (``name = text``: an attribute or object element),
    ``block``, ``item`` (a list element), ``comment`` or ``blank``. ``text``
    may span lines; its continuation lines already carry their indentation.
    ``comments`` go at the end of its last line.
    """

    kind: str
    text: str = ""
    name: str = ""
    comments: list = field(default_factory=list)


def format_hcl(text: str, filename: str = "<string>") -> str:
    """Return ``text`` in canonical layout; raise `FormatError` if malformed."""
    tree = _parse(text, filename)
    body = tree.children[0]
    rows = _rows(body.children, text, _body_row, "", [_NEWLINE])[1]
    result = align("".join(line + "\n" for line in _emit(_space_top_level(rows), "")))
    _check_meaning(tree, result, filename)
    return result


def hcl_files(paths):
    """The files ``fmt`` works on: files as given, ``*.l4.hcl`` of directories.

    Directories are read like a configuration: not recursively, in name
    order. JSON files are never formatted, so they are left out.
    """
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(path.glob("*" + HCL_SUFFIX)))
        elif not path.name.endswith(".json"):
            found.append(path)
    return found


def unified_diff(path, before: str, after: str) -> str:
    """A unified diff of a file's formatting, headed like ``diff -u``."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=str(path),
        tofile=str(path),
        fromfiledate="(original)",
        tofiledate="(formatted)",
    )
    return "".join(lines)


def _parse(text, filename):
    try:
        tree = tree_of.parse(text)
    except UnexpectedInput as error:
        raise FormatError(filename, error.line, error.column, _syntax_message(error)) from None
    for block in tree.find_data(tree_of.BLOCK):
        _check_brace(block, filename)
    for body in tree.find_data(tree_of.BODY):
        _check_names(body, filename)
    return tree


def _check_brace(block, filename):
    """HCL wants ``{`` on the header line; python-hcl2 would read a label."""
    *head, brace, _, _ = block.children
    if head[-1].data == GAP:
        raise FormatError(
            filename, brace.line, brace.column, "a block's '{' must be on the same line as its labels"
        )


def _check_names(body, filename):
    """python-hcl2 cannot load a block named like an attribute before it."""
    attributes = set()
    for child in body.children:
        if child.data == tree_of.ATTRIBUTE:
            attributes.add(_first_name(child))
        elif child.data == tree_of.BLOCK and _first_name(child) in attributes:
            raise FormatError(
                filename,
                child.meta.line,
                child.meta.column,
                f"{_first_name(child)!r} is already an attribute here; a block cannot have the same name",
            )


def _first_name(node):
    """An attribute's name or a block's type."""
    return str(node.children[0].children[0])


def _syntax_message(error):
    """Say what lark found in HCL terms, and what would close an unbalanced
    bracket or string (lark's full list of expected terminals is noise)."""
    token = getattr(error, "token", None)
    if token is None:
        return f"unexpected character {error.char!r}"
    found = _describe(token)
    if found not in ("end of file", *CLOSERS.values()):
        return f"unexpected {found}"
    expected = getattr(error, "expected", None) or ()
    wanted = [glyph for name, glyph in CLOSERS.items() if name in expected]
    if not wanted and DBLQUOTE in expected:
        wanted = ["'\"'"]
    hint = f", expected {' or '.join(wanted)}" if wanted else ""
    return f"unexpected {found}{hint}"


def _describe(token):
    """A token as an HCL author would name it."""
    if token.type in END:
        return "end of file"
    text = str(token)[:1] if token.type == STRING_CHARS else str(token).strip(" \t")
    return repr(text.splitlines()[0]) if text.strip() else "newline"


def _check_meaning(tree, result, filename):
    """Refuse output that loads differently (a formatter bug) rather than write it."""
    before = tree_of.values(tree, _MEANING, discard_comments=False)
    try:
        after = tree_of.loads(result, _MEANING)
    except UnexpectedInput:
        after = None
    if after != before:
        raise FormatError(
            filename,
            None,
            None,
            "formatting would change the meaning of this file, so it is left"
            " unchanged (a bug in l4plan fmt: please report it)",
        )


# -- splitting a container into rows -----------------------------------------


def _rows(children, src, item_row, indent, events=()):
    """Rows of a body, object or list: its items and the comments between.

    Returns the comments on the opening line, then the rows. Brackets and
    commas are dropped (the caller writes its own); comments and blank lines
    come from the ``new_line_or_comment`` nodes and from any that the grammar
    let the end of an expression swallow. ``events`` seeds the first gap (a
    line break for a file, which has no opening line).
    """
    opener, rows, events = None, [], list(events)
    for child in children:
        if isinstance(child, Token):
            continue
        if child.data == GAP:
            events.extend(_events(child.children))
            continue
        trailing, between = _gap(events)
        if opener is None:
            opener = trailing
        else:
            rows[-1].comments.extend(trailing)
        rows.extend(between)
        rows.append(item_row(child, src, indent))
        events = _item_tail(child, src)
    trailing, between = _gap(events)
    if opener is None:
        opener = trailing
    else:
        rows[-1].comments.extend(trailing)
    return opener, _squeeze_blanks(rows + between)


def _events(tokens):
    """Comments and line breaks of ``NL_OR_COMMENT`` tokens, in order."""
    for token in tokens:
        value = str(token)
        if value.startswith(("#", "//")):
            yield value.rstrip()
            yield _NEWLINE
        elif value.startswith("/*"):
            yield "\n".join(line.rstrip() for line in value.split("\n"))
        else:
            yield _NEWLINE


def _gap(events):
    """Split what lies between two items into end-of-line comments and rows.

    Comments before the first line break belong to the line of the item
    before; after it, each line is a comment row or a blank row. Comments
    written before an item on its own line get a line of their own.
    """
    trailing, rows, line, broken = [], [], [], False
    for event in events:
        if event is not _NEWLINE:
            line.append(event)
        elif not broken:
            trailing, line, broken = line, [], True
        else:
            rows.append(_comment_row(line))
            line = []
    if not broken:
        return line, rows
    if line:
        rows.append(_comment_row(line))
    return trailing, rows


def _comment_row(comments):
    if not comments:
        return _Row("blank")
    return _Row("comment", " ".join(comments))


def _item_tail(node, src):
    """Events that follow an item: the line break a heredoc ends with, and
    comments an expression swallowed."""
    events = [_NEWLINE] if _ends_line(node, src) else []
    return events + list(_events(_swallowed(node)))


def _ends_line(node, src):
    """True for a heredoc: its token takes the line break after its marker."""
    return _raw(node, src).rstrip(" \t\r").endswith("\n")


def _swallowed(node):
    """Tokens of the ``new_line_or_comment`` that ends ``node``, if any.

    The grammar lets a binary operation end with one, so ``a = 1 + 2 # c``
    puts the comment (and the line break) inside the expression.
    """
    last = node.children[-1] if node.children else None
    if not isinstance(last, Tree):
        return []
    if last.data == GAP:
        return last.children
    return _swallowed(last)


def _raw(node, src):
    """Source text of ``node`` without a swallowed comment."""
    tail = _swallowed(node)
    end = tail[0].start_pos if tail else node.meta.end_pos
    return src[node.meta.start_pos : end]


def _verbatim(node, src):
    return _raw(node, src).rstrip()


def _squeeze_blanks(rows):
    """At most one blank row in a row, none first or last."""
    kept: list = []
    for row in rows:
        if row.kind == "blank" and (not kept or kept[-1].kind == "blank"):
            continue
        kept.append(row)
    if kept and kept[-1].kind == "blank":
        kept.pop()
    return kept


def _space_top_level(rows):
    """One blank line between a top-level block and its neighbours.

    The blank goes right after the earlier item, so comments written above a
    block stay attached to it.
    """
    spaced: list = []
    last_item, blank_since = 0, True  # no item yet counts as a blank
    for row in rows:
        if row.kind in ("attr", "block"):
            if not blank_since and "block" in (row.kind, spaced[last_item].kind):
                spaced.insert(last_item + 1, _Row("blank"))
            last_item, blank_since = len(spaced), False
        blank_since = blank_since or row.kind == "blank"
        spaced.append(row)
    return spaced


# -- rendering items ------------------------------------------------------------


def _body_row(node, src, indent):
    """An attribute or a nested block of a body."""
    if node.data == tree_of.ATTRIBUTE:
        name, _, value = node.children
        return _Row("attr", _value(value, src, indent), _verbatim(name, src))
    return _Row("block", _block(node, src, indent))


def _block(node, src, indent):
    """``type "label" {`` with the body indented below, or ``type {}``."""
    *head, _, body, _ = node.children
    labels = [_verbatim(part, src) for part in head]
    opener, rows = _rows(body.children, src, _body_row, indent + INDENT)
    header = " ".join(labels) + " {"
    if not rows and not opener:
        return header + "}"
    lines = [_with_comments(header, opener)]
    lines += _emit(rows, indent + INDENT)
    return "\n".join(lines + [indent + "}"])


def _value(node, src, indent):
    """An attribute or element value: lists and objects laid out, the rest as written."""
    inner = node.children[0] if node.data == tree_of.EXPR_TERM else None
    if isinstance(inner, Tree) and inner.data == tree_of.TUPLE:
        return _tuple(inner, src, indent)
    if isinstance(inner, Tree) and inner.data == tree_of.OBJECT:
        return _object(inner, src, indent)
    return _verbatim(node, src)


def _tuple(node, src, indent):
    """``[a, b]`` on one line, or one element per line when comments or
    multi-line elements are inside. An element that ends its line (a
    heredoc) leaves no room for a comma, so such a list stays as written."""
    items = [c for c in node.children if isinstance(c, Tree) and c.data != GAP]
    if any(_ends_line(item, src) for item in items):
        return _verbatim(node, src)
    opener, rows = _rows(node.children, src, _element_row, indent + INDENT)
    one_line = not opener and all(row.kind == "blank" or _single_line(row, "item") for row in rows)
    if one_line:
        return "[" + ", ".join(row.text for row in rows if row.kind == "item") + "]"
    for row in rows:
        if row.kind == "item":
            row.text += ","
    lines = [_with_comments("[", opener)] + _emit(rows, indent + INDENT)
    return "\n".join(lines + [indent + "]"])


def _element_row(node, src, indent):
    return _Row("item", _value(node, src, indent))


def _object(node, src, indent):
    """``{ k = v }`` when written on one line, else one element per line with
    ``=`` aligned, as in a block body."""
    opener, rows = _rows(node.children, src, _object_row, indent + INDENT)
    if not rows and not opener:
        return "{}"
    one_line = (
        node.meta.line == node.meta.end_line and not opener and all(_single_line(row, "attr") for row in rows)
    )
    if one_line:
        return "{ " + ", ".join(f"{r.name} = {r.text}" for r in rows) + " }"
    lines = [_with_comments("{", opener)] + _emit(rows, indent + INDENT)
    return "\n".join(lines + [indent + "}"])


def _single_line(row, kind):
    return row.kind == kind and not row.comments and "\n" not in row.text


def _object_row(node, src, indent):
    key, _, value = node.children
    return _Row("attr", _value(value, src, indent), _verbatim(key, src))


# -- emitting lines ---------------------------------------------------------------


def _emit(rows, indent):
    """Indented, single-spaced lines of ``rows``; ``hcl_align.align`` aligns the file."""
    return [_with_comments(_code(row, indent), row.comments) for row in rows]


def _code(row, indent):
    """A row's text without its end-of-line comments."""
    if row.kind == "blank":
        return ""
    if row.kind == "attr":
        return f"{indent}{row.name} = {row.text}"
    return indent + row.text


def _with_comments(line, comments):
    return " ".join([line, *comments])
