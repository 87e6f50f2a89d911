"""l4plan fmt: canonical layout, comments kept, meaning never changed."""

import os
import string
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import hcl2
import pytest
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lark.exceptions import UnexpectedInput

from l4plan import fmt
from l4plan.cli import main
from l4plan.fmt import FormatError, format_hcl, hcl_files

FIXTURES = Path(__file__).parent / "fixtures" / "fmt"
MEANING = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def _hcl(text):
    return dedent(text).lstrip("\n")


def _meaning(text):
    return hcl2.loads(text, serialization_options=MEANING)


def _assert_canonical(source):
    """Formatting is idempotent, keeps the meaning and leaves no trailing spaces."""
    formatted = format_hcl(source)
    assert format_hcl(formatted) == formatted
    assert _meaning(formatted) == _meaning(source)
    assert all(line == line.rstrip() for line in formatted.splitlines())
    return formatted


# -- golden layouts --------------------------------------------------------------

GOLDEN = {
    "indentation, one attribute per line, aligned =": (
        """
        site "example.com" {
              plan = "enterprise"
        ddos_full_protection=true
          fixed_ipv4    =   false
        }
        application "game" { domain = "game.example.com" ipv6 = true keepalive_protection = false
        }
        """,
        """
        site "example.com" {
          plan                 = "enterprise"
          ddos_full_protection = true
          fixed_ipv4           = false
        }

        application "game" {
          domain               = "game.example.com"
          ipv6                 = true
          keepalive_protection = false
        }
        """,
    ),
    "alignment runs end at blank lines, comments and blocks": (
        """
        application "game" {
          domain = "game.example.com"

          ipv6 = true
          waf_ip_access_control = true
          # keep-alive stays off
          keepalive_protection = false
          lifecycle { prevent_destroy = true }
          x = 1
        }
        """,
        """
        application "game" {
          domain = "game.example.com"

          ipv6                  = true
          waf_ip_access_control = true
          # keep-alive stays off
          keepalive_protection = false
          lifecycle {
            prevent_destroy = true
          }
          x = 1
        }
        """,
    ),
    "comments of every kind are kept in place, aligned as hclfmt aligns them": (
        """
        # full-line hash
        // full-line slashes
        /* full-line block */
        site "example.com" { # after the brace
          plan = "enterprise"   # end of line, hash
          fixed_ipv4 = false // end of line, slashes
          ipv6 = true /* end of line, block */
            /* a block comment
               over two lines */
          /* before */ domain = "a.example.com"
        } # after the closing brace
        """,
        """
        # full-line hash
        // full-line slashes
        /* full-line block */
        site "example.com" {        # after the brace
          plan       = "enterprise" # end of line, hash
          fixed_ipv4 = false        // end of line, slashes
          ipv6       = true /* end of line, block */
          /* a block comment
               over two lines */
          /* before */
          domain = "a.example.com"
        } # after the closing brace
        """,
    ),
    "nested blocks are expanded and indented": (
        """
        load_balancer "game-pool" {
        algorithm = "round_robin"
        origin { address = "192.0.2.10"
        weight = 2 }
        origin {
        address = "192.0.2.11"
        }
            health_check { interval = 5   # seconds
         timeout = 2 }
        }
        """,
        """
        load_balancer "game-pool" {
          algorithm = "round_robin"
          origin {
            address = "192.0.2.10"
            weight  = 2
          }
          origin {
            address = "192.0.2.11"
          }
          health_check {
            interval = 5 # seconds
            timeout  = 2
          }
        }
        """,
    ),
    "lists go on one line unless comments are inside": (
        """
        site "example.com" {
          layer7_domains = [ "www.example.com","api.example.com" , ]
          load_balancing_domains = [
            "lb.example.com",
            "lb2.example.com"
          ]
          edge_function_domains = []
        }
        ip_access_rule "block-scanners" {
          sources = [
          "198.51.100.0/24", # scanners
            # and a whole network
          "2001:db8:bad::/48"
          ]
        }
        """,
        """
        site "example.com" {
          layer7_domains         = ["www.example.com", "api.example.com"]
          load_balancing_domains = ["lb.example.com", "lb2.example.com"]
          edge_function_domains  = []
        }

        ip_access_rule "block-scanners" {
          sources = [
            "198.51.100.0/24", # scanners
            # and a whole network
            "2001:db8:bad::/48",
          ]
        }
        """,
    ),
    "variables, interpolations, numbers and escapes stay as written": (
        """
        rule {
          origin = var.game_origin
          comment = "${var.game_origin}:${var.port} \\"quoted\\" \\\\ back"
          port = 017000
          weight = 1.50
          ipv6 = false
          origin_port = "$${not_a_variable}"
        }
        """,
        """
        rule {
          origin      = var.game_origin
          comment     = "${var.game_origin}:${var.port} \\"quoted\\" \\\\ back"
          port        = 017000
          weight      = 1.50
          ipv6        = false
          origin_port = "$${not_a_variable}"
        }
        """,
    ),
    "one blank line between top-level blocks; comments stay on their block": (
        """


        variable "a" { default = "x" }
        # about b
        variable "b" {}



        variable "c" {
        }
        backend "local" { path = "l4plan.state.json" }


        """,
        """
        variable "a" {
          default = "x"
        }

        # about b
        variable "b" {}

        variable "c" {}

        backend "local" {
          path = "l4plan.state.json"
        }
        """,
    ),
    "blank lines inside a block are kept, at most one, none at the edges": (
        """
        application "a" {

          domain = "a.example.com"



          rule {
            protocol = "tcp"
          }

        }
        """,
        """
        application "a" {
          domain = "a.example.com"

          rule {
            protocol = "tcp"
          }
        }
        """,
    ),
    "objects are laid out like blocks, or kept on one line": (
        """
        x {
          tags = {a="1", bb = 2}
          more = {
          first = 1 # one
          second_one: "2"
          }
          none = {}
        }
        """,
        """
        x {
          tags = { a = "1", bb = 2 }
          more = {
            first      = 1 # one
            second_one = "2"
          }
          none = {}
        }
        """,
    ),
    "heredocs are copied byte for byte, and take part in alignment": (
        """
        x {
            banner = <<EOT
          indented  text
        EOT
              other = <<-EOT
            trimmed
            EOT
          after = 1
        }
        """,
        """
        x {
          banner = <<EOT
          indented  text
        EOT
          other  = <<-EOT
            trimmed
            EOT
          after  = 1
        }
        """,
    ),
    "expressions outside l4plan's language are kept as written": (
        """
        x {
          a = var.enabled ? "on" : "off"   # conditional
          b = 1 + 2 # arithmetic
          c = upper(var.name)
        }
        """,
        """
        x {
          a = var.enabled ? "on" : "off" # conditional
          b = 1 + 2                      # arithmetic
          c = upper(var.name)
        }
        """,
    ),
}


