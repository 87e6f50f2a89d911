"""The door to python-hcl2's tree checks the installed release once."""

import pytest

from l4plan import hcl2_tree


@pytest.fixture
def unchecked(monkeypatch):
    hcl2_tree._check.cache_clear()
    yield monkeypatch
    hcl2_tree._check.cache_clear()


def test_this_python_hcl2_builds_the_tree_l4plan_reads(unchecked):
    assert hcl2_tree.parse('a = 1\n').data == "start"


def test_a_changed_tree_is_one_clear_error(unchecked, write_config, cli):
    unchecked.setattr(hcl2_tree, "_RULES", (*hcl2_tree._RULES, "renamed_rule"))
    # a one-line block: outside the fast reader's subset, so python-hcl2 reads it
    write_config({"main.l4.hcl": 'site "example.com" { plan = "enterprise" }\n'})
    result = cli("validate")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: the installed python-hcl2 builds a tree without renamed_rule: "
        f"install a release l4plan is tested with ({hcl2_tree.TESTED})"
    )
