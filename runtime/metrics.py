# -*- test-case-name: tests.runtime.test_runtime_metrics -*-
"""Per-rule counters, kept for the admin API's status and metrics."""

from dataclasses import asdict, dataclass


@dataclass
class RuleCounters:
    """Counts for one rule over all its listeners (connections or sessions)."""

    opened: int = 0
    active: int = 0
    refused: int = 0
    denied: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    origin_failures: int = 0
    dropped_too_large: int = 0


class Metrics:
    """Counters by rule key; a rule that keeps its key keeps its counters."""

    def __init__(self):
        self._rules = {}

    def for_rule(self, key):
        return self._rules.setdefault(key, RuleCounters())

    def snapshot(self):
        """A JSON-ready copy: {rule key: {counter: value}}."""
        return {key: asdict(counters) for key, counters in sorted(self._rules.items())}
