"""The conditions of a run, saved next to its figures so runs can be compared."""

import os
import platform
import subprocess
from pathlib import Path

import twisted

ROOT = Path(__file__).resolve().parent.parent

VERSION_COMMANDS = {
    "haproxy": ["haproxy", "-v"],
    "nginx": ["nginx", "-v"],
    "iperf3": ["iperf3", "--version"],
    "wrk": ["wrk", "--version"],
}


def _first_line(argv):
    done = subprocess.run(argv, capture_output=True, text=True)
    return (done.stdout + done.stderr).strip().splitlines()[0]


def _git(*args):
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    return done.stdout.strip()


def _cpu_model():
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def describe(started, settings):
    return {
        "started": started.isoformat(timespec="seconds"),
        "settings": settings,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "runtime_files_changed": _git("status", "--porcelain", "--", "runtime"),
        "kernel": platform.release(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "twisted": twisted.__version__,
        "tools": {name: _first_line(argv) for name, argv in VERSION_COMMANDS.items()},
    }
