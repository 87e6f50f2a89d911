# -*- test-case-name: tests.runtime.test_runtime_limits -*-
"""The file descriptors of one runtime process, shared by every rule.

Per-rule caps alone let one rule (or one client) take every descriptor: the
admin API, health checks and the other rules then fail. ``FdBudget`` is the
process's own count: listeners, connections (two descriptors: the client's
and the origin's) and UDP sessions (one) take from it, a reserve is kept for
the admin API, health checks, pipes and files, and what does not fit is
refused at once and counted, instead of failing somewhere at random.
"""

import resource

#: Descriptors kept for the admin API, health checks, pipes, logs and files.
MIN_RESERVE = 128


def raise_soft_limit():
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


class FdBudget:
    """Descriptors left for connections and sessions, out of ``limit``.

    One rule may hold half of it (``rule_cap``), and ``max_per_source``
    (0: no cap) bounds what one client address may hold across all rules.
    """

    def __init__(self, limit, max_per_source=0):
        self.limit = limit
        self.reserve = max(MIN_RESERVE, limit // 20)
        self.max_per_source = max_per_source
        self.used = 0
        self._by_source = {}

    @property
    def free(self):
        return self.limit - self.reserve - self.used

    def rule_cap(self, per_item):
        """The most connections (``per_item`` 2) or sessions (1) one rule may hold:
        half the budget, so one flooded rule leaves the other half to the rest."""
        return max(1, (self.limit - self.reserve) // 2 // per_item)

    def take(self, source, count):
        """Take ``count`` descriptors for a connection or session of ``source``;
        False (nothing taken) when the budget or the source's cap would pass."""
        held = self._by_source.get(source, 0)
        if count > self.free or (self.max_per_source and held >= self.max_per_source):
            return False
        self.used += count
        self._by_source[source] = held + 1
        return True

    def give(self, source, count):
        """Give back what ``take`` took for one connection or session of ``source``."""
        self.used -= count
        held = self._by_source.pop(source, 1) - 1
        if held:
            self._by_source[source] = held

    def hold(self, count):
        """Listening sockets: always opened (a reconcile decides), but counted."""
        self.used += count


#: What listeners made outside a runtime (tests, tools) share: no limit.
UNLIMITED = FdBudget(1 << 62)