@pytest.mark.parametrize("source, expected", GOLDEN.values(), ids=GOLDEN.keys())
def test_golden_layout(source, expected):
    """Messy input comes out in exactly the canonical layout."""
    assert _assert_canonical(_hcl(source)) == _hcl(expected)


def test_design_example():
    """The full example of DESIGN §2 formats to the stored canonical form."""
    source = (FIXTURES / "design_example.l4.hcl").read_text()
    expected = (FIXTURES / "design_example.formatted.l4.hcl").read_text()
    assert _assert_canonical(source) == expected
    assert _assert_canonical(expected) == expected


def test_trailing_newline_and_empty_file():
    """Output always ends in exactly one newline; an empty file stays empty."""
    assert format_hcl("a = 1") == "a = 1\n"
    assert format_hcl("") == ""
    assert format_hcl("\n\n") == ""


def test_crlf_and_tabs():
    """Windows line ends and tab indentation come out as LF and two spaces."""
    assert format_hcl("b {\r\n\tx = 1\r\n\tyy = 2\r\n}\r\n") == _hcl("""
        b {
          x  = 1
          yy = 2
        }
        """)


# -- errors -------------------------------------------------------------------------

ERRORS = {
    "unclosed block": ('site "x" {\n  plan = "enterprise"\n', 3, 1, "unexpected end of file, expected '}'"),
    "unclosed list": ('a = ["x",\n}\n', 2, 1, "unexpected '}', expected ']'"),
    "unclosed string": ('a = "abc\n', 1, 6, "unexpected end of file, expected '\"'"),
    "stray character": ("a = 1 ^ 2\n", 1, 7, "unexpected '^'"),
    "stray brace": ("a = 1}\n", 1, 6, "unexpected '}'"),
    "block named like an attribute": (
        "b {\n  x = 1\n  x {}\n}\n",
        3,
        3,
        "'x' is already an attribute here; a block cannot have the same name",
    ),
    "brace on its own line": (
        'site "x"\n{\n}\n',
        2,
        1,
        "a block's '{' must be on the same line as its labels",
    ),
}


