# -*- test-case-name: tests.runtime.test_runtime_splice -*-
"""Zero-copy relaying: the kernel moves the bytes, socket to pipe to socket.

Once both legs of a TCP relay are connected and the passthrough header is
sent, Python has nothing to add to the bytes, so copying them into the process
and out again is wasted work. ``os.splice`` (Linux) moves them between the two
sockets through a pipe instead, with its own descriptors registered with the
reactor; the sockets' owner is told when the relay ends and closes them.
Small messages are cheaper to copy than to splice, so each direction copies
until a read shows a stream (see ``_Direction``).

A direction borrows a pipe from a ``PipePool`` only while it has bytes in
flight: an idle connection holds no pipe, or 10,000 idle connections would
need 20,000 more file descriptors.
"""

import fcntl
import os
import socket

from twisted.internet import error
from twisted.internet.interfaces import IReadWriteDescriptor
from zope.interface import implementer

PIPE_SIZE = 1 << 20  # bytes in flight per direction: a pipe's usual maximum
PIPE_BUDGET = 256 << 20  # bytes all lent pipes may pin in the kernel, per process
COPY_SIZE = 1 << 16  # a recv this full means a stream: splice it
SMALL = 1 << 14  # a splice smaller than this means messages: copy them
_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)


def available():
    """Whether this platform can splice (Linux, Python 3.10+)."""
    return hasattr(os, "splice")


class Pipe:
    """Both ends of a non-blocking pipe and how many bytes it can hold."""

    def __init__(self, size):
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            self.size = fcntl.fcntl(self.write_fd, fcntl.F_SETPIPE_SZ, size)
        except OSError:  # over /proc/sys/fs/pipe-max-size or the user's pipe pages
            self.size = fcntl.fcntl(self.write_fd, fcntl.F_GETPIPE_SZ)

    def close(self):
        os.close(self.read_fd)
        os.close(self.write_fd)


class PipePool:
    """Empty pipes kept for reuse (making one costs three system calls), and a
    bound on the kernel memory the pipes lent out may pin: 50 clients that
    never read would otherwise hold 1 MiB each for the whole idle timeout."""

    def __init__(self, keep=64, size=PIPE_SIZE, budget=PIPE_BUDGET):
        self.keep = keep
        self.size = size
        self.budget = budget
        self.lent = 0  # bytes of the pipes lent out
        self._free = []

    def take(self):
        """A pipe, or None when the lent pipes already hold the budget or no
        file descriptor is left: the direction then copies instead."""
        if self.lent + self.size > self.budget:
            return None
        try:
            pipe = self._free.pop() if self._free else Pipe(self.size)
        except OSError:  # EMFILE, ENFILE: a connection must not die of it
            return None
        self.lent += pipe.size
        return pipe

    def give(self, pipe):
        """Take back ``pipe``, which must be empty."""
        self.lent -= pipe.size
        if len(self._free) < self.keep:
            self._free.append(pipe)
        else:
            pipe.close()

    def discard(self, pipe):
        """Take back ``pipe`` with bytes nobody will read, and close it."""
        self.lent -= pipe.size
        pipe.close()

    def close(self):
        while self._free:
            self._free.pop().close()


@implementer(IReadWriteDescriptor)
class _End:
    """One socket of a relay as the reactor sees it: readable starts the
    direction leaving it, writable resumes the direction entering it."""

    __slots__ = (
        "relay",
        "socket",
        "fd",
        "outgoing",
        "incoming",
        "reading",
        "writing",
        "__weakref__",
    )

    def __init__(self, relay, sock):
        self.relay = relay
        self.socket = sock
        self.fd = sock.fileno()
        self.outgoing = self.incoming = None  # the two _Directions, set by the relay
        self.reading = self.writing = False

    def fileno(self):
        return self.fd

    def doRead(self):
        self.relay.pump(self.outgoing)

    def doWrite(self):
        self.relay.flush(self.incoming)

    def connectionLost(self, reason):  # the reactor saw a hang-up or an error
        self.relay.end(reason.value)

    def logPrefix(self):
        return "splice"

    def want(self, reading, writing):
        """Tell the reactor which events matter now; no system call when unchanged."""
        reactor = self.relay.reactor
        if reading != self.reading:
            self.reading = reading
            (reactor.addReader if reading else reactor.removeReader)(self)
        if writing != self.writing:
            self.writing = writing
            (reactor.addWriter if writing else reactor.removeWriter)(self)


class _Direction:
    """Bytes from ``source`` to ``destination``; ``counted(n)`` after each move in.

    ``buffered`` bytes (read in Python, or the passthrough header) leave
    before anything in the pipe. A direction starts ``copying``: small
    messages cost one recv and one send, fewer system calls and less kernel
    work than two splices and a pipe. A read that fills ``COPY_SIZE`` means a
    stream, which is spliced from then on, until a splice moves less than
    ``SMALL`` with the pipe empty.
    """

    # Slots: an idle relayed connection holds a relay, two ends and two
    # directions; without instance dictionaries they take 0.6 KiB, not 2.
    __slots__ = (
        "source",
        "destination",
        "counted",
        "buffered",
        "pipe",
        "pending",
        "eof",
        "shut",
        "copying",
    )

    def __init__(self, source, destination, counted, buffered=b""):
        self.source = source
        self.destination = destination
        self.counted = counted
        self.buffered = buffered
        self.pipe = None
        self.pending = 0  # bytes in the pipe, not yet sent on
        self.eof = False  # the source sent its FIN
        self.shut = False  # ... and the destination got it
        self.copying = True


