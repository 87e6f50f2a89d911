"""The tests: which load runs through which route, and what is measured around it.

Every run records the proxy's own CPU (utime + stime deltas of the relaying
process) next to the load's figures, because on a loaded core the CPU a proxy
spends per packet or per connection compares proxies better than raw rates.
"""

import contextlib
import time
from dataclasses import dataclass
from typing import Callable

from benchmarks import loads
from benchmarks.processes import cpu_seconds, rss_bytes


@dataclass(frozen=True)
class Settings:
    seconds: int = 5  # wrk and iperf3 take whole seconds
    repetitions: int = 3
    wrk_connections: int = 32
    # Each relayed connection costs the proxy two descriptors and the hard
    # RLIMIT_NOFILE here is 20,000, so 10,000 cannot be relayed by one process.
    idle_connections: int = 9900
    udp_mbit_s: int = 400
    udp_size: int = 1200
    udp_count: int = 10_000_000
    settle: float = 0.5  # pause between runs, for sockets to close
    apply_listeners: int = 10_000
    applies: int = 20


@dataclass(frozen=True)
class Test:
    name: str
    route: str
    protocol: str
    measure: Callable  # (port, route, pid, settings) -> {figure: value}
    needs_process: bool = False  # nothing to measure for "direct"


def timed(load):
    """Wrap ``load(port, settings)``: add the proxy's CPU use while it ran."""

    def measure(port, route, pid, settings):
        before = cpu_seconds(pid) if pid else None
        start = time.monotonic()
        figures = load(port, settings)
        wall = time.monotonic() - start
        counts = {unit: figures.pop(f"{unit}s", None) for unit in ("packet", "request")}
        if pid:
            cpu = cpu_seconds(pid) - before
            figures["cpu_pct"] = 100.0 * cpu / wall
            for unit, count in counts.items():
                if count:
                    figures[f"cpu_us_per_{unit}"] = 1e6 * cpu / count
        return figures

    return measure


def idle_memory(port, route, pid, settings):
    """RSS of the proxy with ``idle_connections`` open, all of them relayed to the origin."""
    before, origin_before = rss_bytes(pid), loads.established_to(route.origin)
    count = settings.idle_connections
    connections = loads.open_idle(port, count)
    try:

        def arrived():
            return loads.established_to(route.origin) - origin_before >= count

        if not loads.wait_until(arrived, 20):
            raise RuntimeError(f"fewer than {count} connections reached the origin")
        rss = rss_bytes(pid)
    finally:
        loads.close_all(connections)
        loads.wait_until(lambda: loads.established_to(route.origin) <= origin_before, 20)
    return {
        "rss_mb": rss / 1e6,
        "rss_before_mb": before / 1e6,
        "kb_per_connection": (rss - before) / count / 1e3,
    }


def _tcp_bulk(streams):
    return timed(lambda port, s: loads.iperf3_tcp(port, s.seconds, streams))


def _http(close):
    return timed(lambda port, s: loads.wrk(port, s.seconds, s.wrk_connections, close))


def _udp_rr(port, s):
    return loads.udp_request_response(port, s.seconds, s.udp_count)


def _udp_bulk(port, s):
    return loads.iperf3_udp(port, s.seconds, s.udp_mbit_s, s.udp_size)


TESTS = (
    # First, so that the first repetition measures a proxy no load has grown yet.
    Test("idle_memory", "http", "tcp", idle_memory, needs_process=True),
    Test("tcp_bulk_1", "iperf", "tcp", _tcp_bulk(1)),
    Test("tcp_bulk_8", "iperf", "tcp", _tcp_bulk(8)),
    Test("conn_close", "http", "tcp", _http(close=True)),
    Test("conn_close_proxy_v2", "http_proxy_v2", "tcp", _http(close=True)),
    Test("keepalive", "http", "tcp", _http(close=False)),
    Test("udp_rr", "udp_echo", "udp", timed(_udp_rr)),
    Test("udp_bulk", "iperf", "udp", timed(_udp_bulk)),
)


def applies(test, proxy):
    """Whether ``proxy`` forwards what ``test`` needs."""
    if (test.route, test.protocol) not in proxy.edges:
        return False
    return not test.needs_process or proxy.pid(test.route) is not None


def run_once(test, proxy, routes, settings, profiler=None):
    """One measurement of ``test`` through ``proxy``; an error is recorded, not raised.

    With a ``profiling.PySpy`` ``profiler``, the l4plan runtime is sampled meanwhile.
    """
    route = next(r for r in routes if r.name == test.route)
    port, pid = proxy.edges[(test.route, test.protocol)], proxy.pid(test.route)
    sampling = contextlib.nullcontext()
    if profiler is not None and proxy.name == "l4plan":
        sampling = profiler.sampling(pid, test.name, settings.seconds)
    try:
        with sampling:
            return test.measure(port, route, pid, settings)
    except Exception as exc:  # one failed run must not lose the others
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        time.sleep(settings.settle)
