# -*- test-case-name: tests.runtime.test_runtime_serve -*-
"""From a runtime document to listeners: which socket serves which rule.

A listener is keyed by (protocol, address, port). Its ``Route`` is mutable on
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


@dataclass(frozen=True)
class CompiledApplication:
    """The routes of one application and what it uses of the shared origins."""

    routes: dict  # ListenerKey -> Route
    balancers: frozenset  # names of the load balancers its rules use
    probes: dict  # load balancer name -> lowest origin port of its TCP rules
    waf: bool  # whether it uses the access list


@dataclass(frozen=True)
class Compiled:
    """A document compiled: routes by application, and the load balancers and
    access list they share (one object each, as health and load are shared)."""

    document: dict
    applications: dict  # name -> CompiledApplication
    balancers: dict  # name -> LoadBalancer
    access: AccessList | None
    health_checks: list  # (LoadBalancer, probe port)

    @property
    def routes(self):
        """Every listener's route: ListenerKey -> Route."""
        return {k: r for app in self.applications.values() for k, r in app.routes.items()}


# Nothing served: its access rules (None) equal no document's, so the first compile builds them.
NOTHING = Compiled(
    {"load_balancers": {}, "ip_access_rules": None, "applications": {}}, {}, {}, None, []
)


def _origin(rule, balancers, hosts):
    if rule["origin_type"] == "load_balancer":
        return balancers[rule["origin"]]
    if rule["origin_type"] == "ip":
        return origins.FixedOrigin(rule["origin"])
    return origins.HostOrigin(rule["origin"], hosts)


def compile_application(name, app, balancers, access, bind, bind6, hosts, metrics):
    """Routes for every edge port of every rule of application ``name``."""
    addresses = [bind, bind6] if app["ipv6"] else [bind]
    routes, probes, used = {}, {}, set()
    for spec in app["rules"]:
        key = f"{name}/{spec['protocol']}/{spec['edge_port']}"
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
        if spec["origin_type"] == "load_balancer":
            used.add(spec["origin"])
            if spec["protocol"] == "tcp":
                lowest = min(port for mapping in spec["ports"] for port in mapping["origin"])
                probes[spec["origin"]] = min(probes.get(spec["origin"], 65536), lowest)
    return CompiledApplication(routes, frozenset(used), probes, app["waf_ip_access_control"])


def health_checks(applications, balancers):
    """(balancer, port) for every checked load balancer: its lowest TCP origin port."""
    probe_ports = {}
    for app in applications.values():
        for name, port in app.probes.items():
            probe_ports[name] = min(probe_ports.get(name, 65536), port)
    return [
        (balancers[name], port)
        for name, port in sorted(probe_ports.items())
        if balancers[name].health_check is not None
    ]


def _unchanged(name, app, previous, balancers, same_access):
    """Whether application ``name`` serves what it served under ``previous``.

    Both documents passed the schema, so Python's ``==`` is exact here.
    """
    old = previous.applications.get(name)
    return (
        old is not None
        and previous.document["applications"][name] == app
        and (same_access or not old.waf)
        and all(balancers.get(b) is previous.balancers[b] for b in old.balancers)
    )


def compile_document(document, bind, bind6, hosts, metrics, previous=NOTHING):
    """Routes for every edge port of every rule, on ``bind`` (and ``bind6``).

    With ``previous``, the ``Compiled`` of the document served now, only what
    changed is compiled: an application keeps its ``CompiledApplication``
    (the Route objects its listeners serve, its Rules and their counters)
    unless it, a load balancer it uses, or the access rules it checks changed.
    """
    balancers = {
        name: (
            previous.balancers[name]
            if previous.document["load_balancers"].get(name) == spec
            else origins.LoadBalancer(spec, hosts)
        )
        for name, spec in document["load_balancers"].items()
    }
    same_access = previous.document["ip_access_rules"] == document["ip_access_rules"]
    access = previous.access if same_access else AccessList(document["ip_access_rules"])
    applications = {
        name: (
            previous.applications[name]
            if _unchanged(name, app, previous, balancers, same_access)
            else compile_application(name, app, balancers, access, bind, bind6, hosts, metrics)
        )
        for name, app in document["applications"].items()
    }
    return Compiled(
        document, applications, balancers, access, health_checks(applications, balancers)
    )
