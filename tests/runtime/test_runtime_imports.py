"""DESIGN §1: a runtime node needs only l4plan.runtime and Twisted."""

import subprocess
import sys

import pytest

CHECK = """
import pkgutil, sys
import l4plan.runtime
for module in pkgutil.iter_modules(l4plan.runtime.__path__):
    __import__("l4plan.runtime." + module.name)
loaded = sorted(m for m in sys.modules if m.startswith("l4plan"))
print("\\n".join(loaded))
"""

ALLOWED = ("l4plan.runtime", "l4plan.schemas")


@pytest.mark.processes
def test_runtime_imports_no_engine_provider_or_cli():
    """Importing every runtime module loads no engine, provider or CLI module."""
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = result.stdout.split()
    assert "l4plan.runtime.serve" in loaded
    assert [m for m in loaded if m != "l4plan" and not m.startswith(ALLOWED)] == []


def test_serve_options_default_to_the_runtime_settings():
    """`runtime serve` shows the runtime's own defaults, one home for each."""
    from dataclasses import fields

    from l4plan.cli.runtime_commands import serve
    from l4plan.runtime.settings import Settings

    defaults = {f.name: f.default for f in fields(Settings)}
    shown = {p.name: p.default for p in serve.params if p.name in defaults and p.show_default}
    assert len(shown) >= 15
    assert shown == {name: defaults[name] for name in shown}


@pytest.mark.processes
def test_the_cli_reads_serve_settings_without_twisted():
    """`l4plan --help` and every engine command start without loading Twisted."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys, l4plan.cli; print(any(m.startswith('twisted') for m in sys.modules))"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    assert result.stdout.strip() == "False"
