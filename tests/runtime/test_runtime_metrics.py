"""Per-rule counters."""

from l4plan.runtime.metrics import Metrics


def test_rule_keeps_its_counters():
    """Asking twice for a rule's counters gives the same object."""
    metrics = Metrics()
    metrics.for_rule("app/tcp/80").opened += 2
    assert metrics.for_rule("app/tcp/80").opened == 2


def test_snapshot_is_sorted_plain_data():
    """The snapshot is a JSON-ready dict, sorted by rule key, detached from live counters."""
    metrics = Metrics()
    metrics.for_rule("b/udp/53").bytes_in = 7
    metrics.for_rule("a/tcp/80")
    snapshot = metrics.snapshot()
    assert list(snapshot) == ["a/tcp/80", "b/udp/53"]
    assert snapshot["b/udp/53"] == {
        "opened": 0,
        "active": 0,
        "refused": 0,
        "denied": 0,
        "bytes_in": 7,
        "bytes_out": 0,
        "origin_failures": 0,
        "dropped_too_large": 0,
    }
    metrics.for_rule("b/udp/53").bytes_in = 9
    assert snapshot["b/udp/53"]["bytes_in"] == 7
