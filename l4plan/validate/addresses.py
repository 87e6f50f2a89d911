"""What kind of address a string is: host name, IP address, network."""

import ipaddress
from functools import lru_cache

from l4plan.names import HOST_NAME_RE


def is_host_name(text):
    """A DNS host name; all-digit labels (``10.0.0``) are a mistyped address."""
    return isinstance(text, str) and bool(HOST_NAME_RE.fullmatch(text.lower())) and not looks_numeric(text)


def looks_numeric(text):
    """A dotted name whose labels are all digits: meant as an IPv4 address."""
    labels = text.split(".")
    return all(label.isascii() and label.isdigit() for label in labels)


@lru_cache(maxsize=4096)
def is_ip(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_local(address):
    """Loopback or unspecified: where a runtime on this host listens."""
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or ip.is_unspecified


def infer_origin_type(origin, lb_names):
    """The origin_type of an origin written without one: a declared load
    balancer's name wins, then an IP address, else a host name."""
    if origin in lb_names:
        return "load_balancer"
    return "ip" if is_ip(origin) else "domain"
