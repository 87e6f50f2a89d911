"""Vertical alignment exactly as HashiCorp's formatter does it (hclwrite).

hclwrite (behind ``hclfmt`` and ``terraform fmt``) aligns line by line over the
whole file, not block by block. Each line has a *lead*, an *assign* cell (from
its first ``=`` on, when the rest of the line closes every bracket it opens)
and a *comment* cell (a ``#`` or ``//`` comment ending a line that has code
before it). In a run of consecutive lines with an assign cell every ``=``
stands one column past the longest lead; in a run of consecutive lines with a
comment cell every comment stands one column past the longest code, whatever
the indentation. A heredoc belongs to the line of its ``=``; a ``/* */``
comment is code, never a comment cell.

``align`` takes text whose lines are already indented and single-spaced and
moves only the spaces before those two cells.
"""

import re
import unicodedata

_HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_-]*)\r?\n")
_OPENERS, _CLOSERS = "{[(", "}])"


def align(text):
    """``text`` with ``=`` and end-of-line comments aligned as hclwrite aligns them."""
    lines = list(_cells(text))
    codes = [lead for lead, _, _ in lines]
    for run in _runs(lines, 1):
        column = max(_width(lines[i][0]) for i in run) + 1
        for i in run:
            codes[i] = lines[i][0] + " " * (column - _width(lines[i][0])) + lines[i][1]
    out = list(codes)
    for run in _runs(lines, 2):
        column = max(_width(codes[i]) for i in run) + 1
        for i in run:
            out[i] = codes[i] + " " * (column - _width(codes[i])) + lines[i][2]
    return "".join(out)


def _runs(lines, cell):
    """Index runs of consecutive lines whose ``cell`` (1: assign, 2: comment) is present."""
    run = []
    for index, line in enumerate(lines):
        if line[cell]:
            run.append(index)
        elif run:
            yield run
            run = []
    if run:
        yield run


def _width(text):
    """Columns as hclwrite counts them: grapheme clusters (combining marks take none)."""
    return sum(1 for char in text if not unicodedata.combining(char))


def _cells(text):
    """``(lead, assign, comment)`` of every line, the line break kept on the
    last non-empty cell, spaces before the assign and comment cells dropped."""
    start, index, size = 0, 0, len(text)
    tokens, equals, balance, comment = 0, None, 0, None
    while index < size:
        char = text[index]
        end = None
        if char == "\n":
            end = index + 1
        elif char in " \t\r":
            index += 1
            continue
        elif char == "#" or text.startswith("//", index):
            newline = text.find("\n", index)
            end = size if newline < 0 else newline + 1
            comment = index if tokens else None
        if end is not None:
            yield _split(text[start:end], start, equals if balance == 0 else None, comment)
            start, index, tokens, equals, balance, comment = end, end, 0, None, 0, None
            continue
        tokens += 1
        index, change = _token_end(text, index)
        if equals is not None:
            balance += change
        elif tokens > 1 and _is_assignment(text, index - 1) and char == "=":
            equals = index - 1
    if start < size:
        yield _split(text[start:], start, equals if balance == 0 else None, comment)


def _split(line, offset, equals, comment):
    ends = [i - offset for i in (equals, comment) if i is not None] + [len(line)]
    lead = line[: ends[0]]
    assign = line[equals - offset : ends[1]] if equals is not None else ""
    tail = line[comment - offset :] if comment is not None else ""
    if assign or tail:
        lead = lead.rstrip(" \t")
    if assign and tail:
        assign = assign.rstrip(" \t")
    return lead, assign, tail


def _is_assignment(text, index):
    """A lone ``=``: not part of ``==``, ``!=``, ``<=``, ``>=`` or ``=>``."""
    before = text[index - 1] if index else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    return before not in "=!<>" and after not in "=>"


def _token_end(text, index):
    """``(index after the token at index, its bracket change)``."""
    char = text[index]
    if text.startswith("/*", index):
        close = text.find("*/", index + 2)
        return (len(text) if close < 0 else close + 2), 0
    if char == '"':
        return _string_end(text, index + 1), 0
    heredoc = _HEREDOC.match(text, index)
    if heredoc:
        return _heredoc_end(text, heredoc), 0
    if char in _OPENERS:
        return index + 1, 1
    if char in _CLOSERS:
        return index + 1, -1
    return index + 1, 0


def _string_end(text, index):
    """The index after the quote closing a string whose content starts at
    ``index``; interpolations may hold strings and braces of their own."""
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
        elif text.startswith(("$${", "%%{"), index):
            index += 3
        elif text.startswith(("${", "%{"), index):
            index = _interpolation_end(text, index + 2)
        elif char == '"' or char == "\n":
            return index + 1 if char == '"' else index
        else:
            index += 1
    return index


def _interpolation_end(text, index):
    depth = 1
    while index < len(text) and depth:
        char = text[index]
        if char == '"':
            index = _string_end(text, index + 1)
            continue
        depth += (char == "{") - (char == "}")
        index += 1
    return index


def _heredoc_end(text, match):
    """The index after a heredoc's closing marker (its line break stays)."""
    marker = match.group(1)
    index = match.end()
    while index < len(text):
        newline = text.find("\n", index)
        line_end = len(text) if newline < 0 else newline
        if text[index:line_end].strip() == marker:
            return line_end
        index = line_end + 1
    return len(text)
