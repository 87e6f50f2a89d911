"""The runtime's reactor dispatches socket events like Twisted's epoll reactor."""

import socket
import subprocess
import sys

import pytest
from twisted.internet import error

from l4plan.runtime import reactor as relay_reactor

pytestmark = pytest.mark.skipif(relay_reactor.RelayReactor is None, reason="epoll is Linux-only")


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.read = b""
        self.lost = None

    def fileno(self):
        return self.sock.fileno()

    def logPrefix(self):
        return "test"

    def doRead(self):
        data = self.sock.recv(100)
        if not data:
            return error.ConnectionDone()
        self.read += data

    def connectionLost(self, reason):
        self.lost = reason


def test_reads_and_disconnects_are_dispatched():
    reactor = relay_reactor.RelayReactor()
    ours, theirs = socket.socketpair()
    try:
        ours.setblocking(False)
        reader = Reader(ours)
        reactor.addReader(reader)
        theirs.sendall(b"ping")
        reactor.doPoll(1)
        assert reader.read == b"ping"
        theirs.close()
        reactor.doPoll(1)
        assert reader.lost.check(error.ConnectionDone)
        assert reader not in reactor.getReaders()
    finally:
        ours.close()
        theirs.close()
        reactor._poller.close()


@pytest.mark.processes
def test_runtime_serve_installs_it():
    """`l4plan runtime serve` runs on this reactor (checked in a fresh process)."""
    code = "from l4plan.runtime import reactor as r; " "print(type(r.install()).__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "RelayReactor"
