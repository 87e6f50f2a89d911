# -*- test-case-name: tests.runtime.test_runtime_serve -*-
"""From a runtime document to listeners: which socket serves which rule.

A listener is keyed by (protocol, address, port). Its L{Route} is mutable on
purpose: a reconcile can give a live socket a new rule, and new connections
use it at once while established ones keep what they chose.
"""

from dataclasses import dataclass

from l4plan.runtime import origins
from l4plan.runtime.acl import AccessList


@dataclass(frozen=True)
class ListenerKey:
    protocol: str
    address: str
    port: int

    def __str__(self):
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.protocol} {host}:{self.port}"


@dataclass(frozen=True)
class Rule:
    """One rule of one application, as the data path needs it."""

    key: str
    protocol: str
    passthrough: str
    keepalive: bool
    acl: AccessList | None
    origin: object  # FixedOrigin, HostOrigin or LoadBalancer: pick() and attempts
    counters: object  # RuleCounters, shared by every listener of the rule


class Route:
    """The rule a listener serves now and the origin ports of its edge port."""

    def __init__(self, rule, origin_ports):
        self.rule = rule
        self.origin_ports = tuple(origin_ports)
        self._turn = 0

    def next_origin_port(self):
        """The origin port for a new connection: round-robin when several."""
        port = self.origin_ports[self._turn % len(self.origin_ports)]
        self._turn += 1
        return port


@dataclass
class Compiled:
    routes: dict  # ListenerKey -> Route
    health_checks: list  # (LoadBalancer, probe port)


def _origin(rule, balancers, hosts):
    if rule["origin_type"] == "load_balancer":
        return balancers[rule["origin"]]
    if rule["origin_type"] == "ip":
        return origins.FixedOrigin(rule["origin"])
    return origins.HostOrigin(rule["origin"], hosts)


def compile_document(document, bind, bind6, hosts, metrics):
    """Routes for every edge port of every rule, on C{bind} (and C{bind6})."""
    balancers = {
        name: origins.LoadBalancer(spec, hosts) for name, spec in document["load_balancers"].items()
    }
    access = AccessList(document["ip_access_rules"])
    routes, probe_ports = {}, {}
    for app_name, app in document["applications"].items():
        addresses = [bind, bind6] if app["ipv6"] else [bind]
        for spec in app["rules"]:
            key = f"{app_name}/{spec['protocol']}/{spec['edge_port']}"
            rule = Rule(
                key,
                spec["protocol"],
                spec["client_ip_passthrough"],
                app["keepalive_protection"],
                access if app["waf_ip_access_control"] else None,
                _origin(spec, balancers, hosts),
                metrics.for_rule(key),
            )
            for mapping in spec["ports"]:
                for address in addresses:
                    routes[ListenerKey(spec["protocol"], address, mapping["edge"])] = Route(
                        rule, mapping["origin"]
                    )
                if spec["origin_type"] == "load_balancer" and spec["protocol"] == "tcp":
                    name = spec["origin"]
                    probe_ports[name] = min([probe_ports.get(name, 65536), *mapping["origin"]])
    checks = [
        (balancers[name], port)
        for name, port in sorted(probe_ports.items())
        if balancers[name].health_check is not None
    ]
    return Compiled(routes, checks)
