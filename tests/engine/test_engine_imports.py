"""DESIGN §1 import arrows, over every module of each part."""

import ast
import pkgutil
from importlib.util import find_spec
from pathlib import Path

import pytest

import l4plan
import l4plan.cli
import l4plan.providers
import l4plan.render

# `python -m l4plan` is the CLI's entry point, not engine code.
OUTSIDE_ENGINE = ("l4plan.__main__", "l4plan.cli", "l4plan.render", "l4plan.runtime", "l4plan.providers", "l4plan.schemas")


def modules(package):
    """Every module under ``package`` (a package object), by dotted name."""
    found = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        found.append(info.name)
    return found


ENGINE = [m for m in modules(l4plan) if not m.startswith(OUTSIDE_ENGINE)]
CLI = modules(l4plan.cli)
RENDERERS = modules(l4plan.render)
PROVIDERS = modules(l4plan.providers)


def tree_of(module):
    return ast.parse(Path(find_spec(module).origin).read_text())


def imported_modules(module):
    for node in ast.walk(tree_of(module)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module
            if node.module in ("l4plan", "l4plan.cli"):  # from l4plan import apply
                yield from (f"{node.module}.{alias.name}" for alias in node.names)


def calls_print(module):
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
        for node in ast.walk(tree_of(module))
    )


def test_every_engine_module_is_checked():
    assert {"l4plan.apply", "l4plan.validate", "l4plan.model", "l4plan.config.loader", "l4plan.state.pg"} <= set(ENGINE)


@pytest.mark.parametrize("module", ENGINE)
def test_the_engine_imports_no_cli_renderer_runtime_or_concrete_provider(module):
    """The engine reaches providers only through the registry and the base interface."""
    imported = [name for name in imported_modules(module) if name.startswith(OUTSIDE_ENGINE)]
    assert [name for name in imported if name != "l4plan.providers.base"] == []


def test_apply_finds_providers_through_the_registry():
    assert "l4plan.provider_registry" in list(imported_modules("l4plan.apply"))


@pytest.mark.parametrize("module", RENDERERS)
def test_renderers_take_a_plan_and_nothing_else(module):
    """No click, no state, no provider, no engine module: a plan value in, text out."""
    allowed = {"json", "re", "jinja2", "l4plan.render.text"}
    assert set(imported_modules(module)) <= allowed


@pytest.mark.parametrize("module", [m for m in CLI if m != "l4plan.cli"])
def test_command_modules_share_only_the_options_module(module):
    siblings = [name for name in imported_modules(module) if name.startswith("l4plan.cli")]
    assert set(siblings) <= {"l4plan.cli.options"}


@pytest.mark.parametrize("module", PROVIDERS)
def test_providers_speak_to_the_runtime_over_http_only(module):
    assert [name for name in imported_modules(module) if name.startswith("l4plan.runtime")] == []


@pytest.mark.parametrize("module", ENGINE + PROVIDERS + RENDERERS)
def test_only_the_cli_prints(module):
    """The engine and providers return what the CLI shows (providers through
    their progress hook); renderers write to the stream they are given."""
    assert not calls_print(module)