@pytest.mark.parametrize("source, line, column, message", ERRORS.values(), ids=ERRORS.keys())
def test_malformed_hcl(source, line, column, message):
    """Malformed HCL raises FormatError naming file, line, column and the problem."""
    with pytest.raises(FormatError) as caught:
        format_hcl(source, "main.l4.hcl")
    assert str(caught.value) == f"main.l4.hcl:{line}:{column}: {message}"
    assert (caught.value.line, caught.value.column) == (line, column)


def test_meaning_guard(monkeypatch):
    """A layout bug that would change what the file means raises instead of returning."""
    monkeypatch.setattr(fmt, "_verbatim", lambda node, src: "0")
    with pytest.raises(FormatError) as caught:
        format_hcl("a = 1\n", "main.l4.hcl")
    assert str(caught.value).startswith("main.l4.hcl: formatting would change the meaning")


# -- properties ----------------------------------------------------------------------

_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
_STRINGS = st.text(string.ascii_letters + string.digits + " .:-_", max_size=8).map(lambda s: f'"{s}"')
_SCALARS = st.one_of(
    st.integers(0, 70000).map(str),
    st.sampled_from(["true", "false", "1.5"]),
    _STRINGS,
    _NAMES.map(lambda n: f"var.{n}"),
    _NAMES.map(lambda n: f'"${{var.{n}}}:80"'),
)
_SPACE = st.sampled_from(["", " ", "  ", "\t"])
_COMMENT = st.text(string.ascii_letters + " ", max_size=8)
# What may end a statement: a line break, a comment, or nothing (same line).
_ENDS = st.one_of(
    st.sampled_from(["\n", "\n\n", "\n\n\n", " "]),
    _COMMENT.map(lambda c: f" # {c}\n"),
    _COMMENT.map(lambda c: f"// {c}\n"),
    _COMMENT.map(lambda c: f" /* {c} */ "),
    _COMMENT.map(lambda c: f"\n  /* {c}\n{c} */\n"),
    _COMMENT.map(lambda c: f"\n  # {c}\n"),
)
# HCL that l4plan does not use but python-hcl2 reads: fmt must not break it.
_OTHER_NAMES = st.one_of(_NAMES, st.sampled_from(["in", "for", "if", "true", "null"]))
_OTHER_VALUES = st.sampled_from(
    ["1e3", "-4", "null", "var.x.y", "a[0]", "f(1, 2)", "1 + 2", "x ? 1 : 2", "(1)", '"a${var.b}c"']
)
_HEREDOCS = st.sampled_from(["<<EOT\n  a\nEOT\n", "<<-EOT\n    b\n  EOT\n"])


