"""DESIGN §1: a runtime node needs only l4plan.runtime and Twisted."""

import subprocess
import sys

CHECK = """
import pkgutil, sys
import l4plan.runtime
for module in pkgutil.iter_modules(l4plan.runtime.__path__):
    __import__("l4plan.runtime." + module.name)
loaded = sorted(m for m in sys.modules if m.startswith("l4plan"))
print("\\n".join(loaded))
"""

ALLOWED = ("l4plan.runtime", "l4plan.schemas")


def test_runtime_imports_no_engine_provider_or_cli():
    """Importing every runtime module loads no engine, provider or CLI module."""
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = result.stdout.split()
    assert "l4plan.runtime.serve" in loaded
    assert [m for m in loaded if m != "l4plan" and not m.startswith(ALLOWED)] == []
