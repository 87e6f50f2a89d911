# -*- test-case-name: tests.runtime.test_runtime_handover -*-
"""`l4plan runtime restart` (POST /v1/restart) and SIGUSR2, on the running side.

One restart at a time. While it is under way the document is held (a change
would reach one process and not the other). With workers, main asks each for
its sockets too, and the new main gives them to its own workers. Once the new
process serves, this one (and every worker) stops as on SIGTERM but leaves the
sockets open for it: TCP connections drain, UDP sessions answer until they
idle out, then it exits. If the new process does not serve, this one serves on.
"""

import os

from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from l4plan.runtime import handover, systemd

log = Logger()

HELD = "a restart is under way; try again in a moment"


class Restart:
    """This process's part in a restart into a new process started with
    ``command`` (None in a worker, which only gives its sockets to main).

    ``admin`` (an ``admin.Endpoint``, None without an admin API) goes with
    the listeners, and with ``workers`` (a ``workers.Workers``) theirs;
    ``stop()`` stops this process once the new one serves and the admin
    requests here have their answers.
    """

    def __init__(self, reactor, live, command, admin, stop, workers=None):
        self._reactor = reactor
        self._live = live
        self._command = command
        self.admin = admin
        self._stop = stop
        self._workers = workers
        self.under_way = False
        self.successor = None  # the pid of the process that took over

    def sockets(self):
        """{name: descriptor} of this process's listeners and admin socket."""
        sockets = self._live.runtime.sockets()
        if self.admin is not None:
            sockets["admin"] = self.admin.fileno()
        return sockets

    def __call__(self):
        """A Deferred of the new process's pid; a ``HandoverError`` when it did
        not take over (this process serves on)."""
        if self.under_way:
            return defer.fail(handover.HandoverError("a restart is already under way"))
        if not self._live.runtime.running:
            return defer.fail(handover.HandoverError("the runtime is stopping"))
        self.under_way = True
        self._live.hold(HELD)
        try:
            borrowed = {} if self._workers is None else self._workers.sockets()
        except (OSError, EOFError, ValueError, handover.HandoverError) as error:
            why = handover.HandoverError(f"a worker did not give its sockets: {error}")
            return defer.fail(self._failed(Failure(why)))
        sockets = {**self.sockets(), **{name: sock.fileno() for name, sock in borrowed.items()}}
        log.info("restart: starting a new process for {n} sockets", n=len(sockets))
        pool = self._reactor.getThreadPool()
        started = threads.deferToThreadPool(
            self._reactor, pool, handover.hand_over, sockets, self._command
        )
        started.addBoth(_closing, borrowed.values())
        return started.addCallbacks(self._handed, self._failed)

    def _handed(self, pid):
        log.info("restart: pid {pid} serves now; this process (pid {own}) drains and exits",
                 pid=pid, own=os.getpid())
        self.successor = pid
        systemd.notify(f"MAINPID={pid}")
        if self._workers is not None:
            self._workers.hand_over()
        self.handed_over()
        return pid

    def handed_over(self):
        """The next process serves these sockets: stop, leaving them open."""
        self._live.runtime.hand_over()
        answered = defer.succeed(None) if self.admin is None else self.admin.hand_over()
        answered.addTimeout(self._live.runtime.settings.drain_timeout, self._reactor)
        answered.addBoth(lambda _: self._stop())

    def _failed(self, failure):
        failure.trap(handover.HandoverError)
        log.error("restart: {why}; this process serves on", why=failure.getErrorMessage())
        self.under_way = False
        self._live.release()
        return failure


def _closing(result, sockets):
    """Close this process's copies of ``sockets`` (the new process has its own)."""
    for sock in sockets:
        sock.close()
    return result
