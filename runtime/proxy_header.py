# -*- test-case-name: tests.runtime.test_runtime_proxy_header -*-
"""Client IP passthrough headers, as pure functions over (host, port) pairs.

PROXY protocol v1 and v2 follow HAProxy's ``doc/proxy-protocol.txt``; the
Simple Proxy Protocol follows Cloudflare Spectrum's reference. Building them
here, away from any transport, keeps them testable byte for byte.
"""

import ipaddress
import struct
from typing import NamedTuple

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V2_PROXY = 0x21  # version 2, command PROXY
_V2_FAMILY = {(4, "tcp"): 0x11, (4, "udp"): 0x12, (6, "tcp"): 0x21, (6, "udp"): 0x22}
_V2_UNSPEC = V2_SIGNATURE + bytes([_V2_PROXY, 0x00]) + b"\x00\x00"

SPP_MAGIC = b"\x56\xec"
SPP_LENGTH = 38
_SPP = struct.Struct("!2s16s16sHH")


def _ip(host):
    """An address object; IPv4-mapped IPv6 (a dual-stack socket) becomes IPv4."""
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _pair(source, destination):
    """Both addresses as objects, or None when their families differ."""
    src, dst = _ip(source[0]), _ip(destination[0])
    return (src, dst) if src.version == dst.version else None


def v1(source, destination):
    """The PROXY v1 line (TCP only) for a client ``source`` reaching ``destination``."""
    pair = _pair(source, destination)
    if pair is None:
        return b"PROXY UNKNOWN\r\n"
    src, dst = pair
    family = "TCP4" if src.version == 4 else "TCP6"
    line = f"PROXY {family} {src} {dst} {source[1]} {destination[1]}\r\n"
    return line.encode("ascii")


def v2(source, destination, transport="tcp"):
    """The PROXY v2 binary header; ``transport`` is "tcp" or "udp"."""
    pair = _pair(source, destination)
    if pair is None:
        return _V2_UNSPEC
    src, dst = pair
    body = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
    family = _V2_FAMILY[(src.version, transport)]
    return V2_SIGNATURE + struct.pack("!BBH", _V2_PROXY, family, len(body)) + body


def _ipv6_packed(host):
    """16 bytes; IPv4 travels as ::ffff:a.b.c.d, as SPP requires."""
    address = _ip(host)
    if address.version == 4:
        return ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + address.packed).packed
    return address.packed


def spp(client, proxy):
    """The 38-byte Simple Proxy Protocol header put before each UDP datagram."""
    return _SPP.pack(
        SPP_MAGIC, _ipv6_packed(client[0]), _ipv6_packed(proxy[0]), client[1], proxy[1]
    )


class SppHeader(NamedTuple):
    client: tuple
    proxy: tuple


def _unmapped(packed):
    return str(_ip(str(ipaddress.IPv6Address(packed))))


def parse_spp(datagram):
    """``(SppHeader, payload)`` when the datagram starts with an SPP header, else None."""
    if len(datagram) < SPP_LENGTH or datagram[:2] != SPP_MAGIC:
        return None
    _, client, proxy, client_port, proxy_port = _SPP.unpack_from(datagram)
    header = SppHeader((_unmapped(client), client_port), (_unmapped(proxy), proxy_port))
    return header, datagram[SPP_LENGTH:]


def strip_spp(datagram, sent):
    """The payload of an origin's reply, without the SPP header it may carry.

    Only the header ``sent`` to the origin for this flow counts, as sent or with
    its two addresses swapped: a raw reply that merely begins with the 2-byte
    magic reaches the client whole."""
    head = datagram[:SPP_LENGTH]
    if head == sent or head == _swapped(sent):
        return datagram[SPP_LENGTH:]
    return datagram


def _swapped(header):
    magic, client, proxy, client_port, proxy_port = _SPP.unpack(header)
    return _SPP.pack(magic, proxy, client, proxy_port, client_port)


def for_tcp(mode, source, destination):
    """The bytes to send to the origin first on a TCP connection ("" for off)."""
    if mode == "proxy_protocol_v1":
        return v1(source, destination)
    if mode == "proxy_protocol_v2":
        return v2(source, destination, "tcp")
    return b""


def for_udp(mode, source, destination):
    """The bytes to put before every datagram sent to the origin."""
    if mode == "proxy_protocol_v2":
        return v2(source, destination, "udp")
    if mode == "simple_proxy_protocol":
        return spp(source, destination)
    return b""
