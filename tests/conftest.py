"""Fixtures shared by the whole suite."""

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from l4plan.cli import main
from l4plan.model import Settings
from l4plan.state import open_backend
from tests.processes import end_all, started
from tests.servers import Etcd, Postgres

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def shipped_copy(source, destination):
    """Copy the files git tracks under ``source`` to ``destination``: what a run
    left there (a live runtime socket, state) stays behind. Outside a git
    checkout (an unpacked sdist) everything is shipped, so all is copied."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--", str(source)],
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        return Path(shutil.copytree(source, destination))
    for name in filter(None, listed.stdout.decode().split("\0")):
        target = destination / (ROOT / name).relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return Path(destination)


@pytest.fixture
def cli():
    """Run ``l4plan ARGS`` in-process; the working directory is restored after."""

    def run(*args, input=None):
        cwd = os.getcwd()
        try:
            return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)
        finally:
            os.chdir(cwd)

    return run


@pytest.fixture
def write_config(tmp_path, monkeypatch):
    """Write ``{filename: text}`` into a fresh configuration directory, made the working directory."""
    monkeypatch.chdir(tmp_path)

    def write(files):
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        return tmp_path

    return write


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip is a failure: CI installs every server and parser
    the tests use, so a test that skips there did not test what it claims."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where nothing may skip: {report.longrepr}"


#: Fixtures that start a server or a process: a test using one is marked processes.
_PROCESS_FIXTURES = {"postgres", "etcd_server", "script"}


def pytest_collection_modifyitems(items):
    for item in items:
        params = getattr(item, "callspec", None)
        kind = params.params.get("backends") if params else None
        if _PROCESS_FIXTURES & set(item.fixturenames) or kind in ("pg", "etcd"):
            item.add_marker(pytest.mark.processes)


@pytest.fixture(autouse=True)
def _in_memory_unless_marked(request, monkeypatch):
    """A test not marked ``processes`` runs in this process: starting another
    (the CLI, a runtime, a server) fails it, so ``pytest -m "not processes"``
    is the whole in-memory suite and stays a matter of seconds. git, which
    lists shipped files, is allowed."""
    if request.node.get_closest_marker("processes"):
        return
    execute = subprocess.Popen._execute_child

    def refuse(self, args, *rest, **options):
        program = Path(str(args[0] if isinstance(args, (list, tuple)) else args).split()[0]).name
        if program != "git":
            pytest.fail(f"{program} started by a test not marked processes: add pytestmark = pytest.mark.processes")
        return execute(self, args, *rest, **options)

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)


# --- state backends on real servers ----------------------------------------
KINDS = ("local", "pg", "etcd")
_names = itertools.count()


@pytest.fixture(scope="session")
def postgres():
    server = started(Postgres)
    yield server
    server.close()


@pytest.fixture(scope="session")
def etcd_server():
    server = started(Etcd)
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
            text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        started.append(process)
        return process

    yield start
    end_all(started)


PRELUDE = """
import ast, sys
from l4plan.model import Settings
from l4plan.state import Resource, open_backend
backend = open_backend(Settings(sys.argv[1], ast.literal_eval(sys.argv[2])), ".")
"""
