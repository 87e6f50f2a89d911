"""`l4plan runtime status` and `stop` when there is nothing (right) to talk to."""

import subprocess

import pytest

from tests.live.conftest import runtime_pid

pytestmark = pytest.mark.processes


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_stop_without_pid_file(cli, here):
    """No pid file: nothing is signalled, and the message says why."""
    result = cli("runtime", "stop")
    assert result.exit_code == 1
    assert (
        "no .l4plan/runtime.pid here: l4plan started no runtime in this directory" in result.output
    )


def test_stop_never_signals_another_program(cli, here):
    """A pid file naming a process that is not an l4plan runtime is stale: the
    process is left alone and the file removed."""
    other = subprocess.Popen(["sleep", "30"])
    try:
        (here / ".l4plan").mkdir()
        (here / ".l4plan" / "runtime.pid").write_text(f"{other.pid}\n")
        assert runtime_pid(here) is None
        result = cli("runtime", "stop")
        assert result.exit_code == 0
        assert "not running; removed the stale pid file" in result.output
        assert other.poll() is None
        assert not (here / ".l4plan" / "runtime.pid").exists()
    finally:
        other.kill()
        other.wait(timeout=20)


def test_status_without_runtime(cli, here):
    """Status names the address it tried (the embedded default without a configuration)."""
    result = cli("runtime", "status")
    assert result.exit_code == 1
    assert "no runtime answers on unix:.l4plan/runtime.sock" in result.output


def test_status_over_tcp_reads_the_token_file_of_the_provider_block(cli, here):
    """With an http admin address, status needs the token file the provider block names."""
    (here / "main.l4.hcl").write_text(
        'site "example.com" {\n  plan = "enterprise"\n}\n'
        'provider "runtime" {\n  admin      = "http://127.0.0.1:1"\n  token_file = "missing.token"\n}\n'
    )
    result = cli("runtime", "status")
    assert result.exit_code == 1
    assert f"cannot read the admin token {here / 'missing.token'}: No such file" in result.output
    assert "set token_file in the provider block" in result.output


def test_serve_token_file_needs_tcp_admin(cli, here):
    """--token-file without --admin tcp:... is a usage error, before anything listens."""
    result = cli("runtime", "serve", "--token-file", "t")
    assert result.exit_code == 1
    assert "--token-file goes with --admin tcp:HOST:PORT" in result.output
