"""The benchmark harness's pure parts: parsers, medians, ratios, the runtime document.

No load runs here and no socket is opened; the benchmarks themselves are
run by hand (``python -m benchmarks``).
"""

import json

import pytest

from benchmarks import loads, profiling, report, targets
from benchmarks.proxies import L4planRuntime, Route
from l4plan.runtime.document import validate

WRK_CLOSE = """\
Running 2s test @ http://127.0.0.1:40000/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms  650.00us  21.30ms   91.00%
    Req/Sec    13.20k   500.00    14.00k    80.00%
  Latency Distribution
     50%  850.00us
     75%    2.20ms
     90%    2.60ms
     99%    1.02s
  26400 requests in 2.00s, 3.80MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 1
Requests/sec:  13184.21
Transfer/sec:      1.90MB
"""

WRK_CLEAN = """\
  Latency Distribution
     50%    1.00ms
     99%    2.50ms
  140580 requests in 2.00s, 20.00MB read
Requests/sec:  70290.00
"""


def test_wrk_rates_latencies_and_failures():
    """Requests/s, p50/p99 in ms whatever wrk's unit, socket errors plus bad replies, requests."""
    figures = loads.parse_wrk(WRK_CLOSE)
    assert figures == {
        "req_s": 13184.21,
        "p50_ms": 0.85,
        "p99_ms": 1020.0,
        "errors": 6,
        "requests": 26400,
    }


def test_wrk_without_errors_reports_zero():
    """No error lines means no failed requests."""
    assert loads.parse_wrk(WRK_CLEAN)["errors"] == 0


def _iperf3(end):
    return json.dumps({"start": {}, "intervals": [], "end": end})


def test_iperf3_tcp_counts_what_the_server_received():
    """TCP throughput is the receiver's, in Gbit/s."""
    text = _iperf3(
        {"sum_sent": {"bits_per_second": 9.9e9}, "sum_received": {"bits_per_second": 9.5e9}}
    )
    assert loads.parse_iperf3_tcp(text) == {"gbit_s": 9.5}


def test_iperf3_udp_rate_loss_and_packets_sent():
    """UDP: the received rate, the receiver's loss, the datagrams the client sent."""
    text = _iperf3(
        {
            "sum_sent": {"bits_per_second": 4.0e8, "packets": 41666, "lost_percent": 0},
            "sum_received": {"bits_per_second": 3.9e8, "packets": 41000, "lost_percent": 1.6},
        }
    )
    assert loads.parse_iperf3_udp(text) == {"mbit_s": 390.0, "loss_pct": 1.6, "packets": 41666}


def test_udp_load_rate_and_loss():
    """Replies per second, the share of requests without a reply, datagrams both ways."""
    text = json.dumps({"sent": 1000, "received": 990, "seconds": 2.0})
    assert loads.parse_udp_load(text) == {"pps": 495.0, "loss_pct": 1.0, "packets": 1990}


def test_established_counts_only_accepted_connections_on_the_port():
    """Rows of /proc/net/tcp with local port ``port`` in state 01 (established)."""
    table = (
        "  sl  local_address rem_address   st\n"
        "   0: 0100007F:1F90 0100007F:A000 01\n"
        "   1: 0100007F:1F90 00000000:0000 0A\n"
        "   2: 0100007F:A001 0100007F:1F90 01\n"
        "   3: 0100007F:1F90 0100007F:A002 01\n"
    )
    assert loads.count_established(table, 8080) == 2


def _runs():
    return {
        "conn_close": {
            "haproxy": [{"req_s": 10000.0}, {"req_s": 12000.0}, {"req_s": 11000.0}],
            "l4plan": [{"req_s": 4000.0}, {"error": "RuntimeError: wrk failed"}, {"req_s": 5000.0}],
        },
        "conn_close_proxy_v2": {"l4plan": [{"req_s": 4275.0}]},
        "keepalive": {
            "direct": [{"p99_ms": 0.5}],
            "haproxy": [{"p99_ms": 1.0}],
        },
    }


