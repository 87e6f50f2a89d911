# -*- test-case-name: tests.runtime.test_runtime_handover -*-
"""Restart without downtime: the listening sockets go from the running process
to a new one over a unix socket (SCM_RIGHTS), as HAProxy's ``-x`` and Envoy's
hot restart hand theirs over.

The old process starts the new one from the l4plan installed now, with its own
arguments and the new one's end of the channel named in ``$L4PLAN_HANDOVER``.
On the channel (SOCK_SEQPACKET, one message per send): the new one says
``hello``; the old one sends every socket, at most ``FDS_PER_MESSAGE`` to a
message (the kernel takes 253), each message the JSON list of its sockets'
names, then ``end``; the new one adopts them, loads the applied document and
answers ``ready`` (its pid) or ``error`` (why not). Until it answers, what it
writes to standard error is kept aside, so an install too broken to answer
still says why; once it serves, that goes to standard error after all.

Both sides block, briefly: the new one before its reactor runs, the old one in
a thread of its reactor's pool.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile

VARIABLE = "L4PLAN_HANDOVER"  # "CHANNEL_FD,STDERR_FD" in the new process
FDS_PER_MESSAGE = 250
MAX_MESSAGE = 64 * 1024
TIMEOUT = 60.0  # seconds the new process has to serve: 10,000 listeners take a few


class HandoverError(Exception):
    """The new process did not take over; the old one keeps serving."""


def send(channel, message, fds=()):
    """One message (a JSON object) and ``fds`` with it."""
    socket.send_fds(channel, [json.dumps(message).encode()], list(fds))


def receive(channel, *expected):
    """The next message, a dict with one of the keys ``expected``, and its sockets."""
    data, fds, _, _ = socket.recv_fds(channel, MAX_MESSAGE, FDS_PER_MESSAGE)
    sockets = [socket.socket(fileno=fd) for fd in fds]
    if not data:
        raise EOFError("the channel closed")
    message = json.loads(data)
    if not set(expected) & set(message):
        for sock in sockets:
            sock.close()
        raise HandoverError(f"expected {' or '.join(expected)} on the handover channel, got {sorted(message)}")
    return message, sockets


def send_sockets(channel, sockets):
    """Send ``sockets`` ({name: fd}) in messages of at most ``FDS_PER_MESSAGE``, then ``end``."""
    named = list(sockets.items())
    for start in range(0, len(named), FDS_PER_MESSAGE):
        chunk = named[start : start + FDS_PER_MESSAGE]
        send(channel, {"sockets": [name for name, _ in chunk]}, [fd for _, fd in chunk])
    send(channel, {"end": True})


def receive_sockets(channel):
    """The sockets ``send_sockets`` sent: {name: socket.socket}."""
    received = {}
    while True:
        message, sockets = receive(channel, "sockets", "end")
        if "end" in message:
            return received
        received.update(zip(message["sockets"], sockets, strict=True))


def successor_command(argv=None):
    """How to start this `runtime serve` again from the l4plan installed now:
    the same serve arguments, in this working directory (``-C`` was applied)."""
    argv = sys.argv[1:] if argv is None else argv
    serve = argv.index("serve", argv.index("runtime")) + 1
    return [sys.executable, "-m", "l4plan", "runtime", "serve", *argv[serve:]]


def hand_over(sockets, command, timeout=TIMEOUT):
    """Start ``command`` and hand it ``sockets`` ({name: fd}); its pid once it serves.

    Blocking: run it in a thread. Raises ``HandoverError`` saying why the new
    process did not take over, after ending it.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stderr = os.dup(2)
    aside = tempfile.TemporaryFile()
    env = {key: value for key, value in os.environ.items() if not key.startswith("LISTEN_")}
    env[VARIABLE] = f"{theirs.fileno()},{stderr}"
    try:
        process = subprocess.Popen(command, stderr=aside, pass_fds=(theirs.fileno(), stderr), env=env)
    except OSError as error:
        raise HandoverError(f"cannot start {command[0]}: {error.strerror}") from None
    finally:
        theirs.close()
        os.close(stderr)
    with ours, aside:
        try:
            ours.settimeout(timeout)
            receive(ours, "hello")
            send_sockets(ours, sockets)
            answer, _ = receive(ours, "ready", "error")
        except TimeoutError:
            why = f"did not serve within {timeout:g} s"
        except (OSError, EOFError, ValueError, HandoverError) as error:
            why = _ended(process, aside) or f"broke the handover: {error}"
        else:
            if "ready" in answer:
                aside.seek(0)  # what it wrote until now goes where the rest will
                os.write(2, aside.read())
                return process.pid
            why = f"failed: {answer['error']}"
        _end(process)
        raise HandoverError(f"the new runtime process (pid {process.pid}) {why}")


def _ended(process, aside, wait=5.0):
    """Why ``process`` ended, with the end of what it wrote, or None if it runs."""
    try:
        status = process.wait(wait)
    except subprocess.TimeoutExpired:
        return None
    aside.seek(0)
    lines = aside.read().decode(errors="replace").strip().splitlines()[-10:]
    said = ":\n" + "\n".join(lines) if lines else " and wrote nothing"
    return f"exited with status {status} before it served{said}"


def _end(process):
    if process.poll() is None:
        process.kill()
        process.wait()


class Successor:
    """The new process's side of a handover, from ``$L4PLAN_HANDOVER``."""

    def __init__(self, channel, stderr):
        self._channel = channel
        self._stderr = stderr
        self.done = False  # said ready, or failed

    @classmethod
    def from_environment(cls):
        """The handover this process was started for, or None."""
        value = os.environ.pop(VARIABLE, None)
        if not value:
            return None
        channel, stderr = map(int, value.split(","))
        channel = socket.socket(fileno=channel)
        channel.settimeout(TIMEOUT)  # an old process that stops answering does not hold this one
        return cls(channel, stderr)

    def take(self):
        """The old process's sockets: {name: socket.socket}."""
        send(self._channel, {"hello": os.getpid()})
        return receive_sockets(self._channel)

    def ready(self):
        """Say this process serves; from now on its standard error is the old one's."""
        self._say({"ready": os.getpid()})

    def failed(self, why):
        """Say why this process will not serve (the old one keeps serving)."""
        self._say({"error": why})

    def _say(self, message):
        try:
            send(self._channel, message)
        except OSError:
            pass  # the old process is gone (killed?); nobody is waiting
        self.done = True
        self._channel.close()
        sys.stderr.flush()
        os.dup2(self._stderr, 2)
        os.close(self._stderr)
