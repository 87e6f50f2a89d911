"""schemas/admin.openapi.json describes the admin API exactly: schemathesis,
positive and negative data, every check, against a live runtime."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from runtime_helpers import free_ports, make_document, make_rule

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "openapi-token-0123456789"


def schemathesis_command():
    return shutil.which("st") or str(Path(sys.executable).with_name("st"))


def test_the_admin_api_keeps_to_its_openapi_description(start_runtime, tmp_path):
    port, edge, origin = free_ports(3)
    (tmp_path / "token").write_text(TOKEN)
    # Generated documents are served on 127.0.0.9, where no other test listens;
    # the hooks keep their origins on loopback.
    start_runtime(make_document([make_rule(str(edge), [(edge, [origin])])]), "--admin", f"tcp:127.0.0.1:{port}", "--token-file", tmp_path / "token",
                  "--bind", "127.0.0.9")
    done = subprocess.run(
        [schemathesis_command(), "--config-file", ROOT / "tests" / "runtime" / "schemathesis.toml", "run",
         ROOT / "schemas" / "admin.openapi.json", "--url", f"http://127.0.0.1:{port}",
         "-H", f"Authorization: Bearer {TOKEN}", "--mode", "all", "--max-examples", "30", "--seed", "20261203"],
        cwd=ROOT, env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.runtime.schemathesis_hooks"},
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout
