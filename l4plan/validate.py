"""Validation: the config schema for structure, then every product rule in Python.

``validate_document`` returns the typed model and every diagnostic at once;
``load_config`` is the whole front of the pipeline (files → variables →
schema → rules → model) and raises ConfigError when anything is wrong.
"""

import ipaddress
from functools import lru_cache

from l4plan.config.loader import load_directory
from l4plan.config.variables import VariableInputs, resolve
from l4plan.diagnostics import ConfigError, errors_of
from l4plan.model import (
    DEFAULT_BACKEND,
    DEFAULT_PROVIDER,
    Application,
    Config,
    HealthCheck,
    IpAccessRule,
    LoadBalancer,
    Location,
    Origin,
    Rule,
    Settings,
    Site,
)
from l4plan.names import HOST_NAME_RE
from l4plan.ports import (
    PORT_FORMS,
    PortError,
    map_ports,
    parse_origin_port,
    parse_port_spec,
)
from l4plan.schema import check_structure

_OTHER_SERVICES = {
    "layer7_domains": "Layer 7 (HTTP) service",
    "load_balancing_domains": "load balancing service",
    "edge_function_domains": "edge function",
}


def load_config(directory, inputs=VariableInputs()):
    """Load, resolve and validate a configuration directory into a Config."""
    document = resolve(load_directory(directory), inputs)
    config, diagnostics = validate_document(document)
    if errors_of(diagnostics):
        raise ConfigError(diagnostics)
    return config


def validate_document(document):
    """``(Config or None, diagnostics)`` for a resolved document."""
    diagnostics, broken = check_structure(document)
    checker = _Checker(document, broken)
    config = checker.build()
    diagnostics = sorted(diagnostics + checker.diagnostics, key=lambda d: (d.filename, d.line, d.column))
    return (None if errors_of(diagnostics) else config), diagnostics


def is_host_name(text):
    """A DNS host name; all-digit labels (``10.0.0``) are a mistyped address."""
    return isinstance(text, str) and bool(HOST_NAME_RE.fullmatch(text.lower())) and not looks_numeric(text)


def looks_numeric(text):
    """A dotted name whose labels are all digits: meant as an IPv4 address."""
    labels = text.split(".")
    return all(label.isascii() and label.isdigit() for label in labels)


def infer_origin_type(origin, lb_names):
    """The origin_type of an origin written without one: a declared load
    balancer's name wins, then an IP address, else a host name."""
    if origin in lb_names:
        return "load_balancer"
    return "ip" if is_ip(origin) else "domain"


def _is_local(address):
    """Loopback or unspecified: where a runtime on this host listens."""
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or ip.is_unspecified


