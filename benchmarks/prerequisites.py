"""What the benchmarks need on the machine, and which Debian package brings it.

The harness installs nothing: it names what is missing and stops.
"""

import os
import shutil

from benchmarks.processes import LOAD_CORE, PROXY_CORE
from benchmarks.proxies import NGINX_STREAM_MODULE

PROGRAMS = {
    "haproxy": "haproxy",
    "nginx": "nginx",
    "iperf3": "iperf3",
    "wrk": "wrk",
    "taskset": "util-linux",
}


def missing_packages():
    """Debian packages to install before a run (empty when all is there)."""
    missing = [package for program, package in PROGRAMS.items() if not shutil.which(program)]
    if not os.path.exists(NGINX_STREAM_MODULE):
        missing.append("libnginx-mod-stream")
    return missing


def core_problem():
    """Why the proxy and load cores cannot be used, or None."""
    cores = os.sched_getaffinity(0)
    if not {PROXY_CORE, LOAD_CORE} <= cores:
        return f"needs cores {PROXY_CORE} and {LOAD_CORE}; this process may use {sorted(cores)}"
    return None
