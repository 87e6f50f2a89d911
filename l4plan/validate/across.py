"""The rules that span applications: one domain, one edge port each, and no
rule pointing back at the runtime's own edge ports."""

from l4plan.validate.addresses import is_ip, is_local


def check_unique_domains(report, apps):
    seen: dict[str, str] = {}
    for app in apps:
        if app.domain in seen:
            report.error(("application", app.name, "domain"), f'domain "{app.domain}" is also used by application.{seen[app.domain]}', "Each application needs its own domain.")
        seen.setdefault(app.domain, app.name)


def check_unique_edge_ports(report, apps):
    """Overlapping edge ranges of one protocol, found by one sweep over sorted ranges."""
    spans = sorted(
        (port_range.first, port_range.last, rule.protocol, app.name, index, rule)
        for app in apps
        for index, rule in enumerate(app.rules)
        if rule.edge_port is not None
        for port_range in rule.edge_port.ranges
    )
    reach: dict[str, tuple] = {}
    for first, last, protocol, app_name, index, rule in spans:
        holder = reach.get(protocol)
        if holder and first <= holder[1]:
            _report_port_clash(report, protocol, first, (app_name, index, rule), holder[2])
        if not holder or last > holder[1]:
            reach[protocol] = (first, last, (app_name, index, rule))


def check_not_self_pointing(report, apps):
    """A loopback origin on one of the configuration's own edge ports is the
    runtime itself: one client would chain connections until no descriptor is left."""
    edges: dict[tuple[str, int], tuple[str, str]] = {}
    for app in apps:
        for rule in app.rules:
            if rule.edge_port is not None:
                for port in rule.edge_port.ports():
                    edges.setdefault((rule.protocol, port), (app.name, rule.key))
    for app in apps:
        for index, rule in enumerate(app.rules):
            if rule.origin_port is None or not (is_ip(rule.origin) and is_local(rule.origin)):
                continue
            hit = next((p for p in rule.origin_port.ports() if (rule.protocol, p) in edges), None)
            if hit is not None:
                owner, key = edges[(rule.protocol, hit)]
                report.error(
                    ("application", app.name, "rule", index, "origin_port"),
                    f"origin {rule.origin}:{hit} is {rule.protocol} edge port {hit} of "
                    f"application.{owner} rule {key}: the runtime would connect to itself",
                    "Point the rule at the origin server's own address and port.",
                )


def _report_port_clash(report, protocol, port, this, other):
    app_name, index, rule = this
    other_app, other_index, other_rule = other
    other_where = report.document.locate(("application", other_app, "rule", other_index))
    report.error(
        ("application", app_name, "rule", index, "edge_port"),
        f"{protocol} edge port {port} of application.{app_name} rule {rule.key} is also used by "
        f"application.{other_app} rule {other_rule.key} ({other_where[0]}:{other_where[1]})",
        "An edge port serves one rule: pick another port, or merge the two rules.",
    )
