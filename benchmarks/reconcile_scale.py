"""Reconcile at scale: one changed rule applied to ~10,000 listeners and to ~100.

An in-process runtime on the real reactor binds real TCP listeners for a
document of N bulk applications x 100 edge ports plus a "probe" and a
"steady" application; then the probe's origin port is changed again and
again with ``LiveConfig.apply``, the call behind the admin API's
``PUT /v1/config``. The same is done with one bulk application. A reconcile
should cost what the change costs, so the two times should be close.

Listeners are bound on 127.0.0.2 (loopback, but no address the tests and the
other benchmarks listen on), so their ports collide with nobody; the runtime
is stopped and every socket closed before the script ends.

    python -m benchmarks.reconcile_scale [--applications N] [--bind ADDRESS] [--base PORT]
"""

import argparse
import socket
import statistics
import tempfile
import time

from twisted.internet import task

from l4plan.runtime import document as runtime_document
from l4plan.runtime.reconcile import LiveConfig
from l4plan.runtime.serve import Runtime, Settings

PORTS_PER_APPLICATION = 100
APPLIES = 7
ORIGIN = 9  # discard: nothing connects during the measure


def _application(name, edge_from, edge_to, origin_port):
    return {
        "domain": f"{name}.example.com",
        "ipv6": False,
        "waf_ip_access_control": False,
        "keepalive_protection": False,
        "rules": [
            {
                "protocol": "tcp",
                "edge_port": f"{edge_from}-{edge_to}",
                "origin_type": "ip",
                "origin": "127.0.0.1",
                "origin_port": str(origin_port),
                "client_ip_passthrough": "off",
                "comment": "",
                "ports": [
                    {"edge": p, "origin": [origin_port]} for p in range(edge_from, edge_to + 1)
                ],
            }
        ],
    }


def document(applications, base, probe_origin):
    """A runtime document of ``applications`` x 100 ports from ``base``, then probe and steady."""
    apps = {
        f"bulk{i:04d}": _application(
            f"bulk{i}",
            base + i * PORTS_PER_APPLICATION,
            base + (i + 1) * PORTS_PER_APPLICATION - 1,
            ORIGIN,
        )
        for i in range(applications)
    }
    probe = base + applications * PORTS_PER_APPLICATION
    apps["probe"] = _application("probe", probe, probe, probe_origin)
    apps["steady"] = _application("steady", probe + 1, probe + 1, ORIGIN)
    site = {
        "name": "example.com",
        "ddos_full_protection": True,
        "china_mainland_network_optimization": False,
        "fixed_ipv4": False,
    }
    return {**runtime_document.empty(), "site": site, "applications": apps}


def check_ports_free(bind, base, count):
    """Fail early, naming the port, when one of the edge ports is taken."""
    for port in range(base, base + count):
        with socket.socket() as sock:
            try:
                sock.bind((bind, port))
            except OSError as exc:
                raise RuntimeError(f"{bind}:{port} is taken ({exc.strerror})") from None


def one_rule_applies(live, applications, base):
    """Median seconds of ``APPLIES`` applies that each change the probe's origin port."""
    live.apply(document(applications, base, ORIGIN))
    seconds = []
    for turn in range(APPLIES):
        changed = document(applications, base, ORIGIN + 1 + turn % 2)
        started = time.perf_counter()
        changes = live.apply(changed)
        seconds.append(time.perf_counter() - started)
        assert len(changes.updated) == 1 and not changes.added and not changes.removed, changes
    return statistics.median(seconds), len(live.runtime.listeners())


def measure(reactor, args):
    """Large document first, then the small one, on one runtime; stop it after."""
    data = tempfile.TemporaryDirectory()
    runtime = Runtime(reactor, Settings(data_dir=data.name, bind=args.bind, drain_timeout=0))
    live = LiveConfig.restore(runtime, data.name)
    runtime.startService()
    try:
        large = one_rule_applies(live, args.applications, args.base)
        small = one_rule_applies(live, 1, args.base)
    finally:
        stopped = runtime.stopService()
    for seconds, listeners in (large, small):
        print(f"one-rule apply at {listeners:6d} listeners: {seconds * 1000:8.2f} ms")
    print(f"ratio: {large[0] / small[0]:.1f} for {large[1] / small[1]:.0f}x the listeners")
    return stopped.addBoth(lambda result: data.cleanup() or result)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=100)
    parser.add_argument("--bind", default="127.0.0.2")
    parser.add_argument("--base", type=int, default=21000)
    args = parser.parse_args()
    check_ports_free(args.bind, args.base, args.applications * PORTS_PER_APPLICATION + 2)
    task.react(measure, [args])


if __name__ == "__main__":
    main()
