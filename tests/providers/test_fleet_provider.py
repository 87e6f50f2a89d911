"""The fleet provider's pure parts: what plan says about nodes that drift."""

from l4plan.providers.fleet import drift_lines


def report(revision, status="ok", error=None, digest="h"):
    return {"revision": revision, "status": status, "error": error, "hash": digest}


def test_nodes_in_step_say_nothing_and_the_others_say_how_they_drift():
    nodes = {
        "a": report(9),
        "b": report(7),
        "c": report(9, "error", "tcp 127.0.0.3:7000: [Errno 98] Address already in use"),
        "d": report(9, digest="other"),
    }
    assert drift_lines(nodes, 9, "h") == [
        "warning: node b is behind: it serves revision 7 of 9",
        "warning: node c is in error at revision 9: tcp 127.0.0.3:7000: [Errno 98] Address already in use",
        "warning: node d serves another document than the desired one (hash other)",
    ]
