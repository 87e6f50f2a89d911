"""Helpers shared by the runtime tests: documents, ports, processes."""

import copy


def make_rule(edge_port, ports, origin="127.0.0.1", protocol="tcp", origin_type="ip",
              passthrough="off", origin_port=None):
    """A runtime-document rule; C{ports} is [(edge, [origin, ...]), ...]."""
    return {
        "protocol": protocol,
        "edge_port": edge_port,
        "origin_type": origin_type,
        "origin": origin,
        "origin_port": origin_port or str(ports[0][1][0]),
        "client_ip_passthrough": passthrough,
        "comment": "",
        "ports": [{"edge": edge, "origin": list(origins)} for edge, origins in ports],
    }


def make_document(rules, ipv6=False, acl=None, waf=False, load_balancers=None,
                  keepalive=False):
    """A valid runtime document with one application "app" holding C{rules}."""
    return {
        "format_version": 1,
        "site": {
            "name": "example.com",
            "ddos_full_protection": True,
            "china_mainland_network_optimization": False,
            "fixed_ipv4": False,
        },
        "ip_access_rules": copy.deepcopy(acl or []),
        "load_balancers": copy.deepcopy(load_balancers or {}),
        "applications": {
            "app": {
                "domain": "app.example.com",
                "ipv6": ipv6,
                "waf_ip_access_control": waf,
                "keepalive_protection": keepalive,
                "rules": rules,
            }
        },
    }
