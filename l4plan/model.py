"""The desired model: typed, validated value objects built from a configuration.

Everything here is frozen. ``Config.resources()`` gives the JSON-ready
attributes per address, which is what the diff compares with state and what
state records.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from l4plan.ports import PortSpec
from l4plan.schema import block_defaults


def rule_key(protocol, edge_port):
    """How a rule is known across plans (``tcp/7000-7010``): reordering rules
    changes nothing. The runtime reports it as ``APP/`` + this key
    (runtime.schema.json says so on its side)."""
    return f"{protocol}/{edge_port}"


def served_key(application, key):
    """A rule of ``application`` as the runtime's status and metrics name it."""
    return f"{application}/{key}"


@dataclass(frozen=True)
class Location:
    """Where something was written: file and line (1-based; 0 when unknown)."""

    filename: str
    line: int = 0

    def __str__(self):
        return f"{self.filename}:{self.line}" if self.line else self.filename


@dataclass(frozen=True)
class Site:
    name: str
    plan: str
    ddos_full_protection: bool = False
    china_mainland_network_optimization: bool = False
    fixed_ipv4: bool = False
    layer7_domains: tuple[str, ...] = ()
    load_balancing_domains: tuple[str, ...] = ()
    edge_function_domains: tuple[str, ...] = ()

    address_type = "site"

    def to_dict(self):
        return {
            "name": self.name,
            "plan": self.plan,
            "ddos_full_protection": self.ddos_full_protection,
            "china_mainland_network_optimization": self.china_mainland_network_optimization,
            "fixed_ipv4": self.fixed_ipv4,
            "layer7_domains": list(self.layer7_domains),
            "load_balancing_domains": list(self.load_balancing_domains),
            "edge_function_domains": list(self.edge_function_domains),
        }


@dataclass(frozen=True)
class IpAccessRule:
    name: str
    action: str
    sources: tuple[str, ...]
    priority: int

    address_type = "ip_access_rule"

    def to_dict(self):
        return {
            "name": self.name,
            "action": self.action,
            "sources": list(self.sources),
            "priority": self.priority,
        }


@dataclass(frozen=True)
class Origin:
    address: str
    weight: int = 1

    def to_dict(self):
        return {"address": self.address, "weight": self.weight}


@dataclass(frozen=True)
class HealthCheck:
    interval: int = 5
    timeout: int = 2
    unhealthy_threshold: int = 3
    healthy_threshold: int = 2

    def to_dict(self):
        return {
            "interval": self.interval,
            "timeout": self.timeout,
            "unhealthy_threshold": self.unhealthy_threshold,
            "healthy_threshold": self.healthy_threshold,
        }


@dataclass(frozen=True)
class LoadBalancer:
    name: str
    algorithm: str
    origins: tuple[Origin, ...]
    health_check: HealthCheck | None = None

    address_type = "load_balancer"

    def to_dict(self):
        return {
            "name": self.name,
            "algorithm": self.algorithm,
            "origins": [o.to_dict() for o in self.origins],
            "health_check": self.health_check.to_dict() if self.health_check else None,
        }


@dataclass(frozen=True)
class Rule:
    """One edge-port rule (its mapping: ``ports.mapping_of``)."""

    protocol: str
    edge_port: PortSpec
    origin_type: str
    origin: str
    origin_port: PortSpec
    client_ip_passthrough: str = "off"
    comment: str = ""

    @property
    def key(self):
        return rule_key(self.protocol, self.edge_port)

    def to_dict(self):
        return {
            "protocol": self.protocol,
            "edge_port": str(self.edge_port),
            "origin_type": self.origin_type,
            "origin": self.origin,
            "origin_port": str(self.origin_port),
            "client_ip_passthrough": self.client_ip_passthrough,
            "comment": self.comment,
        }


@dataclass(frozen=True)
class Application:
    name: str
    domain: str
    rules: tuple[Rule, ...]
    ipv6: bool = False
    waf_ip_access_control: bool = False
    keepalive_protection: bool = False
    prevent_destroy: bool = False

    address_type = "application"

    def to_dict(self):
        return {
            "name": self.name,
            "domain": self.domain,
            "ipv6": self.ipv6,
            "waf_ip_access_control": self.waf_ip_access_control,
            "keepalive_protection": self.keepalive_protection,
            "prevent_destroy": self.prevent_destroy,
            "rules": [r.to_dict() for r in self.rules],
        }


@dataclass(frozen=True)
class Settings:
    """A ``provider`` or ``backend`` block: its kind and its attributes."""

    kind: str
    attributes: dict = field(default_factory=dict, hash=False)


#: The directory, beside the configuration, of what the embedded default makes:
#: the local runtime's socket, token, data, pid file and log.
DATA_DIR = ".l4plan"
PID_FILE = "runtime.pid"  # in DATA_DIR: the pid of the runtime l4plan started there
#: The embedded defaults: a local runtime and a local state file, with the
#: settings the configuration schema gives those blocks (their one home).
DEFAULT_PROVIDER = Settings("runtime", block_defaults("provider", "runtime"))
DEFAULT_BACKEND = Settings("local", block_defaults("backend", "local"))


@dataclass(frozen=True)
class Config:
    """A whole validated configuration directory."""

    site: Site
    applications: tuple[Application, ...] = ()
    load_balancers: tuple[LoadBalancer, ...] = ()
    ip_access_rules: tuple[IpAccessRule, ...] = ()
    provider: Settings = DEFAULT_PROVIDER
    backend: Settings = DEFAULT_BACKEND
    locator: Callable[[str], Location | None] | None = field(default=None, hash=False, compare=False, repr=False)

    def objects(self):
        """Every addressable object: the site, rules, load balancers, applications."""
        return (self.site, *self.ip_access_rules, *self.load_balancers, *self.applications)

    def resources(self):
        """Attributes by address (``application.game``), sorted by address."""
        pairs = ((f"{o.address_type}.{o.name}", o.to_dict()) for o in self.objects())
        return dict(sorted(pairs))

    def location(self, address):
        """Where the object at ``address`` is declared (a Location, or None)."""
        return self.locator(address) if self.locator else None
