# -*- test-case-name: tests.runtime.test_runtime_logs -*-
"""The runtime's log: bounded whatever the traffic.

A flood must not turn into a flood of lines: a repeated event (an origin
failing for every connection of a rule) is logged once per rule and interval,
with the count of those left out; Twisted's own lines for every UDP session
socket are left out; and with ``--log-file`` the file rotates by size.
"""

import re
import sys
import time

from twisted.logger import (
    FilteringLogObserver,
    Logger,
    PredicateResult,
    formatEvent,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python.logfile import LogFile

INTERVAL = 10.0  # seconds between two lines of one repeated event
ROTATE_BYTES = 10 * 1024 * 1024
KEEP_FILES = 5

# Written by twisted.internet.udp for every session socket it opens and closes.
_SESSION_NOISE = re.compile(
    r"^(UdpSession starting on \d+|\(UDP Port \d+ Closed\)|(Starting|Stopping) factory _HTTP11ClientFactory\(.*)$"
)


class Throttle:
    """Whether to log one more event of a kind, by key, at most once per ``interval``.

    ``now`` is the clock (the reactor's ``seconds``), injected for tests.
    """

    def __init__(self, now, interval=INTERVAL):
        self._now = now
        self._interval = interval
        self._next = {}  # key -> (time the next line may be written, events held back)

    def allow(self, key):
        """``None`` to stay quiet, or how many events were held back since the last line."""
        now = self._now()
        due, held = self._next.get(key, (0.0, 0))
        if now < due:
            self._next[key] = (due, held + 1)
            return None
        self._next[key] = (now + self._interval, 0)
        return held


def _quiet(event):
    """Drop Twisted's per-session UDP socket lines and the fleet's etcd
    client's per-request factory lines; keep everything else."""
    if _SESSION_NOISE.match(formatEvent(event) or ""):
        return PredicateResult.no
    return PredicateResult.maybe


def rotated(path, rotate_bytes=ROTATE_BYTES):
    """The log file at ``path``: a new one past ``rotate_bytes``, ``KEEP_FILES`` old ones kept."""
    return LogFile.fromFullPath(path, rotateLength=rotate_bytes, maxRotatedFiles=KEEP_FILES)


def begin(log_file=None):
    """Start logging: to ``log_file`` (rotated at ``ROTATE_BYTES``, ``KEEP_FILES``
    kept) or to standard error."""
    stream = rotated(log_file) if log_file else sys.stderr
    observer = FilteringLogObserver(textFileLogObserver(stream), [_quiet])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


_log = Logger()
THROTTLE = Throttle(time.monotonic)  # one per process: every rule's repeated events


def origin_failed(rule_key, reason, throttle=THROTTLE):
    """Log that an origin of ``rule_key`` failed, at most once per interval."""
    held = throttle.allow(("origin failed", rule_key))
    if held is None:
        return
    more = f" ({held} more since the last line)" if held else ""
    _log.info("{rule}: origin failed: {reason}{more}", rule=rule_key, reason=reason, more=more)
