"""Load generators, run on the load core, and the parsing of what they print.

Each load is bounded by ``seconds``; the parsers are pure functions so the
smoke test can check them on canned output.
"""

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GRACE = 15  # seconds a bounded load may overrun before it is killed


def _run(argv, seconds):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + GRACE)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


def iperf3_tcp(port, seconds, streams):
    """TCP bulk from client to server through ``port``: Gbit/s the server received."""
    argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-P", str(streams)]
    return parse_iperf3_tcp(_run([*argv, "-J"], seconds))


def parse_iperf3_tcp(text):
    received = json.loads(text)["end"]["sum_received"]
    return {"gbit_s": received["bits_per_second"] / 1e9}


def iperf3_udp(port, seconds, mbit_s, size):
    """UDP at a fixed rate of ``size``-byte datagrams: what arrived, and how many were lost."""
    argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-u"]
    argv += ["-b", f"{mbit_s}M", "-l", str(size), "-J"]
    return parse_iperf3_udp(_run(argv, seconds))


def parse_iperf3_udp(text):
    end = json.loads(text)["end"]
    received = end["sum_received"]
    return {
        "mbit_s": received["bits_per_second"] / 1e6,
        "loss_pct": received["lost_percent"],
        "packets": end["sum_sent"]["packets"],
    }


def wrk(port, seconds, connections, close):
    """HTTP GETs on ``connections`` connections; ``close`` sends ``Connection: close``
    so every request is a new TCP connection through the proxy."""
    argv = ["wrk", "-t1", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    return parse_wrk(_run([*argv, f"http://127.0.0.1:{port}/"], seconds))


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(value):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(text):
    """Requests/s, p50/p99 latency (ms), failed and all requests from ``wrk --latency``."""
    figures = {"req_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for percent in ("50", "99"):
        latency = re.search(rf"^\s+{percent}%\s+(\S+)$", text, re.M).group(1)
        figures[f"p{percent}_ms"] = _ms(latency)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    figures["errors"] = sum(map(int, errors.groups())) if errors else 0
    figures["errors"] += int(bad.group(1)) if bad else 0
    figures["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
    return figures


def udp_request_response(port, seconds, count, sockets=4, window=16, size=64):
    """Datagrams sent and echoed through ``port``, ``window`` in flight per socket."""
    argv = [sys.executable, str(HERE / "udp_load.py"), str(port), str(seconds), str(count)]
    argv += [str(sockets), str(window), str(size)]
    return parse_udp_load(_run(argv, seconds))


def parse_udp_load(text):
    result = json.loads(text)
    lost = result["sent"] - result["received"]
    return {
        "pps": result["received"] / result["seconds"],
        "loss_pct": 100.0 * lost / result["sent"] if result["sent"] else 0.0,
        "packets": result["sent"] + result["received"],
    }


def open_idle(port, count):
    """``count`` TCP connections to ``port`` that send nothing; the caller closes them."""
    connections = []
    try:
        for _ in range(count):
            connections.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    except BaseException:
        close_all(connections)
        raise
    return connections


def close_all(connections):
    for connection in connections:
        connection.close()


def established_to(port):
    """How many established TCP connections have local port ``port`` (accepted by it)."""
    with open("/proc/net/tcp") as table:
        return count_established(table.read(), port)


def count_established(table, port):
    suffix = f":{port:04X}"
    count = 0
    for line in table.splitlines()[1:]:
        fields = line.split()
        count += fields[1].endswith(suffix) and fields[3] == "01"
    return count


def wait_until(predicate, timeout, interval=0.1):
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
