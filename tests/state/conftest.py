"""Fixtures for the state tests: a state path and always-reaped subprocesses."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import end_all

#: Scripts run with ``-c`` import ``tests.state_files`` from the checkout.
ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture
def state_path(tmp_path):
    return tmp_path / "l4plan.state.json"


@pytest.fixture
def spawn():
    """Start a Python subprocess; every one is killed and reaped after the test."""
    started = []

    def start(code, *args, **kwargs):
        kwargs.setdefault("stdin", subprocess.PIPE)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("env", {**os.environ, "PYTHONPATH": ROOT})
        process = subprocess.Popen(
            [sys.executable, "-c", code, *args], text=True, **kwargs
        )
        started.append(process)
        return process

    yield start
    end_all(started)
