"""DESIGN §1 import arrows for the plan engine and the renderers."""

import ast
from importlib.util import find_spec
from pathlib import Path

import pytest

ENGINE = ["l4plan.diff", "l4plan.plan", "l4plan.planfile", "l4plan.provider_registry"]
RENDERERS = ["l4plan.render.text", "l4plan.render.json_renderer", "l4plan.render.markdown"]
FORBIDDEN_TO_ENGINE = ("l4plan.cli", "l4plan.render", "l4plan.runtime", "l4plan.providers.")


def _imports(module):
    tree = ast.parse(Path(find_spec(module).origin).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module


@pytest.mark.parametrize("module", ENGINE)
def test_engine_imports_no_cli_renderer_runtime_or_concrete_provider(module):
    """The engine reaches providers only through l4plan.providers.base."""
    imported = [
        name
        for name in _imports(module)
        if name.startswith(FORBIDDEN_TO_ENGINE) and name != "l4plan.providers.base"
    ]
    assert imported == []


@pytest.mark.parametrize("module", RENDERERS)
def test_renderers_import_nothing_but_renderers(module):
    """Renderers take a plan value: they import no engine, state or provider code."""
    imported = [
        name
        for name in _imports(module)
        if name.startswith("l4plan") and not name.startswith("l4plan.render")
    ]
    assert imported == []
