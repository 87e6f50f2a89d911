"""The runtime document is checked against its schema and its references."""

import copy
import json

import pytest
from runtime_helpers import SITE, make_document, make_rule

from l4plan.runtime import document

EXAMPLE = {
    "format_version": 1,
    "site": SITE,
    "ip_access_rules": [
        {
            "name": "block-scanners",
            "action": "deny",
            "sources": ["198.51.100.0/24", "2001:db8:bad::/48"],
            "priority": 10,
        }
    ],
    "load_balancers": {
        "game-pool": {
            "algorithm": "round_robin",
            "origins": [
                {"address": "192.0.2.10", "weight": 2},
                {"address": "192.0.2.11", "weight": 1},
            ],
            "health_check": {
                "interval": 5,
                "timeout": 2,
                "unhealthy_threshold": 3,
                "healthy_threshold": 2,
            },
        }
    },
    "applications": {
        "game": {
            "domain": "game.example.com",
            "ipv6": True,
            "waf_ip_access_control": True,
            "keepalive_protection": False,
            "rules": [
                {
                    "protocol": "tcp",
                    "edge_port": "7000-7002",
                    "origin_type": "ip",
                    "origin": "203.0.113.10",
                    "origin_port": "17000-17002",
                    "client_ip_passthrough": "proxy_protocol_v2",
                    "comment": "",
                    "ports": [
                        {"edge": 7000, "origin": [17000]},
                        {"edge": 7001, "origin": [17001]},
                        {"edge": 7002, "origin": [17002]},
                    ],
                }
            ],
        }
    },
}


def test_contract_example_is_valid():
    """The document of the contract passes as it is."""
    assert document.validate(EXAMPLE) is EXAMPLE


def test_empty_document_is_valid():
    """A runtime with nothing applied yet runs the empty document."""
    assert document.validate(document.empty())["applications"] == {}


def test_missing_applied_file_gives_empty(tmp_path):
    """Without applied.json the runtime starts with an empty configuration."""
    assert document.load_applied(tmp_path) == document.empty()


def test_applied_file_is_loaded(tmp_path):
    """applied.json in the data directory is what the runtime starts from."""
    (tmp_path / "applied.json").write_text(json.dumps(EXAMPLE))
    assert document.load_applied(tmp_path) == EXAMPLE


def test_corrupt_file_names_path(tmp_path):
    """A file that is not JSON is refused with its path in the message."""
    (tmp_path / "applied.json").write_text("{nope")
    with pytest.raises(document.DocumentError, match="applied.json: cannot be read as JSON"):
        document.load_applied(tmp_path)


def test_schema_errors_name_the_place():
    """Every schema error is reported with its path inside the document."""
    bad = make_document([make_rule("70000", [(70000, [1])])])
    bad["applications"]["app"]["ipv6"] = "yes"
    with pytest.raises(document.DocumentError) as caught:
        document.validate(bad)
    reasons = caught.value.reasons
    assert "applications/app/ipv6: 'yes' is not of type 'boolean'" in reasons
    assert any(r.startswith("applications/app/rules/0/ports/0/edge:") for r in reasons)


def test_v1_over_udp_refused():
    """PROXY v1 exists for TCP only."""
    bad = make_document(
        [make_rule("53", [(53, [53])], protocol="udp", passthrough="proxy_protocol_v1")]
    )
    with pytest.raises(document.DocumentError, match="rules/0/protocol"):
        document.validate(bad)


def test_unknown_load_balancer_refused():
    """A rule naming a load balancer that is not in the document is refused."""
    bad = make_document([make_rule("80", [(80, [80])], origin="pool", origin_type="load_balancer")])
    with pytest.raises(document.DocumentError, match="no load balancer named 'pool'"):
        document.validate(bad)


def test_edge_port_used_twice_refused():
    """Two rules cannot listen on the same protocol and edge port."""
    bad = make_document([make_rule("80", [(80, [80])]), make_rule("80", [(80, [81])])])
    with pytest.raises(
        document.DocumentError, match="tcp edge port 80 is also used by applications/app/rules/0"
    ):
        document.validate(bad)


def test_checked_document_skips_equal_parts():
    """Applications equal to those of the checked (served) document are not checked again."""
    served = make_document([make_rule("70000", [(70000, [1])])])  # pretend it passed
    assert document.validate(copy.deepcopy(served), checked=served)["applications"]


def test_checked_document_changed_application_still_refused():
    """A changed application is checked in full and its errors keep their paths."""
    served = make_document([make_rule("80", [(80, [80])])])
    bad = copy.deepcopy(served)
    bad["applications"]["app"]["ipv6"] = "yes"
    bad["applications"]["new"] = copy.deepcopy(bad["applications"]["app"])
    bad["format_version"] = 2
    with pytest.raises(document.DocumentError) as caught:
        document.validate(bad, checked=served)
    reasons = caught.value.reasons
    assert "applications/app/ipv6: 'yes' is not of type 'boolean'" in reasons
    assert "applications/new/ipv6: 'yes' is not of type 'boolean'" in reasons
    assert any(r.startswith("format_version:") for r in reasons)


def test_checked_document_true_is_not_one():
    """A value that Python finds equal but JSON does not (true for 1) is checked."""
    served = copy.deepcopy(EXAMPLE)
    bad = copy.deepcopy(EXAMPLE)
    bad["load_balancers"]["game-pool"]["origins"][1]["weight"] = True
    with pytest.raises(document.DocumentError, match="weight: True is not of type 'integer'"):
        document.validate(bad, checked=served)


def test_checked_document_semantics_checked_whole():
    """References and edge ports are checked across the whole document, changed or not."""
    served = make_document([make_rule("80", [(80, [80])])])
    bad = copy.deepcopy(served)
    bad["applications"]["other"] = copy.deepcopy(served["applications"]["app"])
    with pytest.raises(document.DocumentError, match="tcp edge port 80 is also used"):
        document.validate(bad, checked=served)


def test_save_removes_temporaries_of_a_killed_runtime(tmp_path):
    """Saving the applied document removes temporary files an earlier, killed runtime left."""
    from l4plan.runtime.reconcile import save

    leftovers = [tmp_path / ".applied.json.x1y2.tmp", tmp_path / ".generation.json.z3.tmp"]
    for leftover in leftovers:
        leftover.write_text("{")
    save(tmp_path, EXAMPLE, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["applied.json", "generation.json"]
