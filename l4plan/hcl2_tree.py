"""The one door to python-hcl2's lark tree: every name l4plan reads of it.

``config.hcl_file`` takes positions from the tree and ``fmt`` its layout, but
python-hcl2 documents neither its grammar's rule names nor lark's error
attributes. They are named here, and the first ``parse`` in a process checks
that the installed python-hcl2 still builds the tree they describe, so a
changed release fails with one clear message, not a KeyError inside fmt.
"""

from functools import cache

import hcl2
from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

__all__ = ["LarkError", "Token", "Tree", "UnexpectedInput", "parse", "values", "loads"]

#: The releases the names below were read from (pyproject.toml bounds them).
TESTED = "python-hcl2 8.x with lark 1.x"

# Rules of python-hcl2's grammar (hcl2/hcl2.lark).
BODY = "body"
ATTRIBUTE = "attribute"
BLOCK = "block"
IDENTIFIER = "identifier"
STRING = "string"
EXPR_TERM = "expr_term"
TUPLE = "tuple"
OBJECT = "object"
GAP = "new_line_or_comment"  # line breaks and comments between items
# Terminals.
DBLQUOTE = "DBLQUOTE"
STRING_CHARS = "STRING_CHARS"  # the lexer's catch-all, running to the line's end
END = ("$END", "<EOF>")
CLOSERS = {"RBRACE": "'}'", "RSQB": "']'", "RPAR": "')'"}

_SAMPLE = 'block "label" {\n  # a comment\n  list = ["a"]\n  map  = { k = 1 }\n}\n'
_RULES = (BODY, ATTRIBUTE, BLOCK, IDENTIFIER, STRING, EXPR_TERM, TUPLE, OBJECT, GAP)


class Hcl2Mismatch(RuntimeError):
    """The installed python-hcl2 builds another tree than l4plan reads."""


def parse(text):
    """The lark tree of ``text``; raises lark's UnexpectedInput on bad syntax."""
    _check()
    return hcl2.parses_to_tree(text)


def values(tree, options, discard_comments=True):
    """The plain values of a parsed file, as python-hcl2 serializes them."""
    return hcl2.serialize(hcl2.transform(tree, discard_comments=discard_comments), serialization_options=options)


def loads(text, options):
    """The plain values of ``text`` (``hcl2.loads``)."""
    return hcl2.loads(text, serialization_options=options)


@cache
def _check():
    tree = hcl2.parses_to_tree(_SAMPLE)
    found = {node.data for node in tree.iter_subtrees()}
    missing = [name for name in _RULES if name not in found]
    if not any(token.type == DBLQUOTE for token in tree.scan_values(lambda v: isinstance(v, Token))):
        missing.append(DBLQUOTE)
    if missing:
        raise Hcl2Mismatch(
            f"the installed python-hcl2 builds a tree without {', '.join(missing)}: "
            f"install a release l4plan is tested with ({TESTED})"
        )
