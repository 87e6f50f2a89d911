"""An origin that says who it is, for the live-reconfiguration tests.

usage: tagged_origin.py PORT [PORT ...]

On every port, TCP and UDP. A PROXY protocol header (v1 or v2) in front of
the data is taken off and reported, so a client sees which origin port and
which passthrough mode served it:

  TCP  the client sends one line first; the origin answers
       "PORT MODE LINE" and then echoes every further byte.
  UDP  every datagram is answered with "PORT MODE " + its payload.

MODE is off, v1 or v2. Prints "ready" once every port is bound; runs until
killed.
"""

import socket
import sys
import threading

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def split_header(data):
    """(mode, rest) with the PROXY header taken off, or None while incomplete."""
    if data.startswith(V2_SIGNATURE):
        if len(data) < 16:
            return None
        end = 16 + int.from_bytes(data[14:16], "big")
        return ("v2", data[end:]) if len(data) >= end else None
    if V2_SIGNATURE.startswith(data):
        return None
    if data.startswith(b"PROXY "):
        head, found, rest = data.partition(b"\r\n")
        return ("v1", rest) if found else None
    return ("off", data)


def _first_line(conn):
    data = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        split = split_header(data)
        if split is not None and b"\n" in split[1]:
            mode, rest = split
            line, _, after = rest.partition(b"\n")
            return mode, line, after


def _tcp_client(conn, port):
    with conn:
        try:
            first = _first_line(conn)
            if first is None:
                return
            mode, line, after = first
            conn.sendall(f"{port} {mode} ".encode() + line + b"\n" + after)
            while data := conn.recv(65536):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _serve_tcp(listener, port):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_tcp_client, args=(conn, port), daemon=True).start()


def _serve_udp(sock, port):
    while True:
        data, addr = sock.recvfrom(65536)
        mode, payload = split_header(data) or ("broken", data)
        sock.sendto(f"{port} {mode} ".encode() + payload, addr)


def main(*ports):
    for port in map(int, ports):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("127.0.0.1", port))
        tcp.listen(256)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", port))
        threading.Thread(target=_serve_tcp, args=(tcp, port), daemon=True).start()
        threading.Thread(target=_serve_udp, args=(udp, port), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(*sys.argv[1:])
