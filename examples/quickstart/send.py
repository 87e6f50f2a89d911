"""Send one message through the quick start's edge port 7000, over TCP and UDP.

    python examples/quickstart/send.py [MESSAGE]
"""

import socket
import sys

EDGE = ("127.0.0.1", 7000)


def over_tcp(message):
    with socket.create_connection(EDGE, timeout=5) as connection:
        connection.sendall(message)
        connection.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: connection.recv(65536), b""))


def over_udp(message):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(message, EDGE)
        return sock.recv(65536)


if __name__ == "__main__":
    message = (sys.argv[1] if len(sys.argv) > 1 else "hello through l4plan").encode()
    print("tcp:", over_tcp(message).decode())
    print("udp:", over_udp(message).decode())
