"""A stand-in origin for the end-to-end tests, run as its own process.

usage: origin_server.py MODE HOST PORT [PORT ...]

  echo        TCP: send back what arrives; after the client's FIN, shut down writing
  greet       TCP: send "HOST PORT\\n" first, then echo
  digest      TCP: read to EOF, then send the byte count and sha256, then close
  blast:N     TCP: send N bytes as fast as the client takes them, then close
  udp-echo    UDP: send each datagram back as it came
  udp-mirror  UDP: send back b"GOT:" + the datagram exactly as it came

Prints "ready" once every port is bound; runs until killed.
"""

import functools
import hashlib
import socket
import sys
import threading


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _echo(conn, prefix=b""):
    conn.sendall(prefix)
    while data := conn.recv(65536):
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)


def _digest(conn):
    digest, count = hashlib.sha256(), 0
    while data := conn.recv(65536):
        digest.update(data)
        count += len(data)
    conn.sendall(f"{count} {digest.hexdigest()}\n".encode())


def _blast(conn, total):
    chunk = b"x" * 65536
    while total > 0:
        total -= conn.send(chunk[: min(total, len(chunk))])


def _serve_tcp(listener, handler):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_handle, args=(conn, handler), daemon=True).start()


def _handle(conn, handler):
    try:
        with conn:
            handler(conn)
    except OSError:
        pass


def _serve_udp(sock, mirror):
    while True:
        data, addr = sock.recvfrom(65536)
        sock.sendto(b"GOT:" + data if mirror else data, addr)


def main(mode, host, *ports):
    threads = []
    for port in map(int, ports):
        udp = mode.startswith("udp")
        sock = socket.socket(_family(host), socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if udp:
            threads.append(threading.Thread(target=_serve_udp, args=(sock, mode == "udp-mirror")))
            continue
        sock.listen(128)
        if mode == "echo":
            handler = _echo
        elif mode == "greet":
            handler = functools.partial(_echo, prefix=f"{host} {port}\n".encode())
        elif mode == "digest":
            handler = _digest
        else:
            handler = functools.partial(_blast, total=int(mode.split(":")[1]))
        threads.append(threading.Thread(target=_serve_tcp, args=(sock, handler)))
    for thread in threads:
        thread.daemon = True
        thread.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(*sys.argv[1:])
