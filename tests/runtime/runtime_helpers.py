"""Helpers shared by the runtime tests: documents, ports, processes."""

import copy
import json
import os
import random
import select
import shutil
import socket
import sys
import time
from pathlib import Path

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

#: The l4plan command of this environment, for the tests that run it as a process.
L4PLAN = shutil.which("l4plan") or str(Path(sys.executable).with_name("l4plan"))


def make_rule(
    edge_port,
    ports,
    origin="127.0.0.1",
    protocol="tcp",
    origin_type="ip",
    passthrough="off",
    origin_port=None,
):
    """A runtime-document rule; ``ports`` is [(edge, [origin, ...]), ...]."""
    return {
        "protocol": protocol,
        "edge_port": edge_port,
        "origin_type": origin_type,
        "origin": origin,
        "origin_port": origin_port or str(ports[0][1][0]),
        "client_ip_passthrough": passthrough,
        "comment": "",
        "ports": [{"edge": edge, "origin": list(origins)} for edge, origins in ports],
    }


#: The site of every test document.
SITE = {
    "name": "example.com",
    "ddos_full_protection": True,
    "china_mainland_network_optimization": False,
    "fixed_ipv4": False,
}


def make_document(rules, ipv6=False, acl=None, waf=False, load_balancers=None, keepalive=False):
    """A valid runtime document with one application "app" holding ``rules``."""
    return {
        "format_version": 1,
        "site": dict(SITE),
        "ip_access_rules": copy.deepcopy(acl or []),
        "load_balancers": copy.deepcopy(load_balancers or {}),
        "applications": {
            "app": {
                "domain": "app.example.com",
                "ipv6": ipv6,
                "waf_ip_access_control": waf,
                "keepalive_protection": keepalive,
                "rules": rules,
            }
        },
    }


def lb_rule(edge_port, origin_port, name="pool", protocol="tcp"):
    """A rule sending one edge port to load balancer ``name`` on one origin port."""
    return make_rule(
        str(edge_port),
        [(edge_port, [origin_port])],
        origin=name,
        origin_type="load_balancer",
        protocol=protocol,
    )


PORTS_FROM, PORTS_TO = 20000, 32768


def _bindable(port, kinds):
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        for kind in kinds:
            with socket.socket(family, kind) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    return False
    return True


def free_ports(count, consecutive=False):
    """Ports free for TCP and UDP on 127.0.0.1 and ::1 (consecutive if asked).

    Ports are chosen at random below Linux's ephemeral range (32768+), where
    no outgoing connection takes them, and released before use: a race with
    another test is possible but unlikely; tries are bounded.
    """
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM)
    chosen = []
    for _ in range(200):
        if consecutive:
            base = random.randrange(PORTS_FROM, PORTS_TO - count)
            if all(_bindable(p, kinds) for p in range(base, base + count)):
                return list(range(base, base + count))
            continue
        port = random.randrange(PORTS_FROM, PORTS_TO)
        if port not in chosen and _bindable(port, kinds):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("no free ports found")


def read_until(proc, marker, timeout=15.0):
    """Read ``proc``'s stdout (unbuffered pipe) until ``marker``; return what came."""
    deadline = time.monotonic() + timeout
    output = b""
    fd = proc.stdout.fileno()
    while marker not in output:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} did not print {marker!r}: {output!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            output += os.read(fd, 65536)
    return output


def vm_rss_kib(pid):
    """Resident memory of process ``pid`` in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def connect(address, port, timeout=10.0):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
    except OSError:
        sock.close()
        raise
    return sock


def recv_all(sock):
    """Everything until EOF."""
    chunks = []
    while data := sock.recv(65536):
        chunks.append(data)
    return b"".join(chunks)


def recv_line(sock):
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode()


def udp_exchange(address, port, payloads, timeout=5.0, source=None):
    """Send each payload from one client socket; return (replies, client address)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.bind((source or address, 0))
        replies = []
        for payload in payloads:
            sock.sendto(payload, (address, port))
            replies.append(sock.recv(65536))
        return replies, sock.getsockname()[:2]


def json_counters(output):
    """The counters the runtime prints as its last stdout line when it stops."""
    last = output.decode().strip().splitlines()[-1]
    return json.loads(last)["counters"]


class DatagramTransport:
    """Records datagrams, the connected address and whether it was closed."""

    def __init__(self, host=("127.0.0.1", 5300)):
        self.written = []
        self.connected_to = None
        self.stopped = False
        self.reading = True
        self._host = host

    def write(self, datagram, addr=None):
        self.written.append((datagram, addr))

    def connect(self, host, port):
        self.connected_to = (host, port)

    def getHost(self):
        return IPv4Address("UDP", *self._host)

    def stopListening(self):
        self.stopped = True

    def stopReading(self):
        self.reading = False


class UdpReactor(MemoryReactorClock):
    """MemoryReactorClock plus listenUDP handing out ``DatagramTransport``s."""

    def __init__(self):
        super().__init__()
        self.udp_ports = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        transport = DatagramTransport()
        self.udp_ports.append((interface, protocol, transport))
        protocol.makeConnection(transport)
        return transport


class Transport(StringTransport):
    """A StringTransport that also records half-close, keepalive and no-delay."""

    write_closed = False
    keepalive = 0
    nodelay = False

    def setTcpNoDelay(self, enabled):
        self.nodelay = enabled

    def loseWriteConnection(self):
        self.write_closed = True

    def setTcpKeepAlive(self, enabled):
        self.keepalive = enabled