def _lists(elements):
    separators = st.sampled_from([",", ", ", " ,\n  ", ",\n", " , # c\n", ",/* c */"])
    return st.lists(st.tuples(elements, separators), max_size=3).map(
        lambda items: "[" + "".join(element + sep for element, sep in items) + "]"
    )


def _objects(elements):
    separators = st.sampled_from(["=", " = ", ":"])
    ends = st.sampled_from([",", "\n", ", ", " # c\n"])
    return st.lists(st.tuples(_OTHER_NAMES, separators, elements, ends), max_size=3).map(
        lambda items: "{" + "".join(map("".join, items)) + "}"
    )


def _l4plan_values():
    return st.one_of(_SCALARS, _lists(_SCALARS))


def _other_values(depth=0):
    scalars = st.one_of(_SCALARS, _OTHER_VALUES)
    if depth == 2:
        return scalars
    inner = _other_values(depth + 1)
    return st.one_of(scalars, _lists(inner), _objects(inner), _HEREDOCS)


@st.composite
def _attributes(draw, names, values):
    return f"{draw(names)}{draw(_SPACE)}={draw(_SPACE)}{draw(values)}"


@st.composite
def _blocks(draw, attributes, depth=0):
    # Block types no generated attribute name can take: python-hcl2 rejects that clash.
    header = draw(st.sampled_from(["health_check", 'application "game"', 'load_balancer "pool" x']))
    parts = [draw(attributes) for _ in range(draw(st.integers(0, 4)))]
    if depth < 2:
        parts += [draw(_blocks(attributes, depth + 1)) for _ in range(draw(st.integers(0, 2)))]
    body = "".join(part + draw(_ENDS) for part in draw(st.permutations(parts)))
    return f"{draw(_SPACE)}{header} {{{draw(_ENDS)}{body}}}"


@st.composite
def _files(draw, attributes):
    items = draw(st.lists(st.one_of(_blocks(attributes), attributes), max_size=4))
    return "".join(item + draw(_ENDS.filter(lambda end: "\n" in end)) for item in items)


def _assert_properties(source):
    formatted = _assert_canonical(source)
    for comment in ("#", "//", "/*"):
        assert formatted.count(comment) == source.count(comment)


#: Messy configurations of l4plan's language, and of HCL beyond it (the fmt,
#: hclfmt, fast-reader and fuzz tests draw from both).
L4PLAN_FILES = _files(_attributes(_NAMES, _l4plan_values()))
OTHER_FILES = _files(_attributes(_OTHER_NAMES, _other_values()))


@settings(max_examples=100, deadline=None)
@given(L4PLAN_FILES)
def test_properties_on_generated_configs(source):
    """On varied messy configurations fmt is idempotent and keeps the meaning and every comment."""
    _assert_properties(source)


@settings(max_examples=100, deadline=None)
@given(OTHER_FILES)
def test_properties_on_other_hcl(source):
    """Objects, heredocs, keywords as names and expressions l4plan does not use survive fmt too."""
    try:
        _meaning(source)
    except UnexpectedInput:  # a combination python-hcl2 itself rejects
        assume(False)
    _assert_properties(source)


# -- files and the command line -----------------------------------------------------

MESSY = 'site "a.example.com" {\nplan="enterprise"\n}\n'
TIDY = 'site "a.example.com" {\n  plan = "enterprise"\n}\n'


@pytest.fixture
def config(tmp_path):
    """A configuration directory with a messy file, a tidy one, JSON and a subdirectory."""
    (tmp_path / "a.l4.hcl").write_text(MESSY)
    (tmp_path / "b.l4.hcl").write_text(TIDY)
    (tmp_path / "c.l4.json").write_text('{"site":{ }}')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.l4.hcl").write_text(MESSY)
    return tmp_path


def _run(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)


