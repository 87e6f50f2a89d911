"""Plans for the golden tests, built from model objects as a configuration would.

Each scenario gives the plan that ``diff`` makes from its desired, state and
(for drift) refreshed resources, stamped with a fixed lineage, serial and
version so the golden files do not move when l4plan's version does.
"""

import dataclasses

from l4plan.diff import diff, drift, refreshed_state
from l4plan.model import Application, IpAccessRule, LoadBalancer, Origin, Rule, Site
from l4plan.ports import parse_origin_port, parse_port_spec

LINEAGE = "3f2c9a4e-5d1b-4c7a-9e8f-0a1b2c3d4e5f"


def rule(protocol, edge, origin_port, origin="203.0.113.10", **extra):
    return Rule(
        protocol=protocol,
        edge_port=parse_port_spec(edge),
        origin_type=extra.pop("origin_type", "ip"),
        origin=origin,
        origin_port=parse_origin_port(origin_port),
        **extra,
    )


GAME_RULES = (
    rule("tcp", "7000-7010", "17000-17010", comment="match servers"),
    rule("udp", "7000", "7000", client_ip_passthrough="proxy_protocol_v2"),
    rule("tcp", "80", "8000-8003"),
)


def game(**changes):
    app = Application(
        name="game", domain="game.example.com", rules=GAME_RULES, ipv6=True
    )
    return dataclasses.replace(app, **changes)


def chat(**changes):
    app = Application(
        name="chat",
        domain="chat.example.com",
        rules=(
            rule(
                "tcp",
                "6667,6697",
                "6667",
                origin="irc.example.net",
                origin_type="domain",
            ),
        ),
    )
    return dataclasses.replace(app, **changes)


def dns(**changes):
    app = Application(
        name="dns", domain="dns.example.com", rules=(rule("udp", "53", "5353"),)
    )
    return dataclasses.replace(app, **changes)


def resources(*objects):
    return dict(sorted((f"{o.address_type}.{o.name}", o.to_dict()) for o in objects))


def _stamp(plan):
    return dataclasses.replace(
        plan, lineage=LINEAGE, serial=7, l4plan_version="0.0.0-test"
    )


def create():
    return _stamp(diff(resources(game()), {}))


def update():
    changed_rules = (
        rule("udp", "7000", "7000", client_ip_passthrough="proxy_protocol_v2"),
        rule("tcp", "7000-7010", "27000-27010", comment="match servers"),
        rule("udp", "53", "5353"),
    )
    desired = resources(game(ipv6=False, rules=changed_rules))
    return _stamp(diff(desired, resources(game())))


def delete():
    return _stamp(diff(resources(game()), resources(game(), chat())))


def replace():
    desired = resources(game(domain="play.example.com"))
    return _stamp(diff(desired, resources(game())))


def no_op():
    reordered = game(rules=tuple(reversed(GAME_RULES)))
    return _stamp(diff(resources(reordered), resources(game())))


def drifted():
    state = resources(game(), chat())
    read = resources(game(keepalive_protection=True))
    for attributes in read.values():
        del attributes["prevent_destroy"]  # a lifecycle setting: no provider reports it
    current = refreshed_state(state, read)
    return _stamp(diff(state, current, drift(state, read)))


SITE = Site(name="example.com", plan="enterprise", ddos_full_protection=True)
POOL = LoadBalancer(
    name="game-pool",
    algorithm="round_robin",
    origins=(Origin("192.0.2.10", 2), Origin("192.0.2.11")),
)
SCANNERS = IpAccessRule(
    name="block-scanners", action="deny", sources=("198.51.100.0/24",), priority=10
)


def mixed():
    state = resources(SITE, POOL, game(), chat(), dns())
    read = resources(game(), dns(ipv6=True))
    pool = dataclasses.replace(POOL, algorithm="least_connections")
    desired = resources(
        SITE,
        pool,
        SCANNERS,
        game(waf_ip_access_control=True),
        dns(domain="ns.example.com"),
    )
    current = refreshed_state(state, read)
    return _stamp(diff(desired, current, drift(state, read)))


SCENARIOS = {
    "create": create,
    "update": update,
    "delete": delete,
    "replace": replace,
    "no_op": no_op,
    "drift": drifted,
    "mixed": mixed,
}
