"""Fixtures of the live tests: a configuration directory driven by the real CLI.

``l4plan`` runs as a subprocess in the project directory, which is also the
test's working directory (the admin socket path stays relative and short).
The runtime it autostarts is stopped in teardown by the pid in
``.l4plan/runtime.pid``, and every origin the test starts by its Popen.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runtime.runtime_helpers import read_until

TAGGED_ORIGIN = str(Path(__file__).with_name("tagged_origin.py"))
COMMAND_TIMEOUT = 60
SITE = 'site "example.com" {\n  plan = "enterprise"\n}\n'


def application(name, *rules, domain=None):
    """The HCL of an application; each rule is (protocol, edge, origin port, passthrough)."""
    body = "".join(
        f"  rule {{\n"
        f'    protocol              = "{protocol}"\n'
        f'    edge_port             = "{edge}"\n'
        f'    origin                = "127.0.0.1"\n'
        f'    origin_port           = "{origin}"\n'
        f'    client_ip_passthrough = "{passthrough}"\n'
        f"  }}\n"
        for protocol, edge, origin, passthrough in rules
    )
    return f'application "{name}" {{\n  domain = "{domain or name}.example.com"\n{body}}}\n'


def runtime_pid(project_path):
    """The pid of the runtime l4plan started in ``project_path``, while it runs."""
    try:
        pid = int((project_path / ".l4plan" / "runtime.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if is_runtime(pid) else None


def is_runtime(pid):
    """Whether ``pid`` is a running (not a zombie) `l4plan runtime serve`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z" and b"runtime\0serve" in cmdline


class Project:
    """A configuration directory and the l4plan commands run in it."""

    def __init__(self, path):
        self.path = path

    def write(self, *blocks):
        (self.path / "main.l4.hcl").write_text(SITE + "\n".join(blocks))

    def l4plan(self, *args):
        """Run ``python -m l4plan ARGS`` to the end: a CompletedProcess (text)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("L4PLAN_", "NO_COLOR"))}
        return subprocess.run(
            [sys.executable, "-m", "l4plan", *map(str, args)],
            cwd=self.path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )

    def state_bytes(self):
        return (self.path / "l4plan.state.json").read_bytes()

    def stop_runtime(self):
        """SIGTERM, then SIGKILL after a while, to the runtime started here (by pid)."""
        pid = runtime_pid(self.path)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while runtime_pid(self.path) == pid and time.monotonic() < deadline:
            time.sleep(0.05)
        if runtime_pid(self.path) == pid:
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    project = Project(tmp_path)
    yield project
    project.stop_runtime()


@pytest.fixture
def ready_process(tmp_path):
    """Start a command that prints "ready" when it serves; killed by its Popen in teardown."""
    started = []

    def start(command, log_name, pass_fds=(), env=None):
        with open(tmp_path / log_name, "wb") as stderr:
            proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, bufsize=0, pass_fds=pass_fds,
                env=None if env is None else {**os.environ, **env},
            )
        started.append(proc)
        read_until(proc, b"ready")
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.communicate(timeout=20)


@pytest.fixture
def tagged_origin(ready_process):
    """Start tagged_origin.py on PORTS."""
    return lambda *ports: ready_process([sys.executable, TAGGED_ORIGIN, *map(str, ports)], "origin.stderr")
