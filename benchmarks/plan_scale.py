"""Plan at scale: N applications x 30 rules, one of them changed.

Builds the desired resources from model objects (as a loaded configuration
would give them), a state equal to it but for one application, then times
diff (the plan) and the text and JSON renderings, with peak memory from
tracemalloc. Cost should grow linearly with N; the aim is under 2 s for
1,000 applications. Run: ``python benchmarks/plan_scale.py [N ...]``.
"""

import copy
import io
import json
import sys
import time
import tracemalloc

from l4plan.diff import diff
from l4plan.model import Application, Rule
from l4plan.ports import parse_origin_port, parse_port_spec
from l4plan.render.text import TextRenderer

RULES = 30


def _rule(app, index):
    edge = parse_port_spec(f"{10000 + index * 10}-{10000 + index * 10 + 9}")
    origin = parse_origin_port(f"{20000 + index * 10}-{20000 + index * 10 + 9}")
    return Rule(
        protocol="tcp" if index % 2 else "udp",
        edge_port=edge,
        origin_type="ip",
        origin=f"10.{app // 250}.{app % 250}.{index + 1}",
        origin_port=origin,
    )


def _application(index):
    rules = tuple(_rule(index, r) for r in range(RULES))
    return Application(
        name=f"app{index:05}", domain=f"app{index:05}.example.com", rules=rules
    )


def _resources(count):
    apps = (_application(i) for i in range(count))
    return {f"application.{a.name}": a.to_dict() for a in apps}


def _inputs(count):
    desired = _resources(count)
    state = copy.deepcopy(desired)
    changed = state[f"application.app{count // 2:05}"]
    changed["rules"][3]["origin_port"] = "30000-30009"
    return desired, state


def _plan_and_render(desired, state):
    plan = diff(desired, state)
    planned = time.perf_counter()
    TextRenderer().render(plan, io.StringIO())
    json.dumps(plan.to_dict(), sort_keys=True, indent=2)
    return plan, planned


def _measure(count):
    """Times from an untraced run; peak memory from a second, traced run."""
    desired, state = _inputs(count)
    started = time.perf_counter()
    plan, planned = _plan_and_render(desired, state)
    rendered = time.perf_counter()
    assert plan.summary == {"add": 0, "change": 1, "destroy": 0}
    tracemalloc.start()
    _plan_and_render(desired, state)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return planned - started, rendered - planned, peak


def main(sizes):
    print("diff = the plan; render = text + JSON (json.dumps, indent=2) of it")
    print(
        f"{'apps':>6} {'rules':>7} {'diff s':>8} {'render s':>9} {'peak MiB':>9} {'ms/app':>7}"
    )
    for count in sizes:
        plan_s, render_s, peak = _measure(count)
        per_app = (plan_s + render_s) * 1000 / count
        print(
            f"{count:>6} {count * RULES:>7} {plan_s:>8.3f} {render_s:>9.3f} "
            f"{peak / 2**20:>9.1f} {per_app:>7.2f}"
        )


if __name__ == "__main__":
    main([int(n) for n in sys.argv[1:]] or [100, 1000])
