"""fmt on every example: idempotent, and the model is the same before and after."""


import pytest

from l4plan.fmt import format_hcl
from l4plan.validate import load_config
from tests.conftest import EXAMPLES, shipped_copy

VALID = [EXAMPLES / "quickstart", EXAMPLES / "game"]
HCL_FILES = sorted(p for p in EXAMPLES.rglob("*.l4.hcl") if "malformed" not in p.parent.name)


@pytest.mark.parametrize("path", HCL_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_fmt_is_idempotent_on_every_example(path):
    """Formatting a formatted file changes nothing."""
    once = format_hcl(path.read_text(), str(path))
    assert format_hcl(once, str(path)) == once


@pytest.mark.parametrize("example", VALID, ids=lambda p: p.name)
def test_fmt_never_changes_the_model(example, tmp_path):
    """Loading an example before and after formatting gives the same model."""
    copy = shipped_copy(example, tmp_path / example.name)
    for path in copy.glob("*.l4.hcl"):
        path.write_text(format_hcl(path.read_text(), str(path)))
    assert load_config(copy) == load_config(example)


@pytest.mark.parametrize("path", HCL_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_examples_are_already_canonical(path):
    """The shipped examples are written the way fmt writes them."""
    assert format_hcl(path.read_text(), str(path)) == path.read_text()
