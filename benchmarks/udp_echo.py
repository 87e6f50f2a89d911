"""UDP echo origin: every datagram goes back to its sender, unchanged.

    python benchmarks/udp_echo.py PORT

A plain blocking loop: on the load core it answers faster than any of the
proxies forwards, so the proxy stays the bottleneck of the UDP figures.
"""

import socket
import sys

BUFFER = 4 * 1024 * 1024


def serve(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
    sock.bind(("127.0.0.1", port))
    while True:
        data, addr = sock.recvfrom(65535)
        sock.sendto(data, addr)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
