"""The fast HCL reader against its oracle, python-hcl2: whenever it reads a
file, python-hcl2 reads the same values and positions from it; whatever it
does not read goes to python-hcl2, so every diagnostic stays python-hcl2's."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l4plan import hcl2_tree
from l4plan.config import hcl_fast, hcl_file
from tests.test_fmt import L4PLAN_FILES, OTHER_FILES
from tests.test_fuzz_loader import mutations

ORACLE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def oracle(text):
    """``(items, values)`` as python-hcl2 reads them, or None when it refuses the text."""
    try:
        tree = hcl2_tree.parse(text)
        return hcl_file._items(hcl_file._body(tree)), hcl2_tree.values(tree, hcl_file._OPTIONS)
    except (hcl2_tree.UnexpectedInput, hcl2_tree.LarkError):
        return None


def agrees(text):
    """When the fast reader reads ``text``, python-hcl2 gives the same; True if it read it."""
    try:
        fast = hcl_fast.parse(text)
    except hcl_fast.Unsupported:
        return False
    assert fast == oracle(text)
    return True


@ORACLE
@given(L4PLAN_FILES)
def test_generated_configs_read_as_python_hcl2_reads_them(text):
    agrees(text)


@ORACLE
@given(OTHER_FILES)
def test_other_generated_hcl_is_read_alike_or_left_to_python_hcl2(text):
    agrees(text)


@ORACLE
@given(mutations())
def test_mutated_examples_are_read_alike_or_left_to_python_hcl2(case):
    name, data = case
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return
    if name.endswith(".hcl"):
        agrees(text)


@ORACLE
@given(st.text(alphabet='abc_."=#/*\\${}[],:-01 \n\t', max_size=60))
def test_token_soup_is_read_alike_or_left_to_python_hcl2(text):
    agrees(text)


SUBSET = [
    'site "example.com" {\n  plan = "enterprise" # hash\n  // slashes\n  /* block */\n}\n',
    'a = "x\\"y\\\\z\\n\\t\\u00e9"\nb = "${var.x}-$${y}"\nc = var.x\nd = -1\ne = 1.50\nf = 017000\n',
    'a = [1, "b", [], {}, true, null,]\nb = {\n  k = 1\n  "q": 2\n}\nc = { k = 1, m = 2 }\n',
    'x "l" m {\n  y {}\n  y {\n    b = 2\n  }\n}\n\n\n',
    'a = 1\na = 2\n',  # redefined: read, then reported by hcl_file
]


@pytest.mark.parametrize("text", SUBSET)
def test_the_subset_configurations_use_is_read_fast(text):
    assert agrees(text)


@pytest.mark.parametrize(
    "text",
    ['a = upper("x")\n', 'a = 1 + 2\n', 'a = [for x in y : x]\n', 'a = "${var.x + 1}"\n', 'a = 1e3\n',
     'a = <<EOT\nx\nEOT\n', 'x { a = 1 }\n', 'a = "%{if true}x%{endif}"\n', "a = /* c\n */ 1\n", 'a = 1\na {}\n'],
)
def test_what_it_does_not_cover_goes_to_python_hcl2(text):
    with pytest.raises(hcl_fast.Unsupported):
        hcl_fast.parse(text)
