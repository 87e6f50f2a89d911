# -*- test-case-name: tests.runtime.test_runtime_handover -*-
"""`l4plan runtime restart` (POST /v1/restart) and SIGUSR2, on the running side.

One restart at a time. While it is under way the document is held (a change
would reach one process and not the other). Once the new process serves, this
one stops as on SIGTERM but leaves the sockets open for it: TCP connections
drain, UDP sessions answer until they idle out, then it exits. If the new
process does not serve, this one serves on as before.
"""

import os

from twisted.internet import defer, threads
from twisted.logger import Logger

from l4plan.runtime import handover, systemd

log = Logger()

HELD = "a restart is under way; try again in a moment"


class Restart:
    """Restart ``runtime`` into a new process started with ``command``.

    ``admin`` (an ``admin.Endpoint``, None without an admin API) goes with
    the listeners; ``stop()`` stops this process once the new one serves and
    the admin requests here have their answers.
    """

    def __init__(self, reactor, live, command, admin, stop):
        self._reactor = reactor
        self._live = live
        self._command = command
        self.admin = admin
        self._stop = stop
        self.under_way = False
        self.successor = None  # the pid of the process that took over

    def __call__(self):
        """A Deferred of the new process's pid; a ``HandoverError`` when it did
        not take over (this process serves on)."""
        runtime = self._live.runtime
        if self.under_way:
            return defer.fail(handover.HandoverError("a restart is already under way"))
        if not runtime.running:
            return defer.fail(handover.HandoverError("the runtime is stopping"))
        self.under_way = True
        self._live.held = HELD
        sockets = runtime.sockets()
        if self.admin is not None:
            sockets["admin"] = self.admin.fileno()
        log.info("restart: starting a new process for {n} sockets", n=len(sockets))
        pool = self._reactor.getThreadPool()
        started = threads.deferToThreadPool(
            self._reactor, pool, handover.hand_over, sockets, self._command
        )
        return started.addCallbacks(self._handed, self._failed)

    def _handed(self, pid):
        log.info("restart: pid {pid} serves now; this process (pid {own}) drains and exits",
                 pid=pid, own=os.getpid())
        self.successor = pid
        systemd.notify(f"MAINPID={pid}")
        self._live.runtime.hand_over()
        answered = defer.succeed(None) if self.admin is None else self.admin.hand_over()
        answered.addTimeout(self._live.runtime.settings.drain_timeout, self._reactor)
        answered.addBoth(lambda _: self._stop())
        return pid

    def _failed(self, failure):
        failure.trap(handover.HandoverError)
        log.error("restart: {why}; this process serves on", why=failure.getErrorMessage())
        self.under_way = False
        self._live.held = None
        return failure
