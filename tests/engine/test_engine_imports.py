"""DESIGN §1 import arrows for the apply engine."""

import ast
from importlib.util import find_spec
from pathlib import Path

FORBIDDEN = ("l4plan.cli", "l4plan.render", "l4plan.runtime", "l4plan.providers.")


def imported_modules(module):
    tree = ast.parse(Path(find_spec(module).origin).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module


def test_engine_imports_no_cli_renderer_runtime_or_concrete_provider():
    """l4plan.apply reaches providers only through the registry and the base interface."""
    imported = list(imported_modules("l4plan.apply"))
    assert "l4plan.provider_registry" in imported
    assert [
        name
        for name in imported
        if name.startswith(FORBIDDEN) and name != "l4plan.providers.base"
    ] == []
