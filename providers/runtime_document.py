"""The runtime document: what the ``runtime`` provider sends to a runtime.

Built from the desired resources (``Config.resources()`` or a saved plan's);
every rule carries its expanded edge-port → origin-port mapping so the
runtime never re-derives it. ``schemas/runtime.schema.json`` describes it.
"""

from l4plan.ports import mapping_of
from l4plan.providers.base import ProviderError

FORMAT_VERSION = 1
_SITE_FLAGS = ("ddos_full_protection", "china_mainland_network_optimization", "fixed_ipv4")
_APPLICATION_FLAGS = ("ipv6", "waf_ip_access_control", "keepalive_protection")


def build_document(resources):
    """``{address: attributes}`` → the runtime document."""
    by_kind: dict[str, list] = {}
    for address, attributes in resources.items():
        by_kind.setdefault(address.partition(".")[0], []).append(attributes)
    sites = by_kind.get("site", [])
    return {
        "format_version": FORMAT_VERSION,
        "site": _site(sites[0]) if sites else None,
        "ip_access_rules": sorted(
            (_ip_access_rule(a) for a in by_kind.get("ip_access_rule", [])),
            key=lambda r: (r["priority"], r["name"]),
        ),
        "load_balancers": {a["name"]: _load_balancer(a) for a in by_kind.get("load_balancer", [])},
        "applications": {a["name"]: _application(a) for a in by_kind.get("application", [])},
    }


def _site(attributes):
    return {"name": attributes["name"], **{k: attributes[k] for k in _SITE_FLAGS}}


def _ip_access_rule(attributes):
    return {k: attributes[k] for k in ("name", "action", "sources", "priority")}


def _load_balancer(attributes):
    return {k: attributes[k] for k in ("algorithm", "origins", "health_check")}


def _application(attributes):
    return {
        "domain": attributes["domain"],
        **{k: attributes[k] for k in _APPLICATION_FLAGS},
        "rules": [_rule(rule) for rule in attributes["rules"]],
    }


def _rule(rule):
    mapping = mapping_of(rule["edge_port"], rule["origin_port"])
    return {**rule, "ports": [{"edge": m.edge, "origin": list(m.origin)} for m in mapping]}


def read_document(document):
    """The runtime document → ``{address: attributes}`` as state records them."""
    resources = {}
    for name, rule in ((r["name"], r) for r in document.get("ip_access_rules", [])):
        resources[f"ip_access_rule.{name}"] = _ip_access_rule(rule)
    for name, lb in document.get("load_balancers", {}).items():
        resources[f"load_balancer.{name}"] = {"name": name, **_load_balancer(lb)}
    for name, app in document.get("applications", {}).items():
        rules = [{k: v for k, v in rule.items() if k != "ports"} for rule in app["rules"]]
        resources[f"application.{name}"] = {
            "name": name,
            "domain": app["domain"],
            **{k: app[k] for k in _APPLICATION_FLAGS},
            "rules": rules,
        }
    return resources


def check_unchanged_since(plan, running, reads, where):
    """Refuse when ``running`` is no longer what the plan's "before" side shows.

    Objects are compared under their name on the target (the "before" name:
    a ``state mv`` renames them only here); unmanaged ones are not the
    plan's business. ``where`` names the target in the message.
    """
    expected = {
        f"{c.kind}.{c.before['name']}": c.before
        for c in plan.changes
        if c.before is not None and c.kind in reads
    }
    managed = running.keys() - set(plan.unmanaged)
    for address in sorted(expected.keys() | managed):
        seen = running.get(address)
        before = expected.get(address)
        if seen is None or before is None or any(before.get(k) != v for k, v in seen.items()):
            raise ProviderError(
                f"{address} on {where} differs from what the plan was made against "
                "(changed outside of l4plan since); run plan again"
            )
