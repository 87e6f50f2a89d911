"""Apply under load: `l4plan apply` of one changed rule to a runtime with many listeners.

A runtime with an admin socket serves ``listeners`` TCP edge ports (bulk
applications of 100 ports each, all to one origin) plus a "probe" rule that
each apply moves between two origins answering "ok" and "alt", and a
"steady" rule that never changes. While a thread opens new connections to
both, the CLI applies the change again and again; each apply is timed from
its start until a new connection to the probe gets the new origin's answer.
Then the same one-rule change is PUT straight to the admin API, on the large
document and on a small one, to show what the runtime's reconcile costs
against the size of the document it is given.
"""

import contextlib
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.processes import PROXY_CORE, Process, free_port, runtime_serve, wait_for_line
from l4plan.providers.admin_client import AdminClient

BULK_FROM = 10000  # below the ephemeral range, above the ports the test suites pick
BULK_RULE = 100  # edge ports per bulk rule
SMALL_BULK = 1  # bulk rules in the small document
PUTS = 5
APPLY_TIMEOUT = 120


def fetch(port, timeout=5.0):
    """The body of one HTTP/1.0 GET on a new connection to ``port``."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError(f"bad reply {head[:40]!r}")
    return body.decode().strip()


class ConnectionLoad(threading.Thread):
    """New connections, one after the other, to ``ports`` until stopped; failures counted."""

    def __init__(self, ports, max_seconds):
        super().__init__(daemon=True)
        self.ports = ports
        self.max_seconds = max_seconds
        self.stopped = threading.Event()
        self.ok = 0
        self.failures = []

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        while not self.stopped.is_set() and time.monotonic() < deadline:
            for port in self.ports:
                try:
                    fetch(port)
                    self.ok += 1
                except OSError as exc:
                    self.failures.append(f"{port}: {exc}")

    def stop(self):
        self.stopped.set()
        self.join()


def bulk_applications(listeners, origin):
    rules = max(1, listeners // BULK_RULE)
    return {
        f"bulk{i:04d}": {
            "domain": f"bulk{i}.example.com",
            "rule": [
                {
                    "protocol": "tcp",
                    "edge_port": f"{BULK_FROM + i * BULK_RULE}-{BULK_FROM + (i + 1) * BULK_RULE - 1}",
                    "origin": "127.0.0.1",
                    "origin_port": str(origin),
                }
            ],
        }
        for i in range(rules)
    }


def config(admin, bulk, probe, steady, probe_origin, steady_origin):
    """A configuration (``.l4.json``) with the bulk applications, the probe and the steady rule."""

    def single(edge, origin, name):
        rule = {"protocol": "tcp", "edge_port": str(edge), "origin": "127.0.0.1"}
        rule["origin_port"] = str(origin)
        return {"domain": f"{name}.example.com", "rule": [rule]}

    applications = dict(bulk)
    applications["probe"] = single(probe, probe_origin, "probe")
    applications["steady"] = single(steady, steady_origin, "steady")
    return {
        "site": {"example.com": {"plan": "enterprise"}},
        "provider": {"runtime": {"admin": admin, "autostart": False}},
        "application": applications,
    }


def check_bulk_ports_free(listeners):
    """Fail early, naming the port, when one of the bulk edge ports is taken."""
    for port in range(BULK_FROM, BULK_FROM + listeners):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as exc:
                raise RuntimeError(f"edge port {port} is taken ({exc.strerror})") from None


class ApplyBench:
    """The runtime, the configuration directory and the measurements."""

    def __init__(self, workdir, origins, listeners, profile=None):
        self.dir = Path(workdir) / "apply"
        self.project = self.dir / "project"
        self.project.mkdir(parents=True)
        self.data = self.dir / "data"
        self.data.mkdir()
        self.admin = f"unix:{self.data / 'rt.sock'}"
        self.origins = origins
        self.listeners = listeners
        self.probe, self.steady = free_port(), free_port()
        self.process = None
        self.profile = profile

    def start_runtime(self):
        argv = runtime_serve(self.data, self.profile)
        argv += ["--admin", self.admin, "--drain-timeout", "0", "--max-connections", "20000"]
        self.process = Process(argv, PROXY_CORE, self.dir / "runtime.log")
        wait_for_line(self.dir / "runtime.log", "ready", self.process)

    def stop(self):
        if self.process is not None:
            self.process.stop()

    def write(self, probe_origin):
        bulk = bulk_applications(self.listeners, self.origins.http)
        document = config(
            self.admin, bulk, self.probe, self.steady, probe_origin, self.origins.http
        )
        (self.project / "main.l4.json").write_text(json.dumps(document))

    def apply(self):
        """Run `l4plan apply --auto-approve` (load core); its Popen."""
        argv = [sys.executable, "-m", "l4plan", "apply", "--auto-approve"]
        with open(self.dir / "apply.log", "ab") as log:
            return subprocess.Popen(
                argv, cwd=self.project, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )

    def timed_apply(self, probe_origin, answer):
        """(seconds until the probe serves ``answer``, seconds the apply took)."""
        self.write(probe_origin)
        start = time.monotonic()
        with _killed_on_exit(self.apply()) as applying:
            serving = _wait_for_answer(self.probe, answer, start + APPLY_TIMEOUT)
            status = applying.wait(APPLY_TIMEOUT)
        if status != 0:
            raise RuntimeError(f"l4plan apply exited {status}; see {self.dir / 'apply.log'}")
        return serving - start, time.monotonic() - start

    def put_flips(self, document_for):
        """Median seconds of a PUT /v1/config moving the probe, over ``PUTS`` PUTs."""
        client = AdminClient(self.admin, timeout=APPLY_TIMEOUT)
        seconds = []
        for i in range(PUTS):
            origin = (self.origins.http_alt, self.origins.http)[i % 2]
            seconds.append(_put(client, document_for(origin)))
        return statistics.median(seconds)


@contextlib.contextmanager
def _killed_on_exit(process):
    """An apply that outlives its timeout, or an interrupted harness, is killed."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _put(client, document):
    generation = client.request("GET", "/v1/config").body["generation"]
    start = time.monotonic()
    answer = client.request("PUT", "/v1/config", document, {"If-Match": str(generation)})
    if answer.status != 200:
        raise RuntimeError(f"PUT /v1/config answered {answer.status}: {answer.body}")
    return time.monotonic() - start


