"""Fixtures shared by the whole suite."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from l4plan.cli import main

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
