"""What each state backend adds to a plan: local, pg and etcd in one run.

100 applications × 30 rules, recorded in the state exactly as configured, so
the plan has no changes. Each run opens the backend afresh (as a CLI run
does: a new connection), takes the lock, reads and decodes the state, diffs
and lets go: ``engine.plan`` without refresh. PostgreSQL and etcd are
throwaway servers on loopback started here. The target: pg and etcd add
under 50 ms to local.

    python -m benchmarks.backend_plan [--applications N] [--runs R]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.validate_scale import write_json
from l4plan import apply as engine
from l4plan.config.variables import VariableInputs
from l4plan.model import Settings
from l4plan.state import Resource, open_backend
from l4plan.validate import load_config
from tests.servers import Etcd, Postgres


def settings_of(kind, servers):
    if kind == "local":
        return Settings("local", {"path": "l4plan.state.json"})
    if kind == "pg":
        return Settings("pg", {"conn_str": servers["pg"].url})
    return Settings("etcd", {"endpoints": servers["etcd"].endpoints})


def seed(settings, directory, config):
    backend = open_backend(settings, directory)
    with backend.lock("apply"):
        base = backend.read()
        resources = (Resource.at(a, attrs) for a, attrs in config.resources().items())
        backend.write(base, base.state.with_resources(resources))
    backend.close()


def measure(settings, directory, config, runs):
    seed(settings, directory, config)
    options = engine.PlanOptions(refresh=False)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        backend = open_backend(settings, directory)
        workspace = engine.Workspace(config, None, backend)
        proposal = engine.plan(workspace, options)
        backend.close()
        times.append(time.perf_counter() - started)
        assert not proposal.plan.has_changes
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=100)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    servers = {"pg": Postgres(), "etcd": Etcd()}
    try:
        with tempfile.TemporaryDirectory() as temporary:
            directory = Path(temporary)
            write_json(directory, args.applications, 30)
            config = load_config(directory, VariableInputs())
            medians = {k: measure(settings_of(k, servers), directory, config, args.runs) for k in ("local", "pg", "etcd")}
    finally:
        for server in servers.values():
            server.close()
    local = medians["local"]
    print(f"plan --no-refresh, {args.applications} applications x 30 rules, median of {args.runs}")
    for kind, seconds in medians.items():
        added = "" if kind == "local" else f"  adds {1000 * (seconds - local):6.1f} ms ({seconds / local:.2f}x local)"
        print(f"  {kind:6} {1000 * seconds:7.1f} ms{added}")


if __name__ == "__main__":
    main()
