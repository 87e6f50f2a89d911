# -*- test-case-name: tests.runtime.test_runtime_reactor -*-
"""The runtime's reactor: Twisted's epoll reactor, one call per socket event.

EPollReactor.doPoll runs every readable or writable socket's handler inside
log.callWithLogger, which builds a logging context (the "system" of legacy
log lines) per event: a fifth of the runtime's CPU per kept-alive request,
a tenth per new connection (py-spy, benchmarks keepalive and conn_close). The
runtime logs through twisted.logger namespaces and never reads that context,
so this reactor calls the handler directly; everything else is Twisted's.
"""

import errno
import sys

try:
    from twisted.internet.epollreactor import EPollReactor
except ImportError:  # not Linux: Twisted's default reactor serves
    EPollReactor = None


if EPollReactor is not None:

    class RelayReactor(EPollReactor):
        """EPollReactor without a logging context around each event."""

        def doPoll(self, timeout):
            if timeout is None:
                timeout = -1  # wait until an event
            try:
                events = self._poller.poll(timeout, len(self._selectables))
            except OSError as err:
                if err.errno == errno.EINTR:
                    return
                raise
            handle, selectables = self._doReadOrWrite, self._selectables
            for fd, event in events:
                selectable = selectables.get(fd)
                if selectable is not None:
                    handle(selectable, fd, event)

        doIteration = doPoll


def install():
    """The reactor to run: a L{RelayReactor} installed now, or the reactor
    already installed (a test's, or any on a platform without epoll)."""
    if EPollReactor is not None and "twisted.internet.reactor" not in sys.modules:
        from twisted.internet.main import installReactor

        installReactor(RelayReactor())
    from twisted.internet import reactor

    return reactor
