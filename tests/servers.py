"""Throwaway PostgreSQL and etcd servers on loopback, for the backend tests
and benchmarks.

Each lives in a temporary directory on free ports and is stopped, by pid,
when its fixture ends. initdb and postgres refuse to run as root, so as root
the cluster runs as a system user made for it.
"""

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import trustme

PG_USER = "l4plan-pg"
PG_PASSWORD = "s3cret-pw"
START_SECONDS = 30


class ServerMissing(RuntimeError):
    """The server's package is not installed; the message says which to install."""


def free_port():
    return free_ports(1)[0]


def free_ports(count):
    """``count`` different ports free on 127.0.0.1: held open together while
    chosen, so the kernel cannot hand out one port twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for one in sockets:
            one.bind(("127.0.0.1", 0))
        return [one.getsockname()[1] for one in sockets]
    finally:
        for one in sockets:
            one.close()


def _pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        raise ServerMissing("PostgreSQL is not installed (apt-get install postgresql)")
    return found[-1]


class Postgres:
    """A PostgreSQL cluster of our own: ``url`` reaches it as the superuser."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="l4plan-pg-")
        os.chmod(self.root, 0o755)
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self.run_as = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(PG_USER)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", PG_USER], check=True)
            shutil.chown(self.root, PG_USER)
            self.run_as = ["runuser", "-u", PG_USER, "--"]
        password_file = os.path.join(self.root, "pw")
        with open(password_file, "w") as f:
            f.write(PG_PASSWORD)
        if self.run_as:
            shutil.chown(password_file, PG_USER)
        try:
            self._run(
                _pg_bin("initdb"), "-D", self.data, "-U", "postgres", "--no-sync",
                "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}",
            )
            self.start()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    @property
    def url(self):
        return f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{self.port}/postgres"

    def _run(self, *command):
        subprocess.run([*self.run_as, *command], check=True, capture_output=True, timeout=60)

    def _ctl(self, *args):
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_pg_bin("pg_ctl"), "-D", self.data, "-l", os.path.join(self.root, "log"),
                  "-o", options, "-w", "-t", str(START_SECONDS), *args)

    def start(self):
        self._ctl("start")

    def stop(self):
        self._ctl("stop", "-m", "fast")

    def restart(self):
        self._ctl("restart", "-m", "fast")

    def close(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def write_certificates(directory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as
    ca.pem, server.pem/.key and client.pem/.key in ``directory``."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(f"{directory}/ca.pem")
    for name, identity in (("server", "127.0.0.1"), ("client", "l4plan-client")):
        cert = ca.issue_cert(identity)
        cert.cert_chain_pems[0].write_to_path(f"{directory}/{name}.pem")
        cert.private_key_pem.write_to_path(f"{directory}/{name}.key")
    return directory


class Etcd:
    """An etcd cluster of ``size`` members on 127.0.0.1; with ``tls`` (a
    directory holding ca.pem, server.pem and server.key) clients speak https
    and need a certificate that CA signed."""

    def __init__(self, size=1, tls=None):
        self.tls = tls
        if not shutil.which("etcd"):
            raise ServerMissing("etcd is not installed (apt-get install etcd-server)")
        self.root = tempfile.mkdtemp(prefix="l4plan-etcd-")
        self.names = [f"m{i}" for i in range(size)]
        ports = free_ports(2 * size)
        self.client_ports = dict(zip(self.names, ports[:size]))
        self.peer_ports = dict(zip(self.names, ports[size:]))
        self.processes = {}
        cluster = ",".join(f"{n}=http://127.0.0.1:{self.peer_ports[n]}" for n in self.names)
        try:
            for name in self.names:
                self._start(name, cluster)
            for name in self.names:
                self.wait_ready(name)
        except BaseException:
            self.close()  # the members that did start are ended, not left running
            raise

    def url(self, name):
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_ports[name]}"

    @property
    def endpoints(self):
        return [self.url(n) for n in self.names]

    def _start(self, name, cluster):
        client, peer = self.url(name), f"http://127.0.0.1:{self.peer_ports[name]}"
        log = open(os.path.join(self.root, f"{name}.log"), "ab")
        self.processes[name] = subprocess.Popen(
            ["etcd", "--name", name, "--data-dir", os.path.join(self.root, name),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", cluster, "--initial-cluster-token", self.root,
             "--heartbeat-interval", "50", "--election-timeout", "500", *self._tls_flags()],
            stdout=log, stderr=log,
        )
        log.close()

    def _tls_flags(self):
        if not self.tls:
            return []
        return ["--cert-file", f"{self.tls}/server.pem", "--key-file", f"{self.tls}/server.key",
                "--trusted-ca-file", f"{self.tls}/ca.pem", "--client-cert-auth"]

    def _context(self):
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=f"{self.tls}/ca.pem")
        context.load_cert_chain(f"{self.tls}/client.pem", f"{self.tls}/client.key")
        return context

    def call(self, name, path, body):
        request = urllib.request.Request(
            f"{self.url(name)}/v3/{path}", json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5, context=self._context()) as answer:
            return json.loads(answer.read())

    def wait_ready(self, name):
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                self.call(name, "kv/range", {"key": "eA=="})
                return
            except OSError:
                if time.monotonic() > deadline or self.processes[name].poll() is not None:
                    log = Path(self.root, f"{name}.log").read_text(errors="replace").splitlines()
                    raise RuntimeError(f"etcd {name} did not start: " + " | ".join(log[-3:]))
                time.sleep(0.05)

    def leader(self):
        """The name of the member that leads now."""
        ids = {}
        for name in self.names:
            if self.processes[name].poll() is None:
                status = self.call(name, "maintenance/status", {})
                ids[status["header"]["member_id"]] = name
                leader = status["leader"]
        return ids[leader]

    def kill(self, name):
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(timeout=10)

    def start_again(self, name):
        """Start a killed member on its data: it rejoins the cluster it was in."""
        cluster = ",".join(f"{n}=http://127.0.0.1:{self.peer_ports[n]}" for n in self.names)
        self._start(name, cluster)
        self.wait_ready(name)

    def close(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
