"""A slow reader must not make the runtime buffer what a fast origin sends."""

import socket
import time

import pytest
from runtime_helpers import free_ports, json_counters, make_document, make_rule, vm_rss_kib

pytestmark = pytest.mark.processes

BLAST = 50 * 1024 * 1024
READS = 2000  # one byte per millisecond: about two seconds


def test_slow_reader_keeps_memory_bounded(processes, start_origin, start_runtime):
    """Origin sends 50 MiB, client reads ~1 byte/ms: RSS and bytes read from the origin stay small."""
    edge, origin = free_ports(2)
    start_origin(f"blast:{BLAST}", "127.0.0.1", origin)
    runtime = start_runtime(make_document([make_rule(str(edge), [(edge, [origin])])]))
    before = vm_rss_kib(runtime.pid)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", edge))
        received = 0
        for _ in range(READS):
            received += len(sock.recv(1))
            time.sleep(0.001)
        during = vm_rss_kib(runtime.pid)
    status, output = processes.stop(runtime)
    relayed = json_counters(output)[f"app/tcp/{edge}"]["bytes_out"]
    print(
        f"\nslow reader: client read {received} B; runtime read {relayed / 2**20:.2f} MiB of "
        f"{BLAST / 2**20:.0f} MiB from the origin; VmRSS {before} KiB before, {during} KiB "
        f"while reading (+{during - before} KiB)"
    )
    assert status == 0
    assert received == READS
    assert during - before < 16 * 1024
    assert relayed < 16 * 2**20
