"""How long ``validate`` takes on a large configuration, and its peak memory.

Builds 100 and 1,000 applications × 30 rules (up to 30,000 rules, 60,000 edge
ports) in a temporary directory, in HCL and in JSON, and times loading it the
way ``l4plan validate`` does and ``plan --no-refresh`` on an empty state,
against issue #15's HCL targets (100 × 30 < 0.5 s, 1,000 × 30 < 3 s).

    python -m benchmarks.validate_scale [--applications N ...] [--rules R]
"""

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

from l4plan import apply as engine
from l4plan.config.variables import VariableInputs
from l4plan.validate import load_config

SITE = {"site": {"example.com": {"plan": "enterprise", "ddos_full_protection": True}}}


def application(index, rules):
    base = 1024 + index * rules * 2
    return {
        "domain": f"app{index}.example.com",
        "ipv6": index % 2 == 0,
        "rule": [
            {
                "protocol": "tcp" if r % 3 else "udp",
                "edge_port": f"{base + 2 * r}-{base + 2 * r + 1}",
                "origin": f"192.0.2.{r + 1}",
                "origin_port": f"{20000 + r}-{20001 + r}",
                "client_ip_passthrough": "proxy_protocol_v2",
            }
            for r in range(rules)
        ],
    }


def write_json(directory, applications, rules):
    (directory / "site.l4.json").write_text(json.dumps(SITE))
    apps = {f"app-{i}": application(i, rules) for i in range(applications)}
    (directory / "apps.l4.json").write_text(json.dumps({"application": apps}))


def write_hcl(directory, applications, rules):
    (directory / "site.l4.hcl").write_text('site "example.com" {\n  plan = "enterprise"\n}\n')
    blocks = []
    for i in range(applications):
        app = application(i, rules)
        body = "".join(
            "  rule {\n" + "".join(f'    {k} = "{v}"\n' for k, v in rule.items()) + "  }\n" for rule in app["rule"]
        )
        blocks.append(f'application "app-{i}" {{\n  domain = "{app["domain"]}"\n{body}}}\n')
    (directory / "apps.l4.hcl").write_text("\n".join(blocks))


def measure(write, applications, rules):
    """Seconds for validate and for plan --no-refresh of one configuration, and
    validate's peak traced memory."""
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        write(directory, applications, rules)
        started = time.perf_counter()
        config = load_config(directory)
        validate = time.perf_counter() - started
        started = time.perf_counter()
        proposal = engine.plan(engine.open_workspace(directory, VariableInputs()), engine.PlanOptions(refresh=False))
        plan = time.perf_counter() - started
        tracemalloc.start()
        load_config(directory)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert len(config.applications) == applications
    assert len(proposal.plan.changes) == applications + 1  # every application and the site are new
    return validate, plan, peak


#: (applications, the most validate and plan may take in HCL) — issue #15's targets.
TARGETS = ((100, 0.5), (1000, 3.0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, nargs="*", default=[size for size, _ in TARGETS])
    parser.add_argument("--rules", type=int, default=30)
    args = parser.parse_args()
    aims = dict(TARGETS)
    print(f"validate and plan --no-refresh, {args.rules} rules per application")
    print("  apps  format  validate s  plan s  peak MiB  ms/rule  aim")
    for size in args.applications:
        for label, write in (("JSON", write_json), ("HCL", write_hcl)):
            validate, plan, peak = measure(write, size, args.rules)
            per_rule = validate / (size * args.rules) * 1000
            aim = aims.get(size) if label == "HCL" else None
            verdict = "" if aim is None else f"< {aim:g} s: {'met' if max(validate, plan) < aim else 'NOT met'}"
            print(f"  {size:>4}  {label:<6}  {validate:>10.2f}  {plan:>6.2f}  {peak / 2**20:>8.0f}  {per_rule:>7.3f}  {verdict}")


if __name__ == "__main__":
    main()
