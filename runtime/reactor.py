# -*- test-case-name: tests.runtime.test_runtime_reactor -*-
"""The reactor the runtime runs on: ``twisted_private.RelayReactor`` where
epoll exists, checked against the installed Twisted before it serves."""

import sys

from l4plan.runtime.twisted_private import RelayReactor, check


def install():
    """The reactor to run: a ``RelayReactor`` installed now, or the reactor
    already installed (a test's, or any on a platform without epoll).
    Raises ``twisted_private.TwistedMismatch`` for a Twisted it cannot use."""
    if RelayReactor is not None and "twisted.internet.reactor" not in sys.modules:
        from twisted.internet.main import installReactor

        installReactor(RelayReactor())
    from twisted.internet import reactor

    check(reactor)
    return reactor