@lru_cache(maxsize=4096)
def is_ip(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class _Checker:
    """Walks the schema-valid objects of a document, building the model and
    collecting every rule violation."""

    def __init__(self, document, broken):
        self.document = document
        self.broken = broken
        self.diagnostics = []

    def error(self, path, summary, detail):
        self.diagnostics.append(self.document.diagnostic(path, summary, detail))

    def blocks(self, block_type):
        """``(label, body)`` of the schema-valid blocks of one type."""
        if (block_type,) in self.broken:
            return []
        blocks = self.document.data.get(block_type) or {}
        return [(k, v) for k, v in blocks.items() if (block_type, k) not in self.broken]

    def build(self):
        site = self.site()
        lbs = tuple(self.load_balancer(name, body) for name, body in self.blocks("load_balancer"))
        acl = tuple(self.ip_access_rule(name, body) for name, body in self.blocks("ip_access_rule"))
        lb_names = {lb.name for lb in lbs} | set((self.document.data.get("load_balancer") or {}))
        apps = tuple(self.application(name, body, site, lb_names) for name, body in self.blocks("application"))
        self.check_unique_domains(apps)
        self.check_unique_edge_ports(apps)
        self.check_not_self_pointing(apps)
        return Config(
            site=site,
            applications=apps,
            load_balancers=lbs,
            ip_access_rules=tuple(sorted(acl, key=lambda r: (r.priority, r.name))),
            provider=self.settings("provider", DEFAULT_PROVIDER),
            backend=self.settings("backend", DEFAULT_BACKEND),
            locator=self.locate,
        )

    def locate(self, address):
        """The Location of a block by address, looked up only when asked."""
        position = self.document.positions.get(tuple(address.split(".", 1)))
        return Location(*position[:2]) if position else None

    def settings(self, block_type, default):
        blocks = self.blocks(block_type)
        if not blocks:
            return default
        kind, attributes = blocks[0]
        base = default.attributes if kind == default.kind else {}
        return Settings(kind, {**base, **attributes})

    # --- site ---------------------------------------------------------------

    def site(self):
        blocks = self.blocks("site")
        if len(blocks) != 1:
            return None
        name, body = blocks[0]
        path = ("site", name)
        if not is_host_name(name) or "." not in name:
            self.error(path, f'site "{name}" is not a domain name', 'Name the site after its zone, e.g. site "example.com".')
        if body["plan"] != "enterprise":
            self.error(
                path + ("plan",),
                f'Layer 4 proxy needs the Enterprise plan; this site is on "{body["plan"]}"',
                'Upgrade the site to the Enterprise plan and set plan = "enterprise".',
            )
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in body.items()}
        return Site(name=name.lower(), **fields)

    # --- ip access rules and load balancers ---------------------------------

    def ip_access_rule(self, name, body):
        path = ("ip_access_rule", name)
        sources = tuple(self.network(path + ("sources", i), s) for i, s in enumerate(body["sources"]))
        return IpAccessRule(name, body["action"], sources, body["priority"])

    def network(self, path, text):
        try:
            return str(ipaddress.ip_network(text))
        except ValueError:
            pass
        try:
            fixed = ipaddress.ip_network(text, strict=False)
        except ValueError:
            self.error(path, f'"{text}" is not an IP address or CIDR', 'Write an address ("192.0.2.1", "2001:db8::1") or a network ("198.51.100.0/24").')
            return text
        self.error(path, f'"{text}" has host bits set', f'Did you mean "{fixed}"?')
        return text

    def load_balancer(self, name, body):
        path = ("load_balancer", name)
        origins = []
        for index, origin in enumerate(body["origin"]):
            address = origin["address"]
            if not (is_ip(address) or is_host_name(address)):
                self.error(path + ("origin", index, "address"), f'"{address}" is not an IP address or host name', "Write the origin server's IP address or DNS name.")
            origins.append(Origin(address, origin.get("weight", 1)))
        check = body.get("health_check")
        health_check = HealthCheck(**check) if check is not None else None
        if health_check and health_check.timeout >= health_check.interval:
            self.error(
                path + ("health_check", "timeout"),
                f"health check timeout ({health_check.timeout}s) must be shorter than its interval ({health_check.interval}s)",
                "Lower timeout or raise interval.",
            )
        return LoadBalancer(name, body.get("algorithm", "round_robin"), tuple(origins), health_check)

    # --- applications -------------------------------------------------------

    def application(self, name, body, site, lb_names):
        path = ("application", name)
        domain = body["domain"].lower()
        self.check_domain(path + ("domain",), domain, site)
        if body.get("keepalive_protection") and site:
            self.check_keepalive(path + ("keepalive_protection",), site)
        rules = tuple(
            self.rule(path + ("rule", index), rule, lb_names) for index, rule in enumerate(body["rule"])
        )
        return Application(
            name=name,
            domain=domain,
            rules=rules,
            ipv6=body.get("ipv6", False),
            waf_ip_access_control=body.get("waf_ip_access_control", False),
            keepalive_protection=body.get("keepalive_protection", False),
            prevent_destroy=(body.get("lifecycle") or {}).get("prevent_destroy", False),
        )

    def check_domain(self, path, domain, site):
        if not is_host_name(domain):
            self.error(path, f'"{domain}" is not a valid host name', "Use letters, digits and hyphens in dot-separated labels, e.g. game.example.com.")
            return
        if site is None:
            return
        if domain != site.name and not domain.endswith("." + site.name):
            self.error(path, f'"{domain}" is not inside the site\'s zone "{site.name}"', f'Use a name that ends in ".{site.name}".')
        for attribute, service in _OTHER_SERVICES.items():
            if domain in (d.lower() for d in getattr(site, attribute)):
                self.error(
                    path,
                    f'"{domain}" is already used by a {service} (site.{site.name}.{attribute})',
                    "Pick another domain; a domain serves one kind of service.",
                )

    def check_keepalive(self, path, site):
        if not site.ddos_full_protection:
            self.error(path, "keepalive_protection needs ddos_full_protection on the site", f'Set ddos_full_protection = true in site "{site.name}", or turn keepalive_protection off.')
        for attribute in ("china_mainland_network_optimization", "fixed_ipv4"):
            if getattr(site, attribute):
                self.error(path, f"keepalive_protection cannot be combined with the site's {attribute}", f'Turn off {attribute} in site "{site.name}", or turn keepalive_protection off.')

    def rule(self, path, body, lb_names):
        protocol = body["protocol"]
        edge = self.ports(path + ("edge_port",), body["edge_port"], parse_port_spec)
        origin_port = self.ports(path + ("origin_port",), body["origin_port"], parse_origin_port)
        mapping = self.mapping(path, edge, origin_port)
        passthrough = body.get("client_ip_passthrough", "off")
        self.check_passthrough(path + ("client_ip_passthrough",), protocol, passthrough)
        origin = body["origin"]
        origin_type = body.get("origin_type") or infer_origin_type(origin, lb_names)
        if "origin_type" not in body and looks_numeric(origin) and not is_ip(origin):
            self.error(path + ("origin",), f'"{origin}" is not a valid IP address', "An IPv4 address is four numbers 0-255, such as 192.0.2.10; a host name needs a label that is not all digits.")
        else:
            self.check_origin(path, origin_type, origin, lb_names)
        return Rule(protocol, edge, origin_type, origin, origin_port, passthrough, body.get("comment", ""), mapping)

    def ports(self, path, value, parse):
        try:
            return parse(value)
        except PortError as error:
            self.error(path, f"{path[-1]} {str(value)!r}: {error}", f"{PORT_FORMS}.")
            return None

    def mapping(self, path, edge, origin):
        if edge is None or origin is None:
            return ()
        try:
            return map_ports(edge, origin)
        except PortError as error:
            self.error(
                path + ("origin_port",),
                f'edge port "{edge}" cannot map to origin port "{origin}": {error}',
                f'Use one origin port, or a range of {len(edge)} ports such as "{origin.ranges[0].first}-{origin.ranges[0].first + len(edge) - 1}".',
            )
            return ()

    def check_passthrough(self, path, protocol, mode):
        allowed_on = {"proxy_protocol_v1": "tcp", "simple_proxy_protocol": "udp"}
        if allowed_on.get(mode, protocol) != protocol:
            self.error(
                path,
                f"{mode} works only with {allowed_on[mode]}, and this rule is {protocol}",
                "Use proxy_protocol_v2 (TCP and UDP) or off, or change the protocol.",
            )

    def check_origin(self, path, origin_type, origin, lb_names):
        where = path + ("origin",)
        if origin_type == "ip" and not is_ip(origin):
            self.error(where, f'"{origin}" is not an IP address (origin_type = "ip")', 'Write an IPv4/IPv6 address, or set origin_type = "domain" for a host name.')
        elif origin_type in ("domain", "object_storage") and not is_host_name(origin):
            self.error(where, f'"{origin}" is not a valid host name (origin_type = "{origin_type}")', "Write a DNS name such as origin.example.net.")
        elif origin_type == "load_balancer" and origin not in lb_names:
            known = ", ".join(sorted(lb_names)) or "none declared"
            self.error(where, f'no load_balancer named "{origin}"', f'Declare load_balancer "{origin}" {{ … }} or use one of: {known}.')

    # --- across applications -------------------------------------------------

    def check_unique_domains(self, apps):
        seen = {}
        for app in apps:
            if app.domain in seen:
                self.error(("application", app.name, "domain"), f'domain "{app.domain}" is also used by application.{seen[app.domain]}', "Each application needs its own domain.")
            seen.setdefault(app.domain, app.name)

    def check_unique_edge_ports(self, apps):
        """Overlapping edge ranges of one protocol, found by one sweep over sorted ranges."""
        spans = sorted(
            (port_range.first, port_range.last, rule.protocol, app.name, index, rule)
            for app in apps
            for index, rule in enumerate(app.rules)
            if rule.edge_port is not None
            for port_range in rule.edge_port.ranges
        )
        reach = {}
        for first, last, protocol, app_name, index, rule in spans:
            holder = reach.get(protocol)
            if holder and first <= holder[1]:
                self.report_port_clash(protocol, first, (app_name, index, rule), holder[2])
            if not holder or last > holder[1]:
                reach[protocol] = (first, last, (app_name, index, rule))

    def check_not_self_pointing(self, apps):
        """A loopback origin on one of the configuration's own edge ports is the
        runtime itself: one client would chain connections until no descriptor is left."""
        edges = {}
        for app in apps:
            for rule in app.rules:
                if rule.edge_port is not None:
                    for port in rule.edge_port.ports():
                        edges.setdefault((rule.protocol, port), (app.name, rule.key))
        for app in apps:
            for index, rule in enumerate(app.rules):
                if rule.origin_port is None or not (is_ip(rule.origin) and _is_local(rule.origin)):
                    continue
                hit = next((p for p in rule.origin_port.ports() if (rule.protocol, p) in edges), None)
                if hit is not None:
                    owner, key = edges[(rule.protocol, hit)]
                    self.error(
                        ("application", app.name, "rule", index, "origin_port"),
                        f"origin {rule.origin}:{hit} is {rule.protocol} edge port {hit} of "
                        f"application.{owner} rule {key}: the runtime would connect to itself",
                        "Point the rule at the origin server's own address and port.",
                    )

    def report_port_clash(self, protocol, port, this, other):
        app_name, index, rule = this
        other_app, other_index, other_rule = other
        other_where = self.document.locate(("application", other_app, "rule", other_index))
        self.error(
            ("application", app_name, "rule", index, "edge_port"),
            f"{protocol} edge port {port} of application.{app_name} rule {rule.key} is also used by "
            f"application.{other_app} rule {other_rule.key} ({other_where[0]}:{other_where[1]})",
            "An edge port serves one rule: pick another port, or merge the two rules.",
        )
