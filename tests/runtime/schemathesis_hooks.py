"""schemathesis hooks for the admin API run: every origin a generated document
names is put on loopback, so an applied document never sends a health check or
a connection off this machine."""

import schemathesis


def _items(value):
    return value.values() if isinstance(value, dict) else ()


def _list(value):
    return value if isinstance(value, list) else ()


@schemathesis.hook
def map_body(ctx, body):
    if not isinstance(body, dict):
        return body
    for balancer in _items(body.get("load_balancers")):
        for origin in _list(balancer.get("origins") if isinstance(balancer, dict) else None):
            if isinstance(origin, dict) and "address" in origin:
                origin["address"] = "127.0.0.1"
    for app in _items(body.get("applications")):
        for rule in _list(app.get("rules") if isinstance(app, dict) else None):
            if isinstance(rule, dict) and rule.get("origin_type") in ("ip", "domain"):
                rule["origin"] = "127.0.0.1"
    return body
