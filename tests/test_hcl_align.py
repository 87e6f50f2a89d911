"""Alignment of ``=`` and end-of-line comments as hclwrite (hclfmt) does it;
every expected output here is what hclfmt 2.14 writes for the source."""

import pytest

from l4plan.hcl_align import align

CASES = {
    "a run of assignments": ('a = 1\nlonger = 2\n', 'a      = 1\nlonger = 2\n'),
    "a blank line ends the run": ('a = 1\n\nlonger = 2\n', 'a = 1\n\nlonger = 2\n'),
    "comments align across indentation and block lines": (
        'x { # open\n  a = 1 # one\n} # close\n',
        'x {     # open\n  a = 1 # one\n}       # close\n',
    ),
    "a full-line comment ends both runs": ('a = 1 # one\n# alone\nbb = 2 # two\n', 'a = 1 # one\n# alone\nbb = 2 # two\n'),
    "a multi-line value has no assign cell": (
        'a = 1\nsources = [\n  "x", # c\n]\n',
        'a = 1\nsources = [\n  "x", # c\n]\n',
    ),
    "a heredoc belongs to the line of its =": (
        'a = <<EOT\nb = not an attribute\nEOT\nlonger = 2\n',
        'a      = <<EOT\nb = not an attribute\nEOT\nlonger = 2\n',
    ),
    "a block comment is code": ('a = 1 /* c */\nbb = 2 # d\n', 'a  = 1 /* c */\nbb = 2 # d\n'),
    "= and # inside strings and interpolations": (
        'a = "x = 1 # no"\nbb = "${f("}")} #"\n',
        'a  = "x = 1 # no"\nbb = "${f("}")} #"\n',
    ),
    "operators are not assignments": ('a == b\nbb = 2\n', 'a == b\nbb = 2\n'),
    "a one-line object is an assignment": ('tags = { a = 1 }\nb = 2\n', 'tags = { a = 1 }\nb    = 2\n'),
}


@pytest.mark.parametrize("source, expected", CASES.values(), ids=CASES.keys())
def test_align(source, expected):
    assert align(source) == expected
    assert align(expected) == expected
