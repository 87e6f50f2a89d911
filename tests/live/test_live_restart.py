"""DESIGN §11 end to end: `l4plan runtime restart` replaces the runtime process
under load and drops nothing; a new process that cannot serve leaves the old
one serving."""

import os
import signal
import socket
import sys
import time

import pytest

from l4plan.providers.admin_client import AdminClient
from tests.live.conftest import application, is_runtime, runtime_pid
from tests.live.load import Load, tcp_exchange
from tests.runtime.runtime_helpers import free_ports

pytestmark = pytest.mark.processes

ADMIN = "unix:.l4plan/runtime.sock"
RESTARTS = 10
LOAD_SECONDS = 150  # a ceiling the load never reaches unless something hangs
EXIT_WAIT = 30.0  # seconds an old process may take to exit once its connections ended


def serve(*options):
    return [sys.executable, "-m", "l4plan", "runtime", "serve", "--admin", ADMIN,
            "--pid-file", ".l4plan/runtime.pid", "--udp-idle-timeout", "2", *options]


@pytest.fixture
def pids():
    """Every runtime pid a test saw; those still running are killed in teardown
    (a restarted process is no child of the test)."""
    seen = []
    yield seen
    for pid in seen:
        if is_runtime(pid):
            os.kill(pid, signal.SIGKILL)


