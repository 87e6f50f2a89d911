"""Live impact in the plan: connections open on changed and removed rules."""

import io

import jsonschema

from l4plan.apply import with_open_connections
from l4plan.diff import diff
from l4plan.render.text import TextRenderer
from l4plan.schema import load_schema


def app(*rules):
    return {
        "name": "app",
        "domain": "app.example.com",
        "ipv6": False,
        "waf_ip_access_control": False,
        "keepalive_protection": False,
        "rules": [
            {
                "protocol": protocol,
                "edge_port": edge,
                "origin_type": "ip",
                "origin": "127.0.0.1",
                "origin_port": origin,
                "client_ip_passthrough": "off",
                "comment": "",
            }
            for protocol, edge, origin in rules
        ],
    }


def test_counts_go_to_changed_and_removed_rules_only():
    """A changed or removed rule gets its count (0 when the provider names none);
    an added rule gets none; the text says what happens to them."""
    before = app(("tcp", "7000", "17000"), ("udp", "7001", "17001"), ("tcp", "7002", "17002"))
    after = app(("tcp", "7000", "17500"), ("tcp", "7003", "17003"), ("tcp", "7002", "17502"))
    plan = diff({"application.app": after}, {"application.app": before})

    counted = with_open_connections(
        plan, {"app/tcp/7000": 3, "app/udp/7001": 1, "other/tcp/7000": 9}
    )

    rules = {r.key: r.open_connections for r in counted.changes[0].rule_changes}
    assert rules == {"tcp/7000": 3, "tcp/7002": 0, "tcp/7003": None, "udp/7001": 1}
    text = io.StringIO()
    TextRenderer(color=False).render(counted, text)
    assert (
        "# live: 3 connections open now, they keep the old rule until they end" in text.getvalue()
    )
    assert (
        "# live: 1 session open now, they end at once (their listener is removed)"
        in text.getvalue()
    )
    assert text.getvalue().count("# live:") == 2


def test_connections_on_a_kept_listener_stay():
    """Adding a port to a rule changes its key, but the runtime keeps the old port's
    listener: the plan says its connections stay, and which ports drain."""
    before = app(("tcp", "7700", "17700"), ("tcp", "7800-7805", "17800"))
    after = app(("tcp", "7700,7709", "17700"), ("tcp", "7800-7801", "17800"))
    counted = with_open_connections(
        diff({"application.app": after}, {"application.app": before}),
        {"app/tcp/7700": 3, "app/tcp/7800-7805": 2},
    )
    kept = {r.key: r.kept_ports for r in counted.changes[0].rule_changes}
    assert kept == {"tcp/7700": "7700", "tcp/7700,7709": None, "tcp/7800-7801": None, "tcp/7800-7805": "7800-7801"}
    text = io.StringIO()
    TextRenderer(color=False).render(counted, text)
    assert (
        "# live: 3 connections open now, they stay open: another rule keeps every "
        "listener, and they keep the old rule until they end" in text.getvalue()
    )
    assert (
        "# live: 2 connections open now, those on 7800-7801 stay open (the listeners "
        "are kept); on the other ports they drain, then close" in text.getvalue()
    )
    jsonschema.validate(counted.to_dict(), load_schema("plan"))


def test_no_counts_leave_the_plan_as_it_was():
    """A provider that reports nothing changes nothing in the plan."""
    plan = diff(
        {"application.app": app(("tcp", "7000", "1"))},
        {"application.app": app(("tcp", "7000", "2"))},
    )
    assert with_open_connections(plan, {}) is plan
    assert "open_connections" not in plan.to_dict()["changes"][0]["rule_changes"][0]
