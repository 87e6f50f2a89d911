"""The loader under fuzzing: grammar-generated and mutated HCL and JSON files.

Every input, however broken, must end as ``l4plan validate`` exit 0, or exit 1
with diagnostics that name the file — never a traceback, never a hang (each
input has hypothesis' deadline). CI runs a short budget; a long run is

    L4PLAN_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz_loader.py
"""

import json
import os
import shutil

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from l4plan.cli import main
from tests.conftest import EXAMPLES
from tests.test_fmt import L4PLAN_FILES, OTHER_FILES

BUDGET = settings(
    max_examples=int(os.environ.get("L4PLAN_FUZZ_EXAMPLES", "150")),
    deadline=10_000,  # ms: a bound on pathological parsing, not a speed test
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SEEDS = {
    name: (EXAMPLES / path).read_bytes()
    for name, path in {
        "game.l4.hcl": "game/game.l4.hcl",
        "site.l4.hcl": "game/site.l4.hcl",
        "voice.l4.json": "game/voice.l4.json",
        "main.l4.hcl": "quickstart/main.l4.hcl",
    }.items()
}


@pytest.fixture
def validate(tmp_path):
    """Run ``l4plan validate`` on one file ``name`` holding ``data``; its exit code and output."""
    directory = tmp_path / "config"

    def run(name, data):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        (directory / name).write_bytes(data)
        result = CliRunner().invoke(main, ["-C", str(directory), "validate", "--json"], catch_exceptions=False)
        assert result.exit_code in (0, 1), result.output
        report = json.loads(result.stdout)
        assert report["valid"] == (result.exit_code == 0)
        if result.exit_code == 1:
            assert report["diagnostics"], result.output
            assert all(d["summary"] for d in report["diagnostics"])
        return report

    return run


@st.composite
def mutations(draw):
    """A seed file with a few byte-level edits: deleted, repeated, replaced or inserted bytes."""
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        size = draw(st.integers(1, 40))
        edit = draw(st.sampled_from(["delete", "repeat", "replace", "insert"]))
        if edit == "delete":
            del data[at : at + size]
        elif edit == "repeat":
            data[at:at] = data[at : at + size]
        else:
            noise = draw(st.one_of(st.binary(min_size=1, max_size=size), st.sampled_from([b"{", b"}", b"[", b'"', b"=", b"${", b"\n", b"#", b"/*", b"\\", b"\x00", b"\xff"])))
            data[at : at + (size if edit == "replace" else 0)] = noise
    return name, bytes(data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)
BLOCKS = st.sampled_from(["site", "application", "load_balancer", "ip_access_rule", "variable", "provider", "backend", "x"])


@BUDGET
@given(mutations())
def test_mutated_files_end_in_a_diagnostic(validate, case):
    validate(*case)


@BUDGET
@given(st.one_of(L4PLAN_FILES, OTHER_FILES))
def test_generated_hcl_ends_in_a_diagnostic(validate, text):
    validate("main.l4.hcl", text.encode())


@BUDGET
@given(st.dictionaries(BLOCKS, st.one_of(JSON_VALUES, st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=3)), max_size=4))
@example({"load_balancer": True})  # found by this test: a TypeError in validation
def test_generated_json_ends_in_a_diagnostic(validate, document):
    validate("main.l4.json", json.dumps(document).encode())
