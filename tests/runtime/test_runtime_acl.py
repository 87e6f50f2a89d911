"""WAF IP access rules: priority order, first match wins, no match allows."""

from l4plan.runtime.acl import AccessList


def rule(name, action, sources, priority):
    return {"name": name, "action": action, "sources": sources, "priority": priority}


def test_no_rules_allow_everyone():
    """With no rule every client is allowed."""
    assert AccessList([]).allows("192.0.2.1")


def test_first_match_by_priority_wins():
    """The lowest priority number decides, whatever the order given."""
    acl = AccessList(
        [
            rule("deny-net", "deny", ["198.51.100.0/24"], 20),
            rule("allow-host", "allow", ["198.51.100.7/32"], 10),
        ]
    )
    assert acl.allows("198.51.100.7")
    assert not acl.allows("198.51.100.8")
    assert acl.allows("192.0.2.1")


def test_ipv6_networks():
    """IPv6 CIDRs match IPv6 clients and never IPv4 ones."""
    acl = AccessList([rule("bad6", "deny", ["2001:db8:bad::/48"], 1)])
    assert not acl.allows("2001:db8:bad::1")
    assert acl.allows("2001:db8:bad1::1")
    assert acl.allows("192.0.2.1")


def test_ipv4_mapped_client_matches_ipv4_rule():
    """A client seen as ::ffff:a.b.c.d on a dual-stack socket matches IPv4 rules."""
    acl = AccessList([rule("deny", "deny", ["192.0.2.0/24"], 1)])
    assert not acl.allows("::ffff:192.0.2.5")


def test_host_bits_tolerated():
    """A source written with host bits set still names its network."""
    acl = AccessList([rule("deny", "deny", ["192.0.2.5/24"], 1)])
    assert not acl.allows("192.0.2.200")
