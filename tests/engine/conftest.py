"""Fixtures of the engine tests: a configuration that uses the fake provider.

The fake provider is a tiny distribution in ``fakeprovider/`` (a module and a
``dist-info`` with its entry point), put on the path so l4plan discovers it
the real way, in this process and in subprocesses alike.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from engine_helpers import SITE, SUBPROCESS_TIMEOUT

from l4plan.cli import main
from tests.processes import end_all

FAKE_DIST = Path(__file__).parent / "fakeprovider"
PROVIDER = 'provider "fake" {\n  remote = "remote.json"\n}\n'


@pytest.fixture
def fake_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKE_DIST))


@pytest.fixture
def project(tmp_path, monkeypatch, fake_on_path):
    """A configuration directory (the working directory) using the fake provider.

    ``project.write(*apps)`` rewrites its applications; ``state()`` and
    ``remote()`` read the state file and the fake runtime.
    """
    monkeypatch.chdir(tmp_path)
    for name in ("L4PLAN_FAKE_FAIL", "L4PLAN_FAKE_HOLD", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    return Project(tmp_path)


class Project:
    def __init__(self, path):
        self.path = path
        (path / "site.l4.hcl").write_text(SITE + PROVIDER)

    def write(self, *apps):
        (self.path / "apps.l4.hcl").write_text("\n".join(apps))

    def state(self):
        return json.loads((self.path / "l4plan.state.json").read_text())

    def state_bytes(self):
        state = self.path / "l4plan.state.json"
        return state.read_bytes() if state.exists() else None

    def remote(self):
        return json.loads((self.path / "remote.json").read_text())["applications"]

    def edit_remote(self, change):
        """Change the fake runtime behind l4plan's back (drift)."""
        document = json.loads((self.path / "remote.json").read_text())
        change(document["applications"])
        (self.path / "remote.json").write_text(json.dumps(document))


@pytest.fixture
def l4plan():
    """Run ``l4plan ARGS`` in-process (stdin is not a terminal)."""

    def run(*args, input=None):
        return CliRunner().invoke(main, [str(a) for a in args], input=input)

    return run


def environment(**extra):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("L4PLAN_", "NO_COLOR"))
    }
    path = [str(FAKE_DIST), env.get("PYTHONPATH", "")]
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in path if p), **extra}


@pytest.fixture
def spawn(project):
    """Start ``python -m l4plan ARGS`` in the project; every process is ended after."""
    started = []

    def start(*args, env=None, **popen):
        process = subprocess.Popen(
            [sys.executable, "-m", "l4plan", *map(str, args)],
            cwd=project.path,
            env=environment(**(env or {})),
            **{
                "stdout": subprocess.PIPE,
                "stderr": subprocess.PIPE,
                "text": True,
                **popen,
            },
        )
        started.append(process)
        return process

    yield start
    end_all(started)


@pytest.fixture
def run(spawn):
    """Run ``python -m l4plan ARGS`` to the end: ``(exit code, stdout, stderr)``."""

    def finish(*args, env=None, stdin=subprocess.DEVNULL):
        process = spawn(*args, env=env, stdin=stdin)
        out, err = process.communicate(timeout=SUBPROCESS_TIMEOUT)
        return process.returncode, out, err

    return finish