class SpliceRelay:
    """Relay two connected TCP sockets with ``os.splice``.

    ``counted_in(n)`` / ``counted_out(n)`` are told the bytes moved from the
    client to the origin and back (counters, idle timeout); ``first`` goes to
    the origin before them. Half-close is kept: a FIN from one side becomes a
    write shutdown towards the other once every byte before it is sent. The
    relay ends when both directions are shut, at the first error, or on
    ``end``; then ``ended(reason)`` closes the sockets, whose owner it is.
    """

    __slots__ = (
        "reactor",
        "pool",
        "_ended",
        "_ends",
        "_directions",
        "ended",
        "__weakref__",
    )

    def __init__(self, reactor, pool, client, origin, counted_in, counted_out, ended, first=b""):
        self.reactor = reactor
        self.pool = pool
        self._ended = ended
        client_end, origin_end = _End(self, client), _End(self, origin)
        self._ends = (client_end, origin_end)
        up = _Direction(client_end, origin_end, counted_in, buffered=first)
        down = _Direction(origin_end, client_end, counted_out)
        self._directions = (up, down)
        client_end.outgoing = origin_end.incoming = up
        origin_end.outgoing = client_end.incoming = down
        self.ended = False
        client_end.want(True, False)
        origin_end.want(True, False)
        if first:
            self.flush(up)

    def pump(self, direction):
        """The source is readable: move what it has on, copied or spliced."""
        if self.ended:
            return
        if direction.copying:
            return self._copy(direction)
        if direction.pipe is None:
            direction.pipe = self.pool.take()
            if direction.pipe is None:  # no pipe to be had: copy this read
                return self._copy(direction)
        room = direction.pipe.size - direction.pending
        if not room:  # readable in an event batch fetched before the pipe filled
            return self.flush(direction)
        try:
            moved = os.splice(direction.source.fd, direction.pipe.write_fd, room, flags=_FLAGS)
        except BlockingIOError:
            moved = None
        except OSError as exc:
            return self.end(error.ConnectionLost(exc))
        if moved == 0:
            direction.eof = True
        elif moved:
            direction.pending += moved
            direction.counted(moved)
        self.flush(direction)
        if moved and moved < SMALL and not direction.pending and not self.ended:
            direction.copying = True

    def _copy(self, direction):
        try:
            data = direction.source.socket.recv(COPY_SIZE)
        except BlockingIOError:
            data = None
        except OSError as exc:
            return self.end(error.ConnectionLost(exc))
        if data == b"":
            direction.eof = True
        elif data:
            direction.buffered += data
            direction.counted(len(data))
            direction.copying = len(data) < COPY_SIZE
        self.flush(direction)

    def flush(self, direction):
        """Send what waits; shut the destination's writing after a FIN."""
        if self.ended:
            return
        try:
            if direction.buffered:
                sent = direction.destination.socket.send(direction.buffered)
                direction.buffered = direction.buffered[sent:]
            while direction.pending and not direction.buffered:
                sent = os.splice(
                    direction.pipe.read_fd,
                    direction.destination.fd,
                    direction.pending,
                    flags=_FLAGS,
                )
                direction.pending -= sent
        except BlockingIOError:
            pass
        except OSError as exc:
            return self.end(error.ConnectionLost(exc))
        waiting = direction.pending or direction.buffered
        if not waiting:
            if direction.pipe is not None:
                self.pool.give(direction.pipe)
                direction.pipe = None
            if direction.eof and not direction.shut:
                direction.shut = True
                try:
                    direction.destination.socket.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                if all(d.shut for d in self._directions):
                    return self.end(error.ConnectionDone())
        if direction.copying:  # read again once what was read has left
            room = not direction.buffered
        else:
            room = direction.pipe is None or direction.pending < direction.pipe.size
        direction.source.want(not direction.eof and room, direction.source.writing)
        direction.destination.want(direction.destination.reading, bool(waiting))

    def end(self, reason):
        """Stop relaying; ``ended(reason)`` with ``reason`` (an exception):
        ``error.ConnectionAborted`` asks for both connections to be reset."""
        if self.ended:
            return
        self.ended = True
        for end in self._ends:
            end.want(False, False)
        for direction in self._directions:
            if direction.pending:  # bytes nobody will read: not worth a pooled pipe
                self.pool.discard(direction.pipe)
            elif direction.pipe is not None:
                self.pool.give(direction.pipe)
            direction.pipe = None
        for end in self._ends:  # no reference cycle left: freed at once, not by
            end.outgoing = end.incoming = None  # a garbage collection pausing all
        ended, self._ended, self._directions, self._ends = self._ended, None, (), ()
        ended(reason)
