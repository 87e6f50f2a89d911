"""The runtime's log stays bounded: repeated events throttled, session noise dropped, files rotated."""

from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from l4plan.runtime import logs


def test_a_repeated_event_is_one_line_per_interval_with_a_count():
    """The first event is logged, the next ones in the interval are only counted,
    and the next line says how many were left out."""
    clock = Clock()
    throttle = logs.Throttle(clock.seconds, interval=10)
    assert throttle.allow("app/tcp/7000") == 0
    assert [throttle.allow("app/tcp/7000") for _ in range(500)] == [None] * 500
    assert throttle.allow("app/udp/53") == 0  # another rule is another key
    clock.advance(10)
    assert throttle.allow("app/tcp/7000") == 500


def test_origin_failures_log_once_per_interval():
    """A thousand failing connections of one rule make one line, then one with the count."""
    clock = Clock()
    throttle = logs.Throttle(clock.seconds, interval=10)
    events = []
    observer = events.append
    globalLogPublisher.addObserver(observer)
    try:
        for _ in range(1000):
            logs.origin_failed("app/tcp/7000", "refused", throttle)
        clock.advance(10)
        logs.origin_failed("app/tcp/7000", "refused", throttle)
    finally:
        globalLogPublisher.removeObserver(observer)
    lines = [formatEvent(e) for e in events if e.get("log_level") == LogLevel.info]
    assert lines == [
        "app/tcp/7000: origin failed: refused",
        "app/tcp/7000: origin failed: refused (999 more since the last line)",
    ]


def test_udp_session_socket_lines_are_dropped():
    """Twisted's line for each session socket opened or closed is left out; others are kept."""
    kept = [logs._quiet({"log_format": text}) for text in (
        "UdpSession starting on 40123",
        "(UDP Port 40123 Closed)",
        "UdpRelay starting on 53",
        "app/tcp/7000: origin failed: refused",
    )]
    assert [k.name for k in kept] == ["no", "no", "maybe", "maybe"]


def test_the_log_file_rotates_by_size(tmp_path):
    """--log-file rotates by size and keeps KEEP_FILES old files, so it never grows unbounded."""
    path = tmp_path / "runtime.log"
    stream = logs.rotated(str(path), rotate_bytes=1000)
    for _ in range(100):
        stream.write("x" * 99 + "\n")
    stream.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["runtime.log"] + [f"runtime.log.{i}" for i in range(1, logs.KEEP_FILES + 1)]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
