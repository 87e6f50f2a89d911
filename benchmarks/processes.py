"""Processes the harness starts: pinned to a core, stopped by pid, measured from /proc.

Everything is pinned with ``taskset`` because on two cores the proxy under
test must not compete with the load generator and the origin for the same
core; otherwise the figures measure the scheduler.
"""

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PROXY_CORE = 0
LOAD_CORE = 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def runtime_serve(data_dir, profile=None):
    """The argv of `l4plan runtime serve`, under cProfile writing ``profile`` if given
    (cProfile writes it when the runtime exits after SIGTERM)."""
    python = [sys.executable]
    if profile is not None:
        python += ["-m", "cProfile", "-o", str(profile)]
    return python + ["-m", "l4plan", "runtime", "serve", "--data-dir", str(data_dir)]


def raise_nofile():
    """Let this process (and what it starts) open as many sockets as the hard limit allows."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pin_self_to_load_core():
    """The harness, its generators and the origins all run on the load core."""
    os.sched_setaffinity(0, {LOAD_CORE})


def free_port(kind=socket.SOCK_STREAM):
    """A port free for both TCP and UDP on 127.0.0.1 (the OS picks it)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, other) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


class Process:
    """One started process in its own process group, pinned to ``core``."""

    def __init__(self, argv, core, log_path, cwd=None):
        self.argv = argv
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                ["taskset", "-c", str(core), *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=raise_nofile,
            )
        self.pid = self.popen.pid  # taskset execs the program: same pid

    def check_running(self):
        if self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.argv[0]} exited with status {self.popen.returncode}; see {self.log_path}:\n"
                + Path(self.log_path).read_text()[-2000:]
            )

    def stop(self, timeout=5.0):
        """SIGTERM its process group, SIGKILL after ``timeout`` seconds."""
        if self.popen.poll() is not None:
            return
        _signal_group(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.pid, signal.SIGKILL)
            self.popen.wait()


def _signal_group(pid, signum):
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def wait_for_port(port, process=None, timeout=10.0):
    """Block until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None:
            process.check_running()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
            time.sleep(0.05)


def cpu_seconds(pid):
    """User plus system CPU time of ``pid`` so far (/proc/PID/stat utime, stime)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid):
    """Resident set size of ``pid`` (/proc/PID/status VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children(pid):
    """Pids of the direct children of ``pid``."""
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def wait_for_child(process, timeout=10.0):
    """The pid of the first child of ``process`` (nginx's worker), once it exists."""
    deadline = time.monotonic() + timeout
    while not children(process.pid):
        process.check_running()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.argv[0]} started no worker")
        time.sleep(0.05)
    return children(process.pid)[0]


def wait_for_line(path, line, process, timeout=30.0):
    """Block until ``process`` has written ``line`` to its log ``path``."""
    deadline = time.monotonic() + timeout
    while line not in path.read_text().splitlines():
        process.check_running()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} has no {line!r} line after {timeout} s")
        time.sleep(0.05)
