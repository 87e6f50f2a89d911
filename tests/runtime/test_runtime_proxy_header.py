"""Client IP passthrough headers, checked byte for byte against the specs."""

import pytest

from l4plan.runtime import proxy_header as ph

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def test_v1_tcp4():
    """The v1 line names TCP4, source then destination address, then ports."""
    line = ph.v1(("192.0.2.1", 56324), ("192.0.2.2", 443))
    assert line == b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n"


def test_v1_tcp6_compressed():
    """IPv6 addresses appear in their compressed text form."""
    line = ph.v1(("2001:db8::1", 1), ("::1", 65535))
    assert line == b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n"


def test_v1_longest_line_fits_107_bytes():
    """The longest possible TCP6 line stays within the spec's 107 bytes."""
    full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    line = ph.v1((full, 65535), (full, 65535))
    assert len(line) == 104


def test_v1_ipv4_mapped_becomes_tcp4():
    """A client seen through a dual-stack socket is reported as IPv4."""
    line = ph.v1(("::ffff:192.0.2.1", 5), ("::ffff:192.0.2.2", 6))
    assert line == b"PROXY TCP4 192.0.2.1 192.0.2.2 5 6\r\n"


def test_v1_mixed_families_unknown():
    """Addresses of different families can only be announced as UNKNOWN."""
    assert ph.v1(("192.0.2.1", 5), ("::1", 6)) == b"PROXY UNKNOWN\r\n"


def test_v2_tcp4():
    """v2 over TCP/IPv4: 0x21, 0x11, length 12, addresses, ports big-endian."""
    header = ph.v2(("192.0.2.1", 56324), ("192.0.2.2", 443), "tcp")
    assert header == (
        SIG
        + b"\x21\x11\x00\x0c"
        + b"\xc0\x00\x02\x01"
        + b"\xc0\x00\x02\x02"
        + b"\xdc\x04"
        + b"\x01\xbb"
    )
    assert len(header) == 28


def test_v2_udp4():
    """v2 over UDP/IPv4 uses family/transport 0x12."""
    header = ph.v2(("10.0.0.1", 1), ("10.0.0.2", 2), "udp")
    assert header == SIG + b"\x21\x12\x00\x0c" + bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2])


def test_v2_tcp6_and_udp6():
    """IPv6 uses 0x21 (TCP) and 0x22 (UDP) with a 36-byte address block."""
    src = ("2001:db8::1", 4660)
    dst = ("::1", 80)
    body = (
        bytes.fromhex("20010db8000000000000000000000001")
        + bytes.fromhex("00000000000000000000000000000001")
        + b"\x12\x34\x00\x50"
    )
    assert ph.v2(src, dst, "tcp") == SIG + b"\x21\x21\x00\x24" + body
    assert ph.v2(src, dst, "udp") == SIG + b"\x21\x22\x00\x24" + body


def test_v2_mixed_families_unspec():
    """Different families give the AF_UNSPEC header with no addresses."""
    assert ph.v2(("192.0.2.1", 5), ("::1", 6)) == SIG + b"\x21\x00\x00\x00"


def test_spp_ipv4_is_mapped():
    """SPP carries IPv4 as ::ffff:a.b.c.d; 38 bytes with magic 0x56EC."""
    header = ph.spp(("192.0.2.1", 5353), ("198.51.100.7", 53))
    assert header == (
        b"\x56\xec"
        + b"\x00" * 10
        + b"\xff\xff"
        + b"\xc0\x00\x02\x01"
        + b"\x00" * 10
        + b"\xff\xff"
        + b"\xc6\x33\x64\x07"
        + b"\x14\xe9"
        + b"\x00\x35"
    )
    assert len(header) == 38


def test_spp_ipv6():
    """IPv6 client and proxy addresses are copied as they are."""
    header = ph.spp(("2001:db8::2", 1), ("::1", 2))
    assert header[2:18] == bytes.fromhex("20010db8000000000000000000000002")
    assert header[18:34] == bytes.fromhex("00000000000000000000000000000001")
    assert header[34:] == b"\x00\x01\x00\x02"


def test_parse_spp_round_trip():
    """Parsing a built header gives back the addresses and the payload."""
    datagram = ph.spp(("192.0.2.1", 5353), ("2001:db8::9", 53)) + b"payload"
    header, payload = ph.parse_spp(datagram)
    assert header.client == ("192.0.2.1", 5353)
    assert header.proxy == ("2001:db8::9", 53)
    assert payload == b"payload"


@pytest.mark.parametrize("datagram", [b"", b"\x56\xec" + b"\x00" * 35, b"x" * 60])
def test_parse_spp_rejects_non_spp(datagram):
    """Short datagrams and ones without the magic are not SPP."""
    assert ph.parse_spp(datagram) is None
    assert ph.strip_spp(datagram, ph.spp(("192.0.2.1", 1), ("192.0.2.2", 2))) == datagram


def test_strip_spp():
    """A reply with the flow's SPP header, as sent or swapped, reaches the client without it."""
    sent = ph.spp(("192.0.2.1", 1), ("192.0.2.2", 2))
    assert ph.strip_spp(sent + b"answer", sent) == b"answer"
    assert ph.strip_spp(ph.spp(("192.0.2.2", 2), ("192.0.2.1", 1)) + b"answer", sent) == b"answer"


def test_strip_spp_keeps_a_raw_reply_that_starts_with_the_magic():
    """A 62-byte raw reply beginning 56 EC is not an SPP header: all 62 bytes reach the client."""
    sent = ph.spp(("192.0.2.1", 1), ("192.0.2.2", 2))
    raw = b"\x56\xec" + bytes(range(60))
    assert ph.strip_spp(raw, sent) == raw


def test_for_tcp_and_for_udp_choose_by_mode():
    """Each passthrough mode picks its header; off sends nothing."""
    src, dst = ("192.0.2.1", 1), ("192.0.2.2", 2)
    assert ph.for_tcp("off", src, dst) == b""
    assert ph.for_tcp("proxy_protocol_v1", src, dst) == ph.v1(src, dst)
    assert ph.for_tcp("proxy_protocol_v2", src, dst) == ph.v2(src, dst, "tcp")
    assert ph.for_udp("off", src, dst) == b""
    assert ph.for_udp("proxy_protocol_v2", src, dst) == ph.v2(src, dst, "udp")
    assert ph.for_udp("simple_proxy_protocol", src, dst) == ph.spp(src, dst)