def test_medians_skip_failed_runs():
    """The median is taken over the runs that did not fail."""
    result = report.medians(_runs())
    assert result["conn_close"] == {"haproxy": {"req_s": 11000.0}, "l4plan": {"req_s": 4500.0}}


def test_derived_added_latency_and_proxy_v2_cost():
    """Added p99 is the proxy's minus direct's; PROXY v2 cost is the share of req/s lost."""
    result = report.medians(_runs())
    assert result["keepalive"]["haproxy"]["p99_added_ms"] == 0.5
    assert result["conn_close_proxy_v2"]["l4plan"]["cost_pct"] == pytest.approx(5.0)


def test_rows_give_ratios_to_each_reference():
    """Each row carries ratios to HAProxy, nginx and direct; a missing reference gives None."""
    runs = _runs()
    rows = list(report.rows(report.medians(runs), runs, ["haproxy", "l4plan"]))
    assert rows[1] == ["conn_close", "req_s", "l4plan", "2/3", 4500.0, 4500 / 11000, None, None]


def test_table_has_a_header_and_one_line_per_row():
    """The table is Markdown: header, rule, one line per (test, figure, proxy)."""
    runs = _runs()
    proxies = ["direct", "haproxy", "l4plan"]
    result = report.medians(runs)
    lines = report.table(result, runs, proxies).splitlines()
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in lines]
    assert cells[0] == ["test", "figure", "proxy", "runs", "median"] + [
        "xhaproxy",
        "xnginx",
        "xdirect",
    ]
    assert set(lines[1]) <= {"|", "-", " "}
    assert len(lines) == 2 + len(list(report.rows(result, runs, proxies)))
    assert cells[3] == ["conn_close", "req_s", "l4plan", "2/3", "4500", "0.41", "-", "-"]


def test_runtime_document_is_valid():
    """The document the harness writes for the runtime passes the runtime's own validation."""
    proxy = L4planRuntime()
    routes = [Route("iperf", 5201, ("tcp", "udp")), Route("pp", 8080, proxy_v2=True)]
    proxy.edges = {("iperf", "tcp"): 40000, ("iperf", "udp"): 40000, ("pp", "tcp"): 40001}
    document = validate(proxy.document(routes))
    rules = document["applications"]["bench"]["rules"]
    assert [(r["protocol"], r["client_ip_passthrough"]) for r in rules] == [
        ("tcp", "off"),
        ("udp", "off"),
        ("tcp", "proxy_protocol_v2"),
    ]


def test_profile_summary_merges_lines_and_counts_runtime_functions_inclusively():
    """Self time is by function whatever the line; inclusive time only for runtime/ functions."""
    raw = [
        "run (runtime/serve.py:10);doPoll (twisted/epollreactor.py:227) 6\n",
        "run (runtime/serve.py:10);send (runtime/udp.py:80);write (twisted/udp.py:273) 3\n",
        "run (runtime/serve.py:10);send (runtime/udp.py:84);write (twisted/udp.py:305) 1\n",
    ]
    rows = profiling.summarize(raw)
    assert ("self", 60.0, "doPoll (twisted/epollreactor.py)") in rows
    assert ("self", 40.0, "write (twisted/udp.py)") in rows
    assert ("inclusive", 100.0, "run (runtime/serve.py)") in rows
    assert ("inclusive", 40.0, "send (runtime/udp.py)") in rows
    assert not [r for r in rows if r[0] == "inclusive" and "twisted" in r[2]]


def test_targets_against_a_reference_an_absolute_bound_and_missing_figures():
    """A ratio target compares with bound x the reference, an absolute one with the
    bound; a figure that was not measured gives no verdict."""
    result = {
        "conn_close": {"haproxy": {"req_s": 10000.0}, "l4plan": {"req_s": 5000.0}},
        "idle_memory": {"l4plan": {"rss_mb": 80.0}},
    }
    outcomes = {target.text: outcome for target, outcome in targets.check_all(result)}
    assert outcomes["new connections/s >= 0.6x HAProxy"] == (5000.0, 10000.0, False)
    assert outcomes["idle connections in < 100 MB"] == (80.0, None, True)
    assert outcomes["TCP bulk 1 stream >= 1.5x HAProxy"] is None
