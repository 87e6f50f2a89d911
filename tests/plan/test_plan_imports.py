"""DESIGN §1 import arrows for the plan engine and the renderers."""

import ast
from importlib.util import find_spec
from pathlib import Path

import pytest

ENGINE = ["l4plan.diff", "l4plan.plan", "l4plan.planfile", "l4plan.provider_registry"]
RENDERERS = ["l4plan.render.text", "l4plan.render.json_renderer", "l4plan.render.markdown"]
FORBIDDEN_TO_ENGINE = ("l4plan.cli", "l4plan.render", "l4plan.runtime", "l4plan.providers.")


def _imports(module):
    return _file_imports(Path(find_spec(module).origin))


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


def test_deepdiff_has_one_home():
    """Of the shipped code only l4plan/attribute_paths.py uses deepdiff, so its quirks stay in one place."""
    root = Path(find_spec("l4plan").origin).parent.parent
    users = sorted(
        str(path.relative_to(root))
        for folder in ("l4plan", "providers", "runtime")
        for path in (root / folder).rglob("*.py")
        if "deepdiff" in {name.partition(".")[0] for name in _file_imports(path)}
    )
    assert users == ["l4plan/attribute_paths.py"]


def _file_imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
