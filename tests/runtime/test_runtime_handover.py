"""A restart's parts, in memory: the socket channel, the successor's command,
the old process's stop after a handover, the admin API and the signal.
End to end with real processes: tests/live/test_live_restart.py."""

import os
import socket

import pytest
from runtime_helpers import UdpReactor, make_document, make_rule
from test_runtime_admin import DOCUMENT, call, put
from test_runtime_serve import open_connection, start
from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from l4plan.runtime import admin, handover, systemd
from l4plan.runtime.reconcile import LiveConfig, ReconcileError
from l4plan.runtime.serve import Runtime, SignalHandler
from l4plan.runtime.settings import Settings


@pytest.fixture
def live(tmp_path):
    runtime = Runtime(UdpReactor(), Settings(data_dir=str(tmp_path), splice=False))
    config = LiveConfig.restore(runtime, tmp_path)
    runtime.startService()
    return config


def listening_sockets(count):
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sockets.append(sock)
    return sockets


def test_sockets_cross_the_channel_by_name_in_messages_the_kernel_takes():
    """600 sockets (the kernel passes at most 253 in one message) arrive under
    their names, each the very socket sent: same address, accepting."""
    sent = listening_sockets(600)
    names = {f"tcp 127.0.0.1:{sock.getsockname()[1]}": sock for sock in sent}
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        handover.send_sockets(ours, {name: sock.fileno() for name, sock in names.items()})
        received = handover.receive_sockets(theirs)
    assert list(received) == list(names)
    for name, sock in received.items():
        assert sock.getsockname() == names[name].getsockname()
    port = sent[-1].getsockname()[1]
    with socket.create_connection(("127.0.0.1", port)):
        accepted, _ = received[f"tcp 127.0.0.1:{port}"].accept()
        accepted.close()
    for sock in [*sent, *received.values()]:
        sock.close()


def test_an_unexpected_message_is_refused_and_its_sockets_closed():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    extra = socket.socket()
    with ours, theirs, extra:
        socket.send_fds(ours, [b'{"surprise": 1}'], [extra.fileno()])
        with pytest.raises(handover.HandoverError, match="expected sockets or end .* got \\['surprise'\\]"):
            handover.receive_sockets(theirs)


@pytest.mark.parametrize(
    "argv",
    [
        ["runtime", "serve", "--data-dir", "d", "--workers", "2"],
        ["-C", "project", "--no-color", "runtime", "serve", "--data-dir", "d", "--workers", "2"],
    ],
)
def test_the_successor_runs_the_same_serve_arguments_from_the_l4plan_installed_now(argv):
    """-C was applied (the working directory is the same), so it is not repeated."""
    command = handover.successor_command(argv)
    assert command[1:] == ["-m", "l4plan", "runtime", "serve", "--data-dir", "d", "--workers", "2"]


def test_after_a_handover_udp_sessions_answer_until_they_idle_out():
    """Handed over, a UDP listener stops reading its socket (the next process
    reads it) but keeps the socket open: its sessions still answer through it
    until they idle out (30 s here) and the listener is done."""
    reactor, runtime = start(make_document([make_rule("53", [(53, [5353])], protocol="udp")]))
    _, relay, edge = reactor.udp_ports[0]
    relay.datagramReceived(b"q", ("198.51.100.1", 1000))
    _, session, origin = reactor.udp_ports[1]
    runtime.hand_over()
    stopped = runtime.stopService()
    assert not edge.reading and not edge.stopped and not stopped.called
    session.datagramReceived(b"a", ("127.0.0.1", 5353))
    assert edge.written[-1] == (b"a", ("198.51.100.1", 1000))
    reactor.advance(30)
    assert origin.stopped and stopped.called
    assert not edge.stopped  # never closed here: it is the next process's now


def test_after_a_handover_tcp_stops_reading_and_drains():
    """A TCP listener handed over is only no longer read (Twisted's close of a
    socket it opened shuts it down for every process); its connections drain."""
    reactor, runtime = start(make_document([make_rule("80", [(80, [8080])])]))
    leg = open_connection(reactor)
    (listener,) = runtime
    calls = []
    listener._port.stopReading = lambda: calls.append("stopReading")
    listener._port.stopListening = lambda: calls.append("stopListening")
    runtime.hand_over()
    stopped = runtime.stopService()
    assert calls == ["stopReading"] and not stopped.called
    leg.connectionLost(Failure(ConnectionDone()))
    assert stopped.called


class Restart:
    """What the admin API and the signal handler see of a ``restart.Restart``."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.under_way = False
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.outcome


@pytest.mark.parametrize(
    ("outcome", "answer"),
    [
        (defer.succeed(4242), (200, {"pid": 4242, "previous": os.getpid()})),
        (defer.fail(handover.HandoverError("the new runtime process (pid 7) failed: no")),
         (500, {"error": "the new runtime process (pid 7) failed: no"})),
    ],
)
def test_post_restart_answers_once_the_new_process_serves_or_did_not(live, outcome, answer):
    site = admin.make_site(live, restart=Restart(outcome))
    assert call(site, b"POST", b"/v1/restart") == answer


def test_one_restart_at_a_time_and_no_restart_resource_without_one(live):
    restart = Restart(defer.Deferred())
    restart.under_way = True
    assert call(admin.make_site(live, restart=restart), b"POST", b"/v1/restart")[0] == 409
    assert restart.calls == 0
    assert call(admin.make_site(live), b"POST", b"/v1/restart")[0] == 404


def test_the_document_is_held_while_a_restart_is_under_way(live):
    """The next process has read applied.json: a change now would reach one
    process and not the other, so PUT is a 503 and a change already under way
    (a fleet's, a sliced PUT) fails before anything is saved."""
    released = []
    live.on_release(lambda: released.append(True))
    live.hold("a restart is under way; try again in a moment")
    assert put(admin.make_site(live), DOCUMENT, 0) == (503, {"error": live.held})
    with pytest.raises(ReconcileError, match="a restart is under way"):
        live.apply(DOCUMENT)
    assert live.generation == 0
    live.release()
    assert released == [True]
    assert put(admin.make_site(live), DOCUMENT, 0)[0] == 200


def test_sigusr2_restarts_unless_stopping_or_a_worker():
    reactor, runtime = start(make_document([]))
    restart = Restart(defer.succeed(1))
    handler = SignalHandler(reactor, runtime, restart=restart)
    handler.handle("SIGUSR2")
    assert restart.calls == 1
    SignalHandler(reactor, runtime).handle("SIGUSR2")  # a worker: logged, nothing else
    handler.handle("SIGTERM")
    handler.handle("SIGUSR2")
    assert restart.calls == 1


@pytest.mark.parametrize("abstract", [False, True])
def test_systemd_hears_readiness_and_the_main_pid(tmp_path, monkeypatch, abstract):
    address = f"\0l4plan-test-{os.getpid()}" if abstract else str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + address[1:] if abstract else address)
        systemd.notify("MAINPID=4242")
        assert listener.recv(100) == b"MAINPID=4242"
    monkeypatch.delenv("NOTIFY_SOCKET")
    systemd.notify("READY=1")  # outside systemd: nothing, no error


def test_sockets_systemd_passed_to_another_process_are_not_taken(monkeypatch):
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))
    assert systemd.listen_fds() == []
    assert "LISTEN_FDS" not in os.environ and "LISTEN_PID" not in os.environ
