"""An application's ``rule`` blocks: ports, their mapping, passthrough, origin."""

from l4plan.model import Rule
from l4plan.ports import PORT_FORMS, PortError, map_ports, parse_origin_port, parse_port_spec
from l4plan.validate.addresses import infer_origin_type, is_host_name, is_ip, looks_numeric

#: The passthrough modes bound to one protocol; the others go with both.
_PASSTHROUGH_PROTOCOL = {"proxy_protocol_v1": "tcp", "simple_proxy_protocol": "udp"}


def check_rule(report, path, body, lb_names):
    protocol = body["protocol"]
    edge = _ports(report, path + ("edge_port",), body["edge_port"], parse_port_spec)
    origin_port = _ports(report, path + ("origin_port",), body["origin_port"], parse_origin_port)
    _check_mapping(report, path, edge, origin_port)
    passthrough = body.get("client_ip_passthrough", "off")
    _check_passthrough(report, path + ("client_ip_passthrough",), protocol, passthrough)
    origin = body["origin"]
    origin_type = body.get("origin_type") or infer_origin_type(origin, lb_names)
    if "origin_type" not in body and looks_numeric(origin) and not is_ip(origin):
        report.error(path + ("origin",), f'"{origin}" is not a valid IP address', "An IPv4 address is four numbers 0-255, such as 192.0.2.10; a host name needs a label that is not all digits.")
    else:
        _check_origin(report, path, origin_type, origin, lb_names)
    return Rule(protocol, edge, origin_type, origin, origin_port, passthrough, body.get("comment", ""))


def _ports(report, path, value, parse):
    try:
        return parse(value)
    except PortError as error:
        report.error(path, f"{path[-1]} {str(value)!r}: {error}", f"{PORT_FORMS}.")
        return None


def _check_mapping(report, path, edge, origin):
    if edge is None or origin is None:
        return
    try:
        map_ports(edge, origin)
    except PortError as error:
        report.error(
            path + ("origin_port",),
            f'edge port "{edge}" cannot map to origin port "{origin}": {error}',
            f'Use one origin port, or a range of {len(edge)} ports such as "{origin.ranges[0].first}-{origin.ranges[0].first + len(edge) - 1}".',
        )


def _check_passthrough(report, path, protocol, mode):
    if _PASSTHROUGH_PROTOCOL.get(mode, protocol) != protocol:
        report.error(
            path,
            f"{mode} works only with {_PASSTHROUGH_PROTOCOL[mode]}, and this rule is {protocol}",
            "Use proxy_protocol_v2 (TCP and UDP) or off, or change the protocol.",
        )


def _check_origin(report, path, origin_type, origin, lb_names):
    where = path + ("origin",)
    if origin_type == "ip" and not is_ip(origin):
        report.error(where, f'"{origin}" is not an IP address (origin_type = "ip")', 'Write an IPv4/IPv6 address, or set origin_type = "domain" for a host name.')
    elif origin_type in ("domain", "object_storage") and not is_host_name(origin):
        report.error(where, f'"{origin}" is not a valid host name (origin_type = "{origin_type}")', "Write a DNS name such as origin.example.net.")
    elif origin_type == "load_balancer" and origin not in lb_names:
        known = ", ".join(sorted(lb_names)) or "none declared"
        report.error(where, f'no load_balancer named "{origin}"', f'Declare load_balancer "{origin}" {{ … }} or use one of: {known}.')
