"""The README's quick start, as a user runs it: plan, apply, traffic, stop.

The example as shipped is copied, with its ports (edge 7000, origin 17000)
changed to free ones, so the test runs beside a quick start still running.
"""

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES, shipped_copy
from tests.runtime.runtime_helpers import free_ports

pytestmark = pytest.mark.processes


def _l4plan(workdir, *args):
    return subprocess.run(
        [sys.executable, "-m", "l4plan", "-C", str(workdir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _wait_for_origin(process, port):
    line = process.stdout.readline()
    assert f"echo origin on 127.0.0.1:{port}" in line, line


def _stop_runtime(workdir):
    """End the autostarted runtime by its pid file if the test did not."""
    pid_file = workdir / ".l4plan" / "runtime.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_quick_start_plans_applies_and_carries_traffic(tmp_path):
    """plan, apply --auto-approve, then TCP and UDP echo through the edge port, then runtime stop."""
    workdir = shipped_copy(EXAMPLES / "quickstart", tmp_path / "quickstart")
    edge, origin_port = free_ports(2)
    config = workdir / "main.l4.hcl"
    text = config.read_text()
    config.write_text(text.replace('"17000"', f'"{origin_port}"').replace('"7000"', f'"{edge}"'))
    origin = subprocess.Popen(
        [sys.executable, str(workdir / "echo_origin.py"), str(origin_port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_origin(origin, origin_port)
        planned = _l4plan(workdir, "plan", "--detailed-exitcode")
        assert planned.returncode == 2, planned.stderr
        assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.stdout
        assert "started a local runtime" in planned.stderr
        applied = _l4plan(workdir, "apply", "--auto-approve")
        assert applied.returncode == 0, applied.stderr
        sent = subprocess.run(
            [sys.executable, str(workdir / "send.py"), "hello", str(edge)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert sent.stdout.splitlines() == ["tcp: hello", "udp: hello"], sent.stderr
        assert _l4plan(workdir, "plan", "--detailed-exitcode").returncode == 0
        stopped = _l4plan(workdir, "runtime", "stop")
        assert stopped.returncode == 0 and "Stopped the runtime" in stopped.stdout
    finally:
        _stop_runtime(workdir)
        origin.kill()
        origin.wait(timeout=10)
        origin.stdout.close()
