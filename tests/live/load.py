"""A bounded load against a runtime: short TCP connections, long-lived TCP
streams checked byte-exact, UDP request/response.

Every worker is a thread that stops when told, or after MAX_ROUNDS, or at
its deadline, whichever comes first. Answers carry the origin's tag
("PORT MODE"), which must be one of ``tags``.
"""

import random
import socket
import threading
import time
from dataclasses import dataclass, field

MAX_ROUNDS = 20000
UDP_REPLY_WAIT = 2.0  # seconds; a reply later than this counts as lost
UDP_SESSION_REQUESTS = 25  # a fresh client socket (a new session) after this many


@dataclass
class Counts:
    tcp_ok: int = 0
    tcp_failed: int = 0
    udp_ok: int = 0
    udp_lost: int = 0
    stream_bytes: int = 0
    streams_intact: int = 0
    streams_broken: int = 0
    errors: list = field(default_factory=list)


def read_line(sock):
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError(f"EOF after {data!r}")
        data += chunk
    return data.decode()


def recv_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"EOF after {len(data)} of {size} bytes")
        data += chunk
    return data


def tcp_exchange(port, text, timeout=5.0):
    """One short connection: send a line, get "PORT MODE LINE"; returns the tag."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(text.encode() + b"\n")
        line = read_line(sock)
        sock.shutdown(socket.SHUT_WR)
        if sock.recv(1) != b"":
            raise ConnectionError("bytes after the answer")
    answer = line.rstrip("\n")
    if not answer.endswith(" " + text):
        raise ConnectionError(f"answer {line!r} does not echo {text!r}")
    return answer[: -len(text) - 1]


def udp_exchange(sock, port, text):
    """One datagram and its answer on ``sock``; returns the tag or None when lost."""
    sock.sendto(text.encode(), ("127.0.0.1", port))
    deadline = time.monotonic() + UDP_REPLY_WAIT
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            reply = sock.recv(65536).decode()
        except TimeoutError:
            return None
        if reply.endswith(" " + text):  # an older, late reply is skipped
            return reply[: -len(text) - 1]
    return None


class Load:
    def __init__(self, tags, tcp_ports, udp_port, stream_ports, deadline):
        self.tags = tags
        self.tcp_ports = tcp_ports
        self.udp_port = udp_port
        self.stream_ports = stream_ports
        self.deadline = deadline
        self.counts = Counts()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []

    def start(self):
        workers = [(self._short_tcp, i) for i in range(2)]
        workers += [(self._stream, port) for port in self.stream_ports]
        workers.append((self._udp, 0))
        for target, arg in workers:
            thread = threading.Thread(target=target, args=(arg,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.counts

    def _running(self, rounds):
        return not self._stop.is_set() and rounds < MAX_ROUNDS and time.monotonic() < self.deadline

    def _count(self, name, amount=1, error=None):
        with self._lock:
            setattr(self.counts, name, getattr(self.counts, name) + amount)
            if error is not None and len(self.counts.errors) < 10:
                self.counts.errors.append(error)

    def _short_tcp(self, worker):
        rounds = 0
        while self._running(rounds):
            port = self.tcp_ports[rounds % len(self.tcp_ports)]
            text = f"ping {worker}-{rounds}"
            try:
                tag = tcp_exchange(port, text)
                if tag not in self.tags:
                    raise ConnectionError(f"unknown tag {tag!r}")
                self._count("tcp_ok")
            except OSError as error:
                self._count("tcp_failed", error=f"tcp {port} {text}: {error!r}")
            rounds += 1
            time.sleep(0.002)

    def _stream(self, port):
        """A long-lived connection: random chunks out, the same bytes back, to the end."""
        rng, sent = random.Random(port), 0
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"stream\n")
                if read_line(sock).rpartition(" stream")[0] not in self.tags:
                    raise ConnectionError("unknown tag")
                rounds = 0
                while self._running(rounds):
                    chunk = rng.randbytes(rng.randrange(1, 65536))
                    sock.sendall(chunk)
                    if recv_exactly(sock, len(chunk)) != chunk:
                        raise ConnectionError(f"bytes differ after {sent}")
                    sent += len(chunk)
                    rounds += 1
                    time.sleep(0.01)
                sock.shutdown(socket.SHUT_WR)
                if sock.recv(1) != b"":
                    raise ConnectionError("bytes after the end")
        except OSError as error:
            self._count("streams_broken", error=f"stream {port} after {sent} bytes: {error!r}")
            return
        self._count("stream_bytes", sent)
        self._count("streams_intact")

    def _udp(self, _):
        rounds, sock = 0, None
        while self._running(rounds):
            if rounds % UDP_SESSION_REQUESTS == 0:
                if sock is not None:
                    sock.close()
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind(("127.0.0.1", 0))
            text = f"q{rounds}"
            tag = udp_exchange(sock, self.udp_port, text)
            if tag is None or tag not in self.tags:
                self._count("udp_lost", error=f"udp {self.udp_port} {text}: {tag!r}")
            else:
                self._count("udp_ok")
            rounds += 1
            time.sleep(0.002)
        if sock is not None:
            sock.close()
