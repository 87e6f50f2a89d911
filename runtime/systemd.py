# -*- test-case-name: tests.runtime.test_runtime_systemd -*-
"""What systemd asks of a service, without libsystemd: readiness and the main
pid through ``$NOTIFY_SOCKET`` (sd_notify(3)), and sockets it opened for us
through ``$LISTEN_FDS`` (sd_listen_fds(3), socket activation).
"""

import os
import socket

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START


def notify(state):
    """Send ``state`` ("READY=1", "MAINPID=N") to systemd; nothing outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(state.encode(), address)


def listen_fds():
    """The sockets systemd passed to this process (socket activation), each a
    ``socket.socket``; none when it passed none, or passed them to another pid.
    The variables are removed, so no child takes them for its own."""
    count = os.environ.pop("LISTEN_FDS", "")
    pid = os.environ.pop("LISTEN_PID", "")
    os.environ.pop("LISTEN_FDNAMES", None)
    if not count.isdigit() or pid != str(os.getpid()):
        return []
    sockets = [socket.socket(fileno=fd) for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + int(count))]
    for sock in sockets:
        sock.set_inheritable(False)
        sock.setblocking(False)  # systemd passes them blocking; the reactor must never wait
    return sockets
