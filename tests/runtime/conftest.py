"""Fixtures for the runtime tests: processes we start and always stop.

Every process (the runtime, stand-in origins, HAProxy, nginx) is a child of
the test, recorded by its Popen object and killed by pid in teardown, even
when the test fails.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime_helpers import L4PLAN, read_until

ORIGIN_SERVER = str(Path(__file__).with_name("origin_server.py"))
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


class Processes:
    """Children of one test; stderr of each goes to a file in tmp_path."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self._children = []

    def start(self, args, name, ready=b"ready"):
        with open(self.tmp_path / f"{name}.stderr", "wb") as stderr:
            proc = subprocess.Popen(
                [str(a) for a in args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                bufsize=0,
                cwd=self.tmp_path,
            )
        proc.name = name
        self._children.append(proc)
        proc.output = read_until(proc, ready) if ready else b""
        return proc

    def stderr(self, proc):
        return (self.tmp_path / f"{proc.name}.stderr").read_text(errors="replace")

    def stop(self, proc, sig=signal.SIGTERM, timeout=20):
        """Signal ``proc`` (unless ``sig`` is None), wait, return (exit status, all stdout)."""
        if sig is not None and proc.poll() is None:
            proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=timeout)
        return proc.returncode, proc.output + rest

    def stop_all(self):
        for proc in self._children:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=20)


@pytest.fixture
def processes(tmp_path):
    children = Processes(tmp_path)
    yield children
    children.stop_all()


@pytest.fixture
def start_origin(processes):
    """Start origin_server.py MODE HOST PORT...; returns the process once bound."""

    def start(mode, host, *ports):
        name = f"origin-{mode.replace(':', '-')}-{host.replace(':', '_')}-{ports[0]}"
        return processes.start([sys.executable, ORIGIN_SERVER, mode, host, *ports], name)

    return start


@pytest.fixture
def start_runtime(processes, tmp_path):
    """Write the document to a data dir and run `l4plan runtime serve` on it."""

    def start(document, *options, ready=b"ready"):
        data_dir = tmp_path / f"data-{len(processes._children)}"
        data_dir.mkdir()
        (data_dir / "applied.json").write_text(json.dumps(document))
        return processes.start(
            [L4PLAN, "runtime", "serve", "--data-dir", data_dir, *options], "runtime", ready
        )

    return start


def wait_for_port(port, host="127.0.0.1", timeout=15.0):
    """Poll until something accepts TCP on (host, port); bounded in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def _binary(name):
    path = shutil.which(name, path=SBIN_PATH)
    if path is None:
        pytest.skip(
            f"{name} is not installed (apt-get install {name}); it is the real PROXY parser here"
        )
    return path


HAPROXY_CONFIG = """\
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend parsed
    bind 127.0.0.1:{port} accept-proxy
    http-request return status 200 content-type text/plain lf-string "%[src] %[src_port]"
"""

NGINX_CONFIG = """\
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
load_module {module};
events {{ worker_connections 64; }}
stream {{
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        return "$proxy_protocol_addr $proxy_protocol_port";
    }}
}}
"""


@pytest.fixture
def start_haproxy(processes, tmp_path):
    """HAProxy in the foreground that answers with the client address it parsed."""
    binary = _binary("haproxy")

    def start(port):
        config = tmp_path / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=port))
        proc = processes.start([binary, "-db", "-f", config], "haproxy", ready=None)
        wait_for_port(port)
        return proc

    return start


@pytest.fixture
def start_nginx(processes, tmp_path):
    """nginx (stream module) in the foreground that returns the PROXY address it parsed."""
    binary = _binary("nginx")
    module = "/usr/lib/nginx/modules/ngx_stream_module.so"
    if not os.path.exists(module):
        pytest.skip("nginx stream module is not installed (apt-get install libnginx-mod-stream)")

    def start(port):
        config = tmp_path / "nginx.conf"
        config.write_text(NGINX_CONFIG.format(port=port, tmp=tmp_path, module=module))
        proc = processes.start(
            [binary, "-p", tmp_path, "-c", config, "-e", tmp_path / "nginx-early.log"],
            "nginx",
            ready=None,
        )
        wait_for_port(port)
        return proc

    return start
