"""UDP request/response generator: a window of datagrams in flight per socket.

    python benchmarks/udp_load.py PORT SECONDS COUNT SOCKETS WINDOW SIZE

Each socket is one client (one proxy session). Every reply sends the next
request; when nothing comes back for STALL seconds the outstanding requests
are taken as lost and the window is refilled, so loss cannot stop the load.
Stops after SECONDS or COUNT requests, waits GRACE for late replies, and
prints {"sent", "received", "seconds"} as JSON.
"""

import json
import selectors
import socket
import sys
import time

STALL = 0.05
GRACE = 0.2


class Client:
    """One connected socket and its count of requests in flight."""

    def __init__(self, port, payload):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.payload = payload
        self.in_flight = 0

    def send(self, n):
        sent = 0
        for _ in range(n):
            try:
                self.sock.send(self.payload)
            except BlockingIOError:
                break
            sent += 1
        self.in_flight += sent
        return sent

    def receive(self):
        received = 0
        while True:
            try:
                self.sock.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                break
            received += 1
        self.in_flight = max(0, self.in_flight - received)
        return received


def run(port, seconds, count, sockets, window, size):
    clients = [Client(port, b"x" * size) for _ in range(sockets)]
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ, client)
    start = time.monotonic()
    deadline = start + seconds
    sent = received = 0
    while sent < count and time.monotonic() < deadline:
        events = selector.select(STALL)
        if not events:
            for client in clients:
                client.in_flight = 0
        for key, _ in events:
            received += key.data.receive()
        for client in clients:
            sent += client.send(min(window - client.in_flight, count - sent))
    elapsed = time.monotonic() - start
    received += _drain(selector)
    return {"sent": sent, "received": received, "seconds": elapsed}


def _drain(selector):
    received = 0
    end = time.monotonic() + GRACE
    while time.monotonic() < end:
        for key, _ in selector.select(max(0.0, end - time.monotonic())):
            received += key.data.receive()
    return received


if __name__ == "__main__":
    port, seconds, count, sockets, window, size = map(float, sys.argv[1:7])
    result = run(int(port), seconds, int(count), int(sockets), int(window), int(size))
    print(json.dumps(result))
