# -*- test-case-name: tests.runtime.test_runtime_acl -*-
"""The site's IP access rules: priority order, first match wins, no match allows."""

import ipaddress


def _client_ip(host):
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class AccessList:
    """Decides per client address; built once per document, shared by rules."""

    def __init__(self, rules):
        ordered = sorted(rules, key=lambda rule: rule["priority"])
        self._entries = [
            (
                rule["action"] == "allow",
                [ipaddress.ip_network(s, strict=False) for s in rule["sources"]],
            )
            for rule in ordered
        ]

    def allows(self, host):
        """True when the first rule matching ``host`` allows it, or none matches."""
        address = _client_ip(host)
        for allow, networks in self._entries:
            if any(address.version == net.version and address in net for net in networks):
                return allow
        return True