def _wait_for_answer(port, answer, deadline):
    while time.monotonic() < deadline:
        try:
            if fetch(port) == answer:
                return time.monotonic()
        except OSError:
            pass
    raise RuntimeError(f"port {port} never answered {answer!r}")


def measure(workdir, origins, listeners, applies, profile=None):
    """The figures of the apply-under-load run (the runtime under cProfile if ``profile``)."""
    check_bulk_ports_free(listeners)
    bench = ApplyBench(workdir, origins, listeners, profile)
    try:
        bench.start_runtime()
        figures = {"listeners": listeners + 2}
        bench.write(origins.http)
        figures["first_apply_s"] = _first_apply(bench)
        figures.update(_applies_under_load(bench, applies))
        figures.update(_reconcile_sizes(bench))
        return figures
    finally:
        bench.stop()


def _first_apply(bench):
    start = time.monotonic()
    with _killed_on_exit(bench.apply()) as applying:
        status = applying.wait(APPLY_TIMEOUT)
    if status != 0:
        raise RuntimeError(f"the first apply failed; see {bench.dir / 'apply.log'}")
    return time.monotonic() - start


def _applies_under_load(bench, applies):
    load = ConnectionLoad([bench.steady, bench.probe], max_seconds=applies * APPLY_TIMEOUT)
    load.start()
    try:
        origins = bench.origins
        targets = [(origins.http_alt, "alt"), (origins.http, "ok")]
        timings = [bench.timed_apply(*targets[i % 2]) for i in range(applies)]
    finally:
        load.stop()
    return {
        "serving_s": statistics.median(t[0] for t in timings),
        "serving_max_s": max(t[0] for t in timings),
        "apply_s": statistics.median(t[1] for t in timings),
        "connections": load.ok + len(load.failures),
        "failed_connections": len(load.failures),
    }


def _reconcile_sizes(bench):
    """One rule changed, PUT on the whole document and on a small one."""
    client = AdminClient(bench.admin, timeout=APPLY_TIMEOUT)
    large = client.request("GET", "/v1/config").body["config"]

    def moved(document, origin):
        probe = document["applications"]["probe"]["rules"][0]
        probe["origin_port"] = str(origin)
        probe["ports"][0]["origin"] = [origin]
        return document

    put_large = bench.put_flips(lambda origin: moved(large, origin))
    kept = sorted(large["applications"])[:SMALL_BULK] + ["probe", "steady"]
    small = dict(large, applications={k: large["applications"][k] for k in kept})
    _put(client, small)
    put_small = bench.put_flips(lambda origin: moved(small, origin))
    return {
        "put_one_rule_s": put_large,
        "small_listeners": SMALL_BULK * BULK_RULE + 2,
        "put_one_rule_small_s": put_small,
    }
