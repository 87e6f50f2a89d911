"""Helpers of fixtures that start processes and servers: every process is
ended, and a server that is not installed is a skip (a failure under CI=true)."""

import pytest

from tests.servers import ServerMissing

TIMEOUT_SECONDS = 60


def end_all(processes):
    """Kill what still runs, reap everything, close the pipes."""
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=TIMEOUT_SECONDS)
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe and not pipe.closed:
                pipe.close()


def started(server, *args):
    """A server of ours, or a skip naming the package to install."""
    try:
        return server(*args)
    except ServerMissing as missing:
        pytest.skip(str(missing))