def test_hcl_files(config):
    """Directories give their *.l4.hcl files in name order; files are taken as given, JSON never."""
    assert hcl_files([config]) == [config / "a.l4.hcl", config / "b.l4.hcl"]
    assert hcl_files([config / "sub" / "d.l4.hcl", config / "c.l4.json"]) == [config / "sub" / "d.l4.hcl"]


def test_fmt_rewrites_changed_files(config):
    """fmt rewrites and lists the files that change; the rest are left alone."""
    result = _run("-C", config, "fmt")
    assert (result.exit_code, result.stdout) == (0, "a.l4.hcl\n")
    assert (config / "a.l4.hcl").read_text() == TIDY
    assert (config / "c.l4.json").read_text() == '{"site":{ }}'
    assert (config / "sub" / "d.l4.hcl").read_text() == MESSY


def test_fmt_check_exits_3_and_writes_nothing(config):
    """--check lists the files that would change, exits 3 and changes nothing."""
    result = _run("fmt", "--check", config)
    assert (result.exit_code, result.stdout) == (3, f"{config / 'a.l4.hcl'}\n")
    assert (config / "a.l4.hcl").read_text() == MESSY


def test_fmt_check_exits_0_when_tidy(config):
    """--check exits 0 and prints nothing when every file is canonical."""
    result = _run("fmt", "--check", config / "b.l4.hcl")
    assert (result.exit_code, result.stdout) == (0, "")


def test_fmt_diff(config):
    """--diff prints a unified diff of each change; with --check it writes nothing."""
    path = config / "a.l4.hcl"
    result = _run("fmt", "--check", "--diff", path)
    assert result.exit_code == 3
    assert result.stdout == (
        f"{path}\n"
        f"--- {path}\t(original)\n"
        f"+++ {path}\t(formatted)\n"
        "@@ -1,3 +1,3 @@\n"
        ' site "a.example.com" {\n'
        '-plan="enterprise"\n'
        '+  plan = "enterprise"\n'
        " }\n"
    )
    assert path.read_text() == MESSY


def test_fmt_malformed_file(config):
    """A malformed file is reported with its line, left untouched, and fmt exits 1."""
    bad = config / "0bad.l4.hcl"
    bad.write_text('site "x" {\n  plan = \n}\n')
    result = _run("-C", config, "fmt")
    assert result.exit_code == 1
    assert result.stderr == "Error: 0bad.l4.hcl:2:10: unexpected newline\n"
    assert bad.read_text() == 'site "x" {\n  plan = \n}\n'
    assert (config / "a.l4.hcl").read_text() == TIDY


def test_fmt_unreadable_file(config):
    """A file that is not UTF-8 text is an error, not a traceback."""
    (config / "a.l4.hcl").write_bytes(b"\xff\xfe")
    result = _run("fmt", config / "a.l4.hcl")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {config / 'a.l4.hcl'}: not UTF-8 text\n"


def test_fmt_unwritable_file(config, monkeypatch):
    """A file that cannot be written is an error naming it, not a traceback."""

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_text", refuse)
    result = _run("fmt", config)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {config / 'a.l4.hcl'}: cannot write: Permission denied\n"


def test_fmt_help_mentions_json():
    """The help says that JSON configuration files are left alone."""
    assert "*.l4.json files are left alone" in _run("fmt", "--help").stdout


@pytest.mark.processes
def test_fmt_subprocess(config):
    """The installed l4plan script runs fmt --check and then fmt for real."""
    script = Path(sys.executable).with_name("l4plan")
    env = {**os.environ, "NO_COLOR": "1"}
    check = subprocess.run([script, "fmt", "--check"], cwd=config, capture_output=True, text=True, env=env)
    assert (check.returncode, check.stdout) == (3, "a.l4.hcl\n")
    subprocess.run([script, "fmt"], cwd=config, check=True, capture_output=True, env=env)
    assert (config / "a.l4.hcl").read_text() == TIDY
    again = subprocess.run([script, "fmt", "--check"], cwd=config, capture_output=True, env=env)
    assert again.returncode == 0