def wait_gone(pid, timeout=EXIT_WAIT):
    deadline = time.monotonic() + timeout
    while is_runtime(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not is_runtime(pid)


def restarted(project, pids):
    """Run `l4plan runtime restart`; the new pid, which the pid file names."""
    before = runtime_pid(project.path)
    result = project.l4plan("runtime", "restart")
    assert result.returncode == 0, result.stdout + result.stderr
    pid = runtime_pid(project.path)
    pids.append(pid)
    assert pid != before
    assert f"pid {pid} serves now; pid {before} finishes" in result.stdout
    return pid


def started(project, ready_process, pids, tagged_origin, *options, env=None):
    """A runtime (with ``env`` added to its environment) serving one TCP rule
    and one UDP rule (PROXY v2) to a tagged origin; (tcp port, udp port, origin port)."""
    tcp, udp, origin = free_ports(3)
    tagged_origin(origin)
    ready_process(serve(*options), "runtime.stderr", env=env)
    pids.append(runtime_pid(project.path))
    project.write(application("app", ("tcp", tcp, origin, "off"), ("udp", udp, origin, "proxy_protocol_v2")))
    applied = project.l4plan("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    return tcp, udp, origin


def test_ten_restarts_under_load_drop_nothing(project, ready_process, tagged_origin, pids):
    """Short TCP connections, three long-lived streams and UDP pings run through
    ten restarts: no TCP connection fails, the streams (which stay with the
    first process) are intact to the last byte, UDP loses at most the replies
    in flight at a switch, and every old process exits after its drain."""
    tcp, udp, origin = started(project, ready_process, pids, tagged_origin, "--drain-timeout", "120")
    load = Load({f"{origin} off", f"{origin} v2"}, [tcp], udp, [tcp] * 3, time.monotonic() + LOAD_SECONDS)
    load.start()
    try:
        time.sleep(0.5)
        for _ in range(RESTARTS):
            restarted(project, pids)
            time.sleep(0.3)
        time.sleep(0.5)
    finally:
        counts = load.stop()
    print(f"\n{RESTARTS} restarts under load: {counts}")
    assert counts.tcp_failed == 0, counts.errors
    assert (counts.streams_intact, counts.streams_broken) == (3, 0), counts.errors
    assert counts.udp_lost <= RESTARTS, counts.errors  # one datagram in flight at a time
    assert counts.tcp_ok > 100 and counts.udp_ok > 100 and counts.stream_bytes > 0
    *old, last = pids
    assert [pid for pid in old if not wait_gone(pid)] == []
    assert is_runtime(last)
    status = project.l4plan("runtime", "status")
    assert f"pid {last}, generation 1" in status.stdout
    assert tcp_exchange(tcp, "after") == f"{origin} off"


def test_a_broken_install_or_a_rejected_document_leaves_the_old_process_serving(
    project, ready_process, tagged_origin, pids, tmp_path
):
    """A new process that cannot import l4plan, or that refuses the applied
    document, is ended; restart exits 1 with its error; the old one serves on,
    and restarts once the cause is gone."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    # Empty for now: the runtime imports the real l4plan.
    tcp, _, origin = started(project, ready_process, pids, tagged_origin, env={"PYTHONPATH": str(shadow)})
    tag = f"{origin} off"
    first = runtime_pid(project.path)

    (shadow / "l4plan").mkdir()
    (shadow / "l4plan" / "__init__.py").write_text('raise ImportError("this l4plan is half installed")\n')
    broken = project.l4plan("runtime", "restart")
    assert broken.returncode == 1
    assert "exited with status 1 before it served" in broken.stderr
    assert "ImportError: this l4plan is half installed" in broken.stderr
    assert "Traceback" not in broken.stderr.split("served:")[0]
    (shadow / "l4plan" / "__init__.py").unlink()
    (shadow / "l4plan").rmdir()

    applied = project.path / ".l4plan" / "applied.json"
    good = applied.read_text()
    applied.write_text('{"format_version": 1, ')
    rejected = project.l4plan("runtime", "restart")
    assert rejected.returncode == 1
    assert "failed: .l4plan/applied.json: cannot be read as JSON" in rejected.stderr
    applied.write_text(good)

    assert runtime_pid(project.path) == first
    assert tcp_exchange(tcp, "still") == tag
    second = restarted(project, pids)
    assert wait_gone(first)
    assert tcp_exchange(tcp, "again") == tag
    assert AdminClient(ADMIN).request("GET", "/v1/status").body["pid"] == second


def test_sigusr2_restarts_and_tells_systemd_the_new_main_pid(
    project, ready_process, tagged_origin, pids, tmp_path
):
    """SIGUSR2 does what `runtime restart` does. Under systemd (Type=notify) the
    runtime says READY=1 once it serves, and MAINPID=NEW when a restart hands
    over, so systemd follows the new process."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(tmp_path / "notify"))
        notify.settimeout(30)
        tcp, _, origin = started(
            project, ready_process, pids, tagged_origin, env={"NOTIFY_SOCKET": str(tmp_path / "notify")}
        )
        assert notify.recv(4096) == b"READY=1"
        first = runtime_pid(project.path)
        os.kill(first, signal.SIGUSR2)
        assert notify.recv(4096) == f"MAINPID={wait_for_new_pid(project, first)}".encode()
    pids.append(runtime_pid(project.path))
    assert wait_gone(first)
    assert tcp_exchange(tcp, "usr2") == f"{origin} off"


def wait_for_new_pid(project, old, timeout=30.0):
    deadline = time.monotonic() + timeout
    while runtime_pid(project.path) in (old, None) and time.monotonic() < deadline:
        time.sleep(0.05)
    return runtime_pid(project.path)


#: What systemd does for a socket unit: the socket on descriptor 3, its count
#: and the service's pid in the environment, then exec.
SYSTEMD = """
import os, sys
os.dup2(int(sys.argv[1]), 3)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.argv[2], sys.argv[2:])
"""


def test_the_admin_socket_can_come_from_systemd(project, ready_process, pids):
    """Socket activation: with LISTEN_FDS=1 and LISTEN_PID its own, the runtime
    serves the admin API on descriptor 3, the socket systemd opened, instead of
    binding --admin itself; a restart hands that socket over too."""
    (project.path / ".l4plan").mkdir()
    with socket.socket(socket.AF_UNIX) as admin:
        admin.bind(".l4plan/runtime.sock")
        admin.listen()
        inode = os.stat(".l4plan/runtime.sock").st_ino
        fd = admin.fileno()
        activated = [sys.executable, "-c", SYSTEMD, str(fd), *serve()]
        ready_process(activated, "runtime.stderr", pass_fds=(fd,))
    pids.append(runtime_pid(project.path))
    assert AdminClient(ADMIN).request("GET", "/healthz").status == 200
    assert os.stat(".l4plan/runtime.sock").st_ino == inode
    restarted(project, pids)
    assert AdminClient(ADMIN).request("GET", "/healthz").status == 200
    assert os.stat(".l4plan/runtime.sock").st_ino == inode


def test_with_workers_every_worker_is_replaced(project, ready_process, tagged_origin, pids):
    """With --workers 2 main gathers each worker's sockets and the new main gives
    them to its own workers: three restarts under load, no TCP connection or
    stream fails, and every process of the runtime is new each time."""
    tcp, udp, origin = started(
        project, ready_process, pids, tagged_origin, "--workers", "2", "--drain-timeout", "120"
    )
    load = Load({f"{origin} off", f"{origin} v2"}, [tcp], udp, [tcp] * 3, time.monotonic() + LOAD_SECONDS)
    load.start()
    processes = []
    try:
        time.sleep(0.5)
        for _ in range(3):
            before = {w["pid"] for w in AdminClient(ADMIN).request("GET", "/v1/status").body["workers"]}
            restarted(project, pids)
            after = AdminClient(ADMIN).request("GET", "/v1/status").body["workers"]
            assert [w["alive"] for w in after] == [True, True]
            assert not before & {w["pid"] for w in after}
            processes += before
            time.sleep(0.3)
    finally:
        counts = load.stop()
    print(f"\n3 restarts of 2 workers under load: {counts}")
    assert counts.tcp_failed == 0, counts.errors
    assert (counts.streams_intact, counts.streams_broken) == (3, 0), counts.errors
    assert counts.udp_lost <= 3, counts.errors
    assert [pid for pid in processes if not wait_gone(pid)] == []
