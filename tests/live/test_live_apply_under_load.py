"""DESIGN §6 end to end: `l4plan apply` reconfigures a running runtime under load
and no client on a listener that stays notices."""

import socket
import time
from dataclasses import dataclass

import pytest

from tests.live.conftest import application, runtime_pid
from tests.live.load import Load, tcp_exchange, udp_exchange
from tests.runtime.runtime_helpers import free_ports

pytestmark = pytest.mark.processes

APPLIES = 22
LOAD_SECONDS = 150  # a ceiling the load never reaches unless something hangs
MODES = {"off": "off", "proxy_protocol_v2": "v2"}


@dataclass(frozen=True)
class Ports:
    steady_tcp: int
    steady_udp: int
    extra: int
    added: int
    mover: int
    doomed: int
    origin_a: int
    origin_b: int


@dataclass(frozen=True)
class Step:
    """The configuration of one apply; each differs from the one before."""

    tcp_origin: int
    tcp_passthrough: str
    udp_origin: int
    udp_passthrough: str
    extra_rule: bool
    added_app: bool
    mover_domain: str
    doomed_app: bool

    @classmethod
    def number(cls, i, p):
        return cls(
            tcp_origin=(p.origin_a, p.origin_b)[i % 2],  # an origin port changes every time
            tcp_passthrough=("off", "proxy_protocol_v2")[i // 2 % 2],
            udp_origin=(p.origin_a, p.origin_b)[i // 3 % 2],
            udp_passthrough=("off", "proxy_protocol_v2")[i // 4 % 2],
            extra_rule=i // 2 % 2 == 1,
            added_app=i // 3 % 2 == 1,
            mover_domain=("mover-a", "mover-b")[i // 4 % 2],  # a domain change replaces
            doomed_app=i % 5 != 4,  # removed every fifth apply, back the next
        )

    def blocks(self, p):
        steady = [
            ("tcp", p.steady_tcp, self.tcp_origin, self.tcp_passthrough),
            ("udp", p.steady_udp, self.udp_origin, self.udp_passthrough),
        ]
        if self.extra_rule:
            steady.append(("tcp", p.extra, p.origin_b, "off"))
        blocks = [
            application("steady", *steady),
            application("mover", ("tcp", p.mover, p.origin_a, "off"), domain=self.mover_domain),
        ]
        if self.added_app:
            blocks.append(application("added", ("tcp", p.added, p.origin_a, "off")))
        if self.doomed_app:
            blocks.append(application("doomed", ("tcp", p.doomed, p.origin_b, "off")))
        return blocks

    def expected(self, p):
        """Edge port -> the tag a new TCP connection gets, or None: nothing listens."""
        return {
            p.steady_tcp: f"{self.tcp_origin} {MODES[self.tcp_passthrough]}",
            p.mover: f"{p.origin_a} off",
            p.extra: f"{p.origin_b} off" if self.extra_rule else None,
            p.added: f"{p.origin_a} off" if self.added_app else None,
            p.doomed: f"{p.origin_b} off" if self.doomed_app else None,
        }


def check_new_connections(step, p, number):
    """After an apply, new connections and sessions follow the new rules.

    The UDP probe of check ``number`` comes from an address of its own: the
    runtime keys sessions by client (address, port) and keeps a session's rule
    for its 30 s idle timeout, so a probe from 127.0.0.1 could reuse the port
    of a load socket closed a moment ago and be answered by that older rule.
    """
    for port, tag in step.expected(p).items():
        if tag is None:
            with pytest.raises(ConnectionRefusedError):
                tcp_exchange(port, "probe")
        else:
            assert tcp_exchange(port, "probe") == tag, port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((f"127.0.0.{2 + number}", 0))
        udp_tag = udp_exchange(sock, p.steady_udp, "probe")
    assert udp_tag == f"{step.udp_origin} {MODES[step.udp_passthrough]}"


def test_applies_under_load_drop_nothing(project, tagged_origin):
    """22 applies of different changes while short TCP connections, long-lived
    streams and UDP exchanges run: on the listeners that stay, nothing fails,
    nothing is lost, every stream is intact; new connections follow each new
    configuration."""
    p = Ports(*free_ports(8))
    tagged_origin(p.origin_a, p.origin_b)
    steps = [Step.number(i, p) for i in range(APPLIES + 1)]
    project.write(*steps[0].blocks(p))
    first = project.l4plan("apply", "--auto-approve")
    assert first.returncode == 0, first.stderr
    assert "started a local runtime" in first.stderr
    check_new_connections(steps[0], p, 0)

    tags = {f"{port} {mode}" for port in (p.origin_a, p.origin_b) for mode in ("off", "v2")}
    load = Load(
        tags,
        tcp_ports=[p.steady_tcp, p.mover],
        udp_port=p.steady_udp,
        stream_ports=[p.steady_tcp, p.steady_tcp, p.mover],
        deadline=time.monotonic() + LOAD_SECONDS,
    )
    load.start()
    replaced = 0
    try:
        for number, step in enumerate(steps[1:], 1):
            project.write(*step.blocks(p))
            result = project.l4plan("apply", "--auto-approve")
            assert result.returncode == 0, result.stdout + result.stderr
            assert "Apply complete!" in result.stdout
            replaced += "# application.mover must be replaced" in result.stdout
            check_new_connections(step, p, number)
    finally:
        counts = load.stop()

    print(
        f"\n{APPLIES} applies under load: short TCP {counts.tcp_ok} ok / "
        f"{counts.tcp_failed} failed; UDP {counts.udp_ok} answered / {counts.udp_lost} lost; "
        f"long-lived streams {counts.streams_intact} intact / {counts.streams_broken} broken, "
        f"{counts.stream_bytes} bytes echoed byte-exact"
    )
    assert replaced == 5  # the domain changes every fourth apply
    assert counts.errors == []
    assert (counts.tcp_failed, counts.udp_lost, counts.streams_broken) == (0, 0, 0)
    assert counts.streams_intact == 3
    assert min(counts.tcp_ok, counts.udp_ok) > APPLIES  # the load ran through the applies
    assert runtime_pid(project.path) is not None
