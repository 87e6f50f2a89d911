"""``ip_access_rule`` blocks: the WAF's allow and block lists."""

import ipaddress

from l4plan.model import IpAccessRule


def check_ip_access_rule(report, name, body):
    path = ("ip_access_rule", name)
    sources = tuple(_network(report, path + ("sources", i), s) for i, s in enumerate(body["sources"]))
    return IpAccessRule(name, body["action"], sources, body["priority"])


def _network(report, path, text):
    """``text`` as a network in canonical form; a host-bits typo is reported with the fix."""
    try:
        return str(ipaddress.ip_network(text))
    except ValueError:
        pass
    try:
        fixed = ipaddress.ip_network(text, strict=False)
    except ValueError:
        report.error(path, f'"{text}" is not an IP address or CIDR', 'Write an address ("192.0.2.1", "2001:db8::1") or a network ("198.51.100.0/24").')
        return text
    report.error(path, f'"{text}" has host bits set', f'Did you mean "{fixed}"?')
    return text
