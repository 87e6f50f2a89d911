"""Waiting for a table of connections or sessions to empty: how a drain ends early."""

from twisted.internet import defer


class Idle:
    """Deferreds that fire once ``table`` (a set or dict the owner changes) is empty."""

    def __init__(self, table):
        self._table = table
        self._waiters = []

    def wait(self):
        """A Deferred that fires when the table is empty (at once if it is)."""
        if not self._table:
            return defer.succeed(None)
        d = defer.Deferred()
        self._waiters.append(d)
        return d

    def check(self):
        """Call after removing an entry: fire the waiters once the table is empty."""
        if not self._table:
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)
