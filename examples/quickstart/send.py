"""Send one message through the quick start's edge port 7000, over TCP and UDP.

    python examples/quickstart/send.py [MESSAGE [EDGE_PORT]]
"""

import socket
import sys



def over_tcp(message, edge):
    with socket.create_connection(edge, timeout=5) as connection:
        connection.sendall(message)
        connection.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: connection.recv(65536), b""))


def over_udp(message, edge):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(message, edge)
        return sock.recv(65536)


if __name__ == "__main__":
    message = (sys.argv[1] if len(sys.argv) > 1 else "hello through l4plan").encode()
    edge = ("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 7000)
    print("tcp:", over_tcp(message, edge).decode())
    print("udp:", over_udp(message, edge).decode())
