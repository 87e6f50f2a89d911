"""`l4plan apply` against a runtime of two worker processes: both get every change."""

import sys
from collections import Counter

import pytest

from l4plan.providers.admin_client import AdminClient
from tests.live.conftest import application
from tests.live.load import tcp_exchange
from tests.runtime.runtime_helpers import free_ports, udp_exchange

pytestmark = pytest.mark.processes

ADMIN = "unix:.l4plan/runtime.sock"


def applied(project, *blocks):
    project.write(*blocks)
    result = project.l4plan("apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr


def test_apply_reaches_every_worker(project, ready_process, tagged_origin):
    """After an apply, 50 new TCP connections and 50 new UDP clients all reach the
    new origin, and both workers served some of them."""
    tcp_edge, udp_edge, old, new = free_ports(4)
    tagged_origin(old, new)
    serve = [sys.executable, "-m", "l4plan", "runtime", "serve", "--workers", "2"]
    ready_process([*serve, "--admin", ADMIN, "--drain-timeout", "1"], "runtime.stderr")

    def app(origin):
        return application("app", ("tcp", tcp_edge, origin, "off"), ("udp", udp_edge, origin, "proxy_protocol_v2"))

    applied(project, app(old))
    assert Counter(tcp_exchange(tcp_edge, f"c{i}") for i in range(20)) == {f"{old} off": 20}
    applied(project, app(new))

    assert Counter(tcp_exchange(tcp_edge, f"c{i}") for i in range(50)) == {f"{new} off": 50}
    udp = Counter(udp_exchange("127.0.0.1", udp_edge, [b"x"])[0][0] for _ in range(50))
    assert udp == {f"{new} v2 x".encode(): 50}
    workers = AdminClient(ADMIN).request("GET", "/v1/status").body["workers"]
    assert [w["opened"] > 0 for w in workers] == [True, True]
    status = project.l4plan("runtime", "status").stdout
    assert f"  1: pid {workers[1]['pid']}, alive, generation {workers[1]['generation']}" in status
