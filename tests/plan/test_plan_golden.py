"""Golden tests: the text, JSON and Markdown plans of each scenario, exactly.

To regenerate after an intended change of output, run
``L4PLAN_UPDATE_GOLDEN=1 python -m pytest tests/plan/test_plan_golden.py``
and review the diff of tests/plan/golden/ before committing it.
"""

import io
import json
import os
from importlib.resources import files
from pathlib import Path

import click
import jsonschema
import pytest
from plan_scenarios import SCENARIOS

from l4plan.render.json_renderer import JsonRenderer
from l4plan.render.markdown import MarkdownRenderer
from l4plan.render.text import TextRenderer

GOLDEN = Path(__file__).parent / "golden"
RENDERERS = {"txt": TextRenderer(), "json": JsonRenderer(), "md": MarkdownRenderer()}


def _rendered(renderer, plan):
    stream = io.StringIO()
    renderer.render(plan, stream)
    return stream.getvalue()


@pytest.mark.parametrize("suffix", sorted(RENDERERS))
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_output_matches_golden_file(scenario, suffix):
    """Each renderer's output for each scenario is exactly the reviewed golden file."""
    output = _rendered(RENDERERS[suffix], SCENARIOS[scenario]())
    golden = GOLDEN / f"{scenario}.{suffix}"
    if os.environ.get("L4PLAN_UPDATE_GOLDEN"):
        golden.write_text(output, encoding="utf-8")
    assert output == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_json_output_validates_against_schema(scenario):
    """The JSON plan of every scenario is valid against schemas/plan.schema.json."""
    schema = json.loads(
        files("l4plan.schemas").joinpath("plan.schema.json").read_text()
    )
    document = json.loads(_rendered(JsonRenderer(), SCENARIOS[scenario]()))
    jsonschema.Draft202012Validator(schema).validate(document)


def test_schema_is_valid_2020_12():
    """The plan schema itself is a valid JSON Schema 2020-12 document."""
    schema = json.loads(
        files("l4plan.schemas").joinpath("plan.schema.json").read_text()
    )
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_renderers_accept_the_plan_or_its_dict(scenario):
    """A renderer given plan.to_dict() writes what it writes for the plan itself."""
    plan = SCENARIOS[scenario]()
    for renderer in RENDERERS.values():
        assert _rendered(renderer, plan.to_dict()) == _rendered(renderer, plan)


def test_colour_only_styles_the_plain_text():
    """With colour on, the text differs only by ANSI styles from the plain golden."""
    plan = SCENARIOS["mixed"]()
    coloured = _rendered(TextRenderer(color=True), plan)
    assert "\x1b[" in coloured
    assert click.unstyle(coloured) == (GOLDEN / "mixed.txt").read_text(encoding="utf-8")


def test_colour_marks_glyphs_by_action():
    """Creates are green, updates yellow, destroys red, as Terraform colours them."""
    coloured = _rendered(TextRenderer(color=True), SCENARIOS["mixed"]())
    assert (
        click.style("+", fg="green") + ' ip_access_rule "block-scanners" {' in coloured
    )
    assert click.style("~", fg="yellow") + " algorithm" in coloured
    replace = click.style("-", fg="red") + "/" + click.style("+", fg="green")
    assert replace + ' application "dns" {' in coloured
