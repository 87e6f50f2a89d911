"""The runtime document built from desired resources, and read back."""

import json
from importlib import resources

from jsonschema import Draft202012Validator

from l4plan.providers.runtime_document import build_document, read_document
from l4plan.validate import load_config
from tests.conftest import EXAMPLES


def _schema():
    return json.loads(resources.files("l4plan.schemas").joinpath("runtime.schema.json").read_text())


def test_document_of_the_game_example_validates_and_carries_mappings():
    """Every rule carries its expanded mapping; the runtime schema accepts the document."""
    document = build_document(load_config(EXAMPLES / "game").resources())
    Draft202012Validator(_schema()).validate(document)
    game = document["applications"]["game"]
    assert game["rules"][0]["ports"][5] == {"edge": 7005, "origin": [17005]}
    assert game["rules"][2]["ports"] == [{"edge": 7000, "origin": [27000, 27001, 27002, 27003]}]
    assert [r["name"] for r in document["ip_access_rules"]] == ["office", "block-scanners"]
    assert document["site"] == {
        "name": "example.com",
        "ddos_full_protection": True,
        "china_mainland_network_optimization": False,
        "fixed_ipv4": False,
    }


def test_read_gives_back_what_state_records():
    """Reading a document gives the same attributes the configuration has, lifecycle aside."""
    desired = load_config(EXAMPLES / "game").resources()
    read = read_document(build_document(desired))
    for address, attributes in read.items():
        expected = {k: v for k, v in desired[address].items() if k != "prevent_destroy"}
        assert attributes == expected, address
    assert sorted(read) == sorted(a for a in desired if not a.startswith("site."))


def test_empty_configuration_is_an_empty_document():
    """No resources: no site, nothing to serve."""
    assert build_document({}) == {
        "format_version": 1,
        "site": None,
        "ip_access_rules": [],
        "load_balancers": {},
        "applications": {},
    }


def test_the_runtime_names_each_rule_by_the_key_the_engine_looks_up():
    """Both sides of the HTTP boundary agree on APP/PROTOCOL/EDGE_PORT: the
    runtime's metrics keys are the engine's served_key of every rule."""
    from twisted.internet.testing import MemoryReactorClock

    from l4plan.model import served_key
    from l4plan.runtime.metrics import Metrics
    from l4plan.runtime.origins import HostCache
    from l4plan.runtime.routes import compile_document

    config = load_config(EXAMPLES / "game")
    metrics = Metrics()
    compile_document(build_document(config.resources()), "127.0.0.1", "::1", HostCache(MemoryReactorClock(), 30), metrics)
    expected = {served_key(app.name, rule.key) for app in config.applications for rule in app.rules}
    assert set(metrics.snapshot()) == expected
