"""Every directory of examples/invalid breaks one rule and must say exactly how."""

import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES

INVALID = sorted(p for p in (EXAMPLES / "invalid").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", INVALID, ids=[p.name for p in INVALID])
def test_invalid_example_gives_its_exact_error(cli, case):
    """validate exits 1 and its first line is the one recorded in expected.txt."""
    result = cli("-C", case, "validate")
    expected = (case / "expected.txt").read_text().strip()
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == expected
    assert "Traceback" not in result.output


def test_every_invalid_example_names_file_line_and_path():
    """Each recorded error starts with file:line:column and an attribute path or syntax note."""
    for case in INVALID:
        line = (case / "expected.txt").read_text().strip()
        assert line.startswith("Error: main.l4."), case.name
        assert ":" in line.split(": ", 2)[1], case.name


@pytest.mark.processes
def test_invalid_example_through_a_real_process():
    """The installed console script reports the same error and exit code."""
    case = EXAMPLES / "invalid" / "mapping-length-mismatch"
    result = subprocess.run(
        [sys.executable, "-m", "l4plan", "-C", str(case), "validate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (case / "expected.txt").read_text().strip()
