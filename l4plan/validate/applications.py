"""``application`` blocks: a domain inside the site, its options, its rules."""

from l4plan.model import Application
from l4plan.validate.addresses import is_host_name
from l4plan.validate.rules import check_rule

_OTHER_SERVICES = {
    "layer7_domains": "Layer 7 (HTTP) service",
    "load_balancing_domains": "load balancing service",
    "edge_function_domains": "edge function",
}


def check_application(report, name, body, site, lb_names):
    path = ("application", name)
    domain = body["domain"].lower()
    _check_domain(report, path + ("domain",), domain, site)
    if body.get("keepalive_protection") and site:
        _check_keepalive(report, path + ("keepalive_protection",), site)
    rules = tuple(
        check_rule(report, path + ("rule", index), rule, lb_names) for index, rule in enumerate(body["rule"])
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


def _check_domain(report, path, domain, site):
    if not is_host_name(domain):
        report.error(path, f'"{domain}" is not a valid host name', "Use letters, digits and hyphens in dot-separated labels, e.g. game.example.com.")
        return
    if site is None:
        return
    if domain != site.name and not domain.endswith("." + site.name):
        report.error(path, f'"{domain}" is not inside the site\'s zone "{site.name}"', f'Use a name that ends in ".{site.name}".')
    for attribute, service in _OTHER_SERVICES.items():
        if domain in (d.lower() for d in getattr(site, attribute)):
            report.error(
                path,
                f'"{domain}" is already used by a {service} (site.{site.name}.{attribute})',
                "Pick another domain; a domain serves one kind of service.",
            )


def _check_keepalive(report, path, site):
    if not site.ddos_full_protection:
        report.error(path, "keepalive_protection needs ddos_full_protection on the site", f'Set ddos_full_protection = true in site "{site.name}", or turn keepalive_protection off.')
    for attribute in ("china_mainland_network_optimization", "fixed_ipv4"):
        if getattr(site, attribute):
            report.error(path, f"keepalive_protection cannot be combined with the site's {attribute}", f'Turn off {attribute} in site "{site.name}", or turn keepalive_protection off.')
