"""Every backend test runs on local, pg and etcd, with real servers."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from l4plan.model import Settings
from l4plan.state import open_backend
from tests.servers import Etcd, Postgres

ROOT = str(Path(__file__).resolve().parents[2])
KINDS = ("local", "pg", "etcd")
_names = itertools.count()


@pytest.fixture(scope="session")
def postgres():
    server = Postgres()
    yield server
    server.close()


@pytest.fixture(scope="session")
def etcd_server():
    server = Etcd()
    yield server
    server.close()


def hcl_value(value):
    if isinstance(value, list):
        return "[" + ", ".join(hcl_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"'


class Backends:
    """Settings of a fresh state on one kind of backend, in ``directory``."""

    def __init__(self, kind, request, directory):
        self.kind, self.request, self.directory = kind, request, directory
        self.opened = []

    def settings(self, **extra):
        name = f"t{os.getpid()}x{next(_names)}"
        if self.kind == "local":
            attributes = {"path": f"{name}.state.json"}
        elif self.kind == "pg":
            attributes = {"conn_str": self.request.getfixturevalue("postgres").url,
                          "name": name, "lock_ttl": "1s"}
        else:
            attributes = {"endpoints": self.request.getfixturevalue("etcd_server").endpoints,
                          "prefix": "/l4plan/test/", "name": name, "lock_ttl": "1s"}
        return Settings(self.kind, {**attributes, **extra})

    def open(self, settings=None):
        backend = open_backend(settings or self.settings(), self.directory)
        self.opened.append(backend)
        return backend

    def block(self, settings):
        body = "\n".join(f"  {k} = {hcl_value(v)}" for k, v in settings.attributes.items())
        return f'backend "{settings.kind}" {{\n{body}\n}}\n'


@pytest.fixture(params=KINDS)
def backends(request, tmp_path):
    made = Backends(request.param, request, tmp_path)
    yield made
    for backend in made.opened:
        backend.close()


@pytest.fixture
def script(tmp_path):
    """Run Python code in a subprocess that opens the backend of SETTINGS."""
    started = []

    def start(code, settings, *args):
        process = subprocess.Popen(
            [sys.executable, "-c", PRELUDE + code, settings.kind, repr(settings.attributes), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ROOT},
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for pipe in (process.stdin, process.stdout, process.stderr):
            pipe.close()


PRELUDE = """
import ast, sys
from l4plan.model import Settings
from l4plan.state import Resource, open_backend
backend = open_backend(Settings(sys.argv[1], ast.literal_eval(sys.argv[2])), ".")
"""
