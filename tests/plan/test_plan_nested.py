"""Nested values in the plan: paths in the JSON form, blocks and elements in text and Markdown.

Each case changes one load balancer, access rule or site and gives the text
block Terraform would show for it and the ``attribute_changes`` of its JSON.
"""

import dataclasses
import io
import json
from importlib.resources import files

import jsonschema
import pytest
from plan_scenarios import SCANNERS, SITE, resources

from l4plan.diff import diff
from l4plan.model import HealthCheck, LoadBalancer, Origin
from l4plan.render.json_renderer import JsonRenderer
from l4plan.render.markdown import MarkdownRenderer
from l4plan.render.text import TextRenderer

POOL = LoadBalancer(
    name="pool",
    algorithm="round_robin",
    origins=(Origin("127.0.0.1"), Origin("127.0.0.2"), Origin("127.0.0.3")),
    health_check=HealthCheck(),
)
CIDRS = ("198.51.100.0/24", "203.0.113.0/24")
DOMAINS = ("www.example.com", "api.example.com")
change = dataclasses.replace

WEIGHT_CHANGED = (
    change(POOL, origins=(Origin("127.0.0.1"), Origin("127.0.0.2", 5), Origin("127.0.0.3"))),
    POOL,
    """\
  ~ load_balancer "pool" {
        # (3 unchanged attributes hidden)
      ~ origin {
          ~ weight  = 1 -> 5
            # (1 unchanged attribute hidden)
        }
        # (2 unchanged origin blocks hidden)
    }""",
    [{"path": ["origins", 1, "weight"], "before": 1, "after": 5}],
)

CASES = {
    "one origin's weight among three": WEIGHT_CHANGED,
    "an origin added": (
        change(POOL, origins=(*POOL.origins, Origin("127.0.0.4", 3))),
        POOL,
        """\
  ~ load_balancer "pool" {
        # (3 unchanged attributes hidden)
      + origin {
          + address = "127.0.0.4"
          + weight  = 3
        }
        # (3 unchanged origin blocks hidden)
    }""",
        [{"path": ["origins", 3], "before": None, "after": {"address": "127.0.0.4", "weight": 3}}],
    ),
    "an origin removed from the middle": (
        change(POOL, origins=POOL.origins[::2]),
        POOL,
        """\
  ~ load_balancer "pool" {
        # (3 unchanged attributes hidden)
      - origin {
          - address = "127.0.0.2" -> null
          - weight  = 1 -> null
        }
        # (2 unchanged origin blocks hidden)
    }""",
        [{"path": ["origins", 1], "before": {"address": "127.0.0.2", "weight": 1}, "after": None}],
    ),
    "a health_check attribute": (
        change(POOL, health_check=HealthCheck(timeout=3)),
        POOL,
        """\
  ~ load_balancer "pool" {
        # (3 unchanged attributes hidden)
      ~ health_check {
          ~ timeout             = 2 -> 3
            # (3 unchanged attributes hidden)
        }
    }""",
        [{"path": ["health_check", "timeout"], "before": 2, "after": 3}],
    ),
    "a CIDR added to sources": (
        change(SCANNERS, sources=CIDRS),
        SCANNERS,
        """\
  ~ ip_access_rule "block-scanners" {
      ~ sources = [
          + "203.0.113.0/24",
            # (1 unchanged element hidden)
        ]
        # (3 unchanged attributes hidden)
    }""",
        [{"path": ["sources", 1], "before": None, "after": "203.0.113.0/24"}],
    ),
    "a CIDR removed from sources": (
        change(SCANNERS, sources=CIDRS[1:]),
        change(SCANNERS, sources=CIDRS),
        """\
  ~ ip_access_rule "block-scanners" {
      ~ sources = [
          - "198.51.100.0/24",
            # (1 unchanged element hidden)
        ]
        # (3 unchanged attributes hidden)
    }""",
        [{"path": ["sources", 0], "before": "198.51.100.0/24", "after": None}],
    ),
    "a domain of a list changed": (
        change(SITE, layer7_domains=("www.example.com", "app.example.com")),
        change(SITE, layer7_domains=DOMAINS),
        """\
  ~ site "example.com" {
      ~ layer7_domains = [
          - "api.example.com",
          + "app.example.com",
            # (1 unchanged element hidden)
        ]
        # (7 unchanged attributes hidden)
    }""",
        [{"path": ["layer7_domains", 1], "before": "api.example.com", "after": "app.example.com"}],
    ),
}


def _plan(desired, current):
    return diff(resources(desired), resources(current))


def _rendered(renderer, plan):
    stream = io.StringIO()
    renderer.render(plan, stream)
    return stream.getvalue()


@pytest.mark.parametrize("case", CASES)
def test_text_shows_nested_blocks_and_elements(case):
    """Only what changed, in blocks and elements, and how many others are hidden."""
    desired, current, block, _ = CASES[case]
    assert f"will be updated in-place\n{block}\n\nPlan:" in _rendered(TextRenderer(), _plan(desired, current))


@pytest.mark.parametrize("case", CASES)
def test_json_carries_the_paths(case):
    """attribute_changes gives each difference's path, before and after; the schema accepts it."""
    desired, current, _, expected = CASES[case]
    document = json.loads(_rendered(JsonRenderer(), _plan(desired, current)))
    schema = json.loads(files("l4plan.schemas").joinpath("plan.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    (changed,) = [c for c in document["changes"] if c["action"] == "update"]
    assert changed["attribute_changes"] == expected
    assert changed["changed_attributes"] == [expected[0]["path"][0]]


@pytest.mark.parametrize("case", CASES)
def test_text_is_rendered_from_the_json_form(case):
    """The JSON document alone gives the same text: nothing is read from elsewhere."""
    plan = _plan(*CASES[case][:2])
    document = json.loads(_rendered(JsonRenderer(), plan))
    assert _rendered(TextRenderer(), document) == _rendered(TextRenderer(), plan)


def test_markdown_moves_nested_glyphs_to_the_first_column():
    """GitHub colours the diff lines of nested blocks and elements too."""
    weight = _rendered(MarkdownRenderer(), _plan(*WEIGHT_CHANGED[:2])).splitlines()
    assert "!       origin {" in weight
    assert "!           weight  = 1 -> 5" in weight
    assert "            # (1 unchanged attribute hidden)" in weight
    cidr = _rendered(MarkdownRenderer(), _plan(*CASES["a CIDR added to sources"][:2])).splitlines()
    assert "!       sources = [" in cidr
    assert '+           "203.0.113.0/24",' in cidr


def test_created_and_destroyed_objects_show_their_blocks_whole():
    """A new load balancer shows each origin as a block, a destroyed one each with -> null."""
    created = _rendered(TextRenderer(), diff(resources(POOL), {}))
    assert '      + origin {\n          + address = "127.0.0.1"\n          + weight  = 1\n        }\n' in created
    destroyed = _rendered(TextRenderer(), diff({}, resources(SCANNERS)))
    assert '      - sources  = [\n          - "198.51.100.0/24",\n        ] -> null\n' in destroyed


def test_a_removed_health_check_is_a_destroyed_block():
    """health_check = null is the block going away, not a line of JSON."""
    text = _rendered(TextRenderer(), _plan(change(POOL, health_check=None), POOL))
    assert "      - health_check {\n          - healthy_threshold   = 2 -> null\n" in text
