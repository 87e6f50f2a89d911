"""A fleet's convergence: from apply's write to every node serving, next to etcd itself.

Starts one etcd and N runtimes (``runtime serve --etcd``, on 127.0.1.1, .2,
…) and applies through the engine with provider "fleet": each apply moves
one application to another origin port, and the figure is the provider's own
"N/N nodes converged in X s" (the write, every node's reconcile, and its
report, read back by polling every 20 ms). The reference is etcd's own
latency from a put to a watcher's event, measured in the same run. Runs 3
and 20 nodes with a small document, and 3 nodes with 10,001 listeners.

    python -m benchmarks.fleet_converge [--applies N]
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from l4plan import apply as engine
from l4plan import etcd as etcd_client
from l4plan.config.variables import VariableInputs
from tests.servers import Etcd

SITE = {"site": {"example.com": {"plan": "enterprise"}}}


def start_nodes(count, etcd, prefix, root):
    nodes = []
    for i in range(count):
        data = Path(root, f"node{i}")
        data.mkdir()
        process = subprocess.Popen(
            [sys.executable, "-m", "l4plan", "runtime", "serve", "--data-dir", str(data),
             "--bind", f"127.0.1.{i + 1}", "--etcd", etcd.endpoints[0], "--etcd-prefix", prefix,
             "--node", f"node{i}", "--log-file", str(data / "log"), "--drain-timeout", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        nodes.append(process)
    try:
        for process in nodes:
            while "ready" not in process.stdout.readline():
                if process.poll() is not None:
                    raise RuntimeError("a runtime did not start")
    except BaseException:
        for process in nodes:
            process.kill()
            process.communicate(timeout=60)
        raise
    return nodes


def write_config(directory, etcd, prefix, listeners, origin_port):
    """``listeners`` edge ports (10 rules of a range per application) and a probe application."""
    applications = {
        "probe": {"domain": "probe.example.com", "rule": [
            {"protocol": "tcp", "edge_port": "9000", "origin": "127.0.0.1", "origin_port": str(origin_port)}]},
    }
    per_app, base = 1000, 30000
    for a in range(listeners // per_app):
        applications[f"bulk{a}"] = {"domain": f"bulk{a}.example.com", "rule": [
            {"protocol": "tcp", "edge_port": f"{base + a * per_app + r * 100}-{base + a * per_app + r * 100 + 99}",
             "origin": "127.0.0.1", "origin_port": "20000"} for r in range(10)]}
    provider = {"provider": {"fleet": {"endpoints": etcd.endpoints, "prefix": prefix, "wait_timeout": "120s"}}}
    (directory / "main.l4.json").write_text(json.dumps({**SITE, **provider, "application": applications}))


def converge_seconds(directory):
    said = []  # the provider's progress lines
    workspace = engine.open_workspace(directory, VariableInputs(), said.append)
    engine.apply(workspace, engine.PlanOptions(refresh=False), lambda proposal: True)
    workspace.backend.close()
    found = re.findall(r"(\d+)/(\d+) nodes converged in ([\d.]+) s", "\n".join(said))
    ok, total, seconds = found[-1]
    assert ok == total, said
    return float(seconds)


def fleet_figure(etcd, nodes, listeners, applies):
    prefix = f"/bench/{nodes}-{listeners}/"
    with tempfile.TemporaryDirectory() as root:
        started = start_nodes(nodes, etcd, prefix, root)
        try:
            directory = Path(root, "config")
            directory.mkdir()
            write_config(directory, etcd, prefix, listeners, 17000)
            converge_seconds(directory)  # the first apply binds everything
            times = []
            for i in range(applies):
                write_config(directory, etcd, prefix, listeners, 17001 + i)
                times.append(converge_seconds(directory))
            return statistics.median(times)
        finally:
            for process in started:
                process.terminate()
            for process in started:
                process.communicate(timeout=60)


def etcd_watch_latency(etcd, samples=20):
    """Median seconds from a put to a watcher's event (etcd alone)."""
    key = etcd_client.b64("/bench/probe")
    seen, times = threading.Event(), []

    def watch():
        request = urllib.request.Request(
            f"{etcd.endpoints[0]}/v3/watch", json.dumps({"create_request": {"key": key}}).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as stream:
            for line in stream:
                if b'"events"' in line:
                    seen.set()
                if len(times) >= samples:
                    return

    threading.Thread(target=watch, daemon=True).start()
    time.sleep(0.5)
    client = etcd_client.Client(etcd.endpoints)
    for i in range(samples):
        seen.clear()
        started = time.perf_counter()
        client.call("kv/put", {"key": key, "value": etcd_client.b64(str(i))})
        seen.wait(5)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applies", type=int, default=5)
    args = parser.parse_args()
    etcd = Etcd()
    try:
        reference = etcd_watch_latency(etcd)
        print(f"etcd put -> watch event: {1000 * reference:.1f} ms (median of 20)")
        for nodes, listeners in ((3, 0), (20, 0), (3, 10000)):
            seconds = fleet_figure(etcd, nodes, listeners, args.applies)
            print(f"{nodes:3} nodes, {listeners + 1:6} listeners each: converged in {1000 * seconds:7.1f} ms "
                  f"(median of {args.applies}; {seconds / reference:.0f}x etcd's put -> watch)")
    finally:
        etcd.close()


if __name__ == "__main__":
    main()
