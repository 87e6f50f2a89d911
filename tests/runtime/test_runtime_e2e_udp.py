"""UDP through a real `l4plan runtime serve` process over loopback sockets."""

import os

import pytest
from runtime_helpers import free_ports, make_document, make_rule, udp_exchange

from l4plan.runtime import proxy_header

pytestmark = pytest.mark.processes


def udp_rule(edge, origin, passthrough="off"):
    return make_rule(str(edge), [(edge, [origin])], protocol="udp", passthrough=passthrough)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_udp_echo(start_origin, start_runtime, address):
    """Datagrams reach the origin and its replies come back, on IPv4 and IPv6."""
    edge, origin = free_ports(2)
    start_origin("udp-echo", "127.0.0.1", origin)
    start_runtime(make_document([udp_rule(edge, origin)], ipv6=True))
    payloads = [b"one", b"two" * 100, bytes(range(256)) * 4, os.urandom(9000), os.urandom(60000)]
    replies, _ = udp_exchange(address, edge, payloads)
    assert replies == payloads


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_udp_proxy_v2_on_every_datagram(start_origin, start_runtime, address):
    """The origin gets the exact PROXY v2 UDP header before every datagram."""
    edge, origin = free_ports(2)
    start_origin("udp-mirror", "127.0.0.1", origin)
    start_runtime(make_document([udp_rule(edge, origin, "proxy_protocol_v2")], ipv6=True))
    replies, client = udp_exchange(address, edge, [b"first", b"second"])
    header = proxy_header.v2(client, (address, edge), "udp")
    assert header[13] == (0x12 if address == "127.0.0.1" else 0x22)
    assert replies == [b"GOT:" + header + b"first", b"GOT:" + header + b"second"]


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_udp_spp_header_exact(start_origin, start_runtime, address):
    """The origin gets the exact 38-byte SPP header before every datagram."""
    edge, origin = free_ports(2)
    start_origin("udp-mirror", "127.0.0.1", origin)
    start_runtime(make_document([udp_rule(edge, origin, "simple_proxy_protocol")], ipv6=True))
    replies, client = udp_exchange(address, edge, [b"a", b"b"])
    header = proxy_header.spp(client, (address, edge))
    assert len(header) == 38
    assert replies == [b"GOT:" + header + b"a", b"GOT:" + header + b"b"]
    parsed, _ = proxy_header.parse_spp(replies[0][4:])
    assert parsed.client == client


def test_udp_spp_reply_header_stripped(start_origin, start_runtime):
    """An origin reply carrying the SPP header reaches the client without it."""
    edge, origin = free_ports(2)
    start_origin("udp-echo", "127.0.0.1", origin)  # echoes header + payload as received
    start_runtime(make_document([udp_rule(edge, origin, "simple_proxy_protocol")]))
    replies, _ = udp_exchange("127.0.0.1", edge, [b"payload", b"\x56\xecnot-a-header-it-is-short"])
    assert replies == [b"payload", b"\x56\xecnot-a-header-it-is-short"]
