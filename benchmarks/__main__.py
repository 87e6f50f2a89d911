"""Run the proxy benchmarks: ``python -m benchmarks [--quick] [--tests ...] [--proxies ...]``.

Starts the origins and every proxy on loopback, runs each test through each
proxy (interleaved, so drift hits all of them alike) for every repetition,
prints one table of medians and ratios and writes it as JSON under
benchmarks/results/. Every process it starts is stopped on exit, Ctrl-C or
SIGTERM.
"""

import argparse
import dataclasses
import datetime
import signal
import sys
import tempfile
from pathlib import Path

from benchmarks import apply_load, machine, prerequisites, profiling, report, suite, targets
from benchmarks.origins import Origins
from benchmarks.processes import pin_self_to_load_core, raise_nofile
from benchmarks.proxies import PROXIES, routes

RESULTS = Path(__file__).resolve().parent / "results"
APPLY_TEST = "apply_under_load"  # l4plan only, once: 20 applies are its repetitions


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    names = [t.name for t in suite.TESTS] + [APPLY_TEST]
    parser.add_argument("--tests", default=",".join(names), help=f"of: {','.join(names)}")
    parser.add_argument("--proxies", default=",".join(PROXIES), help="default: %(default)s")
    parser.add_argument("--repetitions", type=int, default=suite.Settings.repetitions)
    parser.add_argument("--seconds", type=int, default=suite.Settings.seconds)
    parser.add_argument("--idle-connections", type=int, default=suite.Settings.idle_connections)
    parser.add_argument("--apply-listeners", type=int, default=suite.Settings.apply_listeners)
    parser.add_argument("--applies", type=int, default=suite.Settings.applies)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 s per run, one repetition, 2,000 idle connections, 3 applies to 1,000 listeners",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the l4plan runtime under cProfile, writing DIR/l4plan-*.prof "
        "(its figures are then not comparable)",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="sample the l4plan runtime with py-spy during each test: DIR/<test>.txt "
        "(collapsed stacks) and DIR/<test>.top.txt (figures not comparable either)",
    )
    args = parser.parse_args(argv)
    args.tests = [_pick(n, names, "test") for n in args.tests.split(",")]
    args.proxies = [_pick(n, list(PROXIES), "proxy") for n in args.proxies.split(",")]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    return args


def _pick(name, known, what):
    if name not in known:
        raise SystemExit(f"unknown {what} {name!r}; known: {', '.join(known)}")
    return name


def settings_from(args):
    if args.quick:
        return suite.Settings(
            seconds=2, repetitions=1, idle_connections=2000, apply_listeners=1000, applies=3
        )
    return suite.Settings(
        seconds=args.seconds,
        repetitions=args.repetitions,
        idle_connections=args.idle_connections,
        apply_listeners=args.apply_listeners,
        applies=args.applies,
    )


def check_machine():
    missing = prerequisites.missing_packages()
    if missing:
        raise SystemExit(f"missing; install with: apt-get install {' '.join(missing)}")
    problem = prerequisites.core_problem()
    if problem:
        raise SystemExit(problem)


def run_all(tests, proxies, route_list, settings, profiler):
    """{test: {proxy: [figures per repetition]}}."""
    runs = {}
    for repetition in range(settings.repetitions):
        for test in tests:
            for proxy in (p for p in proxies if suite.applies(test, p)):
                figures = suite.run_once(test, proxy, route_list, settings, profiler)
                runs.setdefault(test.name, {}).setdefault(proxy.name, []).append(figures)
                print(f"[{repetition + 1}] {test.name} {proxy.name}: {figures}", file=sys.stderr)
    return runs


def benchmark(args, settings, workdir):
    origins = Origins(workdir)
    proxies = [PROXIES[name]() for name in args.proxies]
    for proxy in proxies:
        if args.profile and proxy.name == "l4plan":
            proxy.profile = args.profile.resolve() / "l4plan-proxy.prof"
    try:
        route_list = routes(origins.start())
        for proxy in proxies:
            proxy.start(route_list, workdir)
        tests = [t for t in suite.TESTS if t.name in args.tests]
        profiler = args.py_spy and profiling.PySpy(args.py_spy)
        runs = run_all(tests, proxies, route_list, settings, profiler)
        if APPLY_TEST in args.tests:
            profile = args.profile and args.profile.resolve() / "l4plan-apply.prof"
            figures = _apply_under_load(workdir, origins.ports, settings, profile)
            runs[APPLY_TEST] = {"l4plan": [figures]}
            print(f"{APPLY_TEST} l4plan: {figures}", file=sys.stderr)
        return runs
    finally:
        for proxy in proxies:
            proxy.stop()
        origins.stop()


def _apply_under_load(workdir, origin_ports, settings, profile):
    try:
        return apply_load.measure(
            workdir, origin_ports, settings.apply_listeners, settings.applies, profile
        )
    except Exception as exc:  # the table of the other tests is still worth printing
        return {"error": f"{type(exc).__name__}: {exc}"}


def main(argv=None):
    args = parse_args(argv)
    settings = settings_from(args)
    check_machine()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    raise_nofile()
    pin_self_to_load_core()
    started = datetime.datetime.now(datetime.timezone.utc)
    meta = machine.describe(started, dataclasses.asdict(settings))
    with tempfile.TemporaryDirectory(prefix="l4plan-bench-") as workdir:
        runs = benchmark(args, settings, workdir)
    if args.py_spy:
        profiling.write_summaries(args.py_spy)
    result = report.medians(runs)
    print(report.table(result, runs, args.proxies))
    print("\nTargets of issue 7 for the runtime:")
    print("\n".join(targets.lines(result)))
    for test, proxy, message in report.errors(runs):
        print(f"failed: {test} {proxy}: {message}", file=sys.stderr)
    name = started.strftime("%Y%m%dT%H%M%SZ") + ".json"
    print(f"written: {report.write_json(args.results_dir / name, meta, runs, result)}")


if __name__ == "__main__":
    main()
