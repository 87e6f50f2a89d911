"""The README's quick start, as a user runs it: plan, apply, traffic, stop.

It uses the example's own fixed ports (edge 7000, origin 17000), so it skips,
saying why, when another program holds one of them.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES

# What running the quick start in examples/quickstart leaves there (git ignores
# it): the example is copied as shipped, or its state would make plan find no changes.
LEFT_BY_A_RUN = shutil.ignore_patterns(".l4plan", "l4plan.state.json*", "__pycache__")


def _free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _l4plan(workdir, *args):
    return subprocess.run(
        [sys.executable, "-m", "l4plan", "-C", str(workdir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _wait_for_origin(process):
    line = process.stdout.readline()
    assert "echo origin on 127.0.0.1:17000" in line, line


def _stop_runtime(workdir):
    """End the autostarted runtime by its pid file if the test did not."""
    pid_file = workdir / ".l4plan" / "runtime.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_quick_start_plans_applies_and_carries_traffic(tmp_path):
    """plan, apply --auto-approve, then TCP and UDP echo through edge port 7000, then runtime stop."""
    if not (_free(7000) and _free(17000)):
        pytest.skip("port 7000 or 17000 is in use on 127.0.0.1 by another program")
    workdir = shutil.copytree(
        EXAMPLES / "quickstart", tmp_path / "quickstart", ignore=LEFT_BY_A_RUN
    )
    origin = subprocess.Popen(
        [sys.executable, str(workdir / "echo_origin.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        _wait_for_origin(origin)
        planned = _l4plan(workdir, "plan", "--detailed-exitcode")
        assert planned.returncode == 2, planned.stderr
        assert "Plan: 2 to add, 0 to change, 0 to destroy." in planned.stdout
        assert "started a local runtime" in planned.stderr
        applied = _l4plan(workdir, "apply", "--auto-approve")
        assert applied.returncode == 0, applied.stderr
        sent = subprocess.run(
            [sys.executable, str(workdir / "send.py"), "hello"],
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
