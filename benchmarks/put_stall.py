"""Traffic during a large PUT: the worst echo round trip while one PUT adds 10,000 listeners.

A real `l4plan runtime serve` relays one TCP connection to an echo origin; a
client pings through it (one byte, every 5 ms) before and during a
``PUT /v1/config`` that adds N TCP edge ports. What the reconcile holds the
reactor for shows as the worst round trip during the PUT; the one before it is
the reference measured in the same run. Edge ports listen on 127.0.0.2, where
nothing else here does; the runtime and the origin end with the script.

    python -m benchmarks.put_stall [--listeners N] [--base PORT]
"""

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from l4plan.providers.admin_client import AdminClient

BIND = "127.0.0.2"
PING_EVERY = 0.005


def _rule(edge_ports, origin):
    first, last = edge_ports[0], edge_ports[-1]
    spec = str(first) if first == last else f"{first}-{last}"
    return {
        "protocol": "tcp",
        "edge_port": spec,
        "origin_type": "ip",
        "origin": "127.0.0.1",
        "origin_port": str(origin),
        "client_ip_passthrough": "off",
        "comment": "",
        "ports": [{"edge": port, "origin": [origin]} for port in edge_ports],
    }


def _document(rules):
    application = {"domain": "bench.example.com", "ipv6": False, "waf_ip_access_control": False}
    application.update(keepalive_protection=False, rules=rules)
    return {
        "format_version": 1,
        "site": None,
        "ip_access_rules": [],
        "load_balancers": {},
        "applications": {"bench": application},
    }


def _echo_origin():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve():
        conn, _ = server.accept()
        while data := conn.recv(100):
            conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def measure(listeners, base):
    server, origin = _echo_origin()
    edge = base - 1
    data_dir = Path(tempfile.mkdtemp())
    (data_dir / "applied.json").write_text(json.dumps(_document([_rule([edge], origin)])))
    admin = f"unix:{data_dir / 'admin.sock'}"
    command = [sys.executable, "-m", "l4plan", "runtime", "serve", "--data-dir", str(data_dir)]
    runtime = subprocess.Popen(
        [*command, "--bind", BIND, "--admin", admin], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        while b"ready" not in runtime.stdout.readline():
            if runtime.poll() is not None:
                raise SystemExit("the runtime did not start")
        client = socket.create_connection((BIND, edge), timeout=30)
        gaps, stop = [], threading.Event()

        def ping():
            while not stop.is_set():
                start = time.monotonic()
                client.sendall(b"x")
                client.recv(1)
                gaps.append(time.monotonic() - start)
                time.sleep(PING_EVERY)

        pinger = threading.Thread(target=ping)
        pinger.start()
        time.sleep(0.5)
        big = _document([_rule([edge], origin), _rule(list(range(base, base + listeners)), origin)])
        api = AdminClient(admin, timeout=300)
        generation = api.request("GET", "/v1/config").body["generation"]
        before = len(gaps)
        started = time.monotonic()
        answer = api.request("PUT", "/v1/config", big, {"If-Match": str(generation)})
        took = time.monotonic() - started
        time.sleep(0.5)
        stop.set()
        pinger.join()
        client.close()
    finally:
        runtime.kill()
        runtime.wait(timeout=30)
        server.close()
    if answer.status != 200:
        raise SystemExit(f"PUT answered {answer.status}: {answer.body}")
    quiet, during = max(gaps[:before]), max(gaps[before:])
    print(
        f"PUT of {listeners} new listeners: {took:.2f} s; worst echo round trip during it "
        f"{during * 1000:.0f} ms, before it {quiet * 1000:.1f} ms (ratio {during / quiet:.0f})"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=10000)
    parser.add_argument("--base", type=int, default=10000, help="the first new edge port")
    options = parser.parse_args()
    measure(options.listeners, options.base)


if __name__ == "__main__":
    main()
