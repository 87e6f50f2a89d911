"""How long ``validate`` takes on a large configuration, and its peak memory.

Builds 1,000 applications × 30 rules (30,000 rules, 60,000 edge ports) in a
temporary directory and loads it the way ``l4plan validate`` does. JSON is the
format at this size: python-hcl2's parser needs about 0.7 ms per rule, so the
same configuration in HCL is timed on a tenth of it and reported per rule.

    python -m benchmarks.validate_scale [--applications N] [--rules R]
"""

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

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
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        write(directory, applications, rules)
        started = time.perf_counter()
        config = load_config(directory)
        seconds = time.perf_counter() - started
        tracemalloc.start()
        load_config(directory)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert len(config.applications) == applications
    return seconds, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=1000)
    parser.add_argument("--rules", type=int, default=30)
    args = parser.parse_args()
    total = args.applications * args.rules
    seconds, peak = measure(write_json, args.applications, args.rules)
    print(f"validate JSON: {args.applications} applications x {args.rules} rules = {total} rules")
    print(f"  time {seconds:.2f} s (aim < 2 s), peak traced memory {peak / 2**20:.0f} MiB")
    small = max(1, args.applications // 10)
    seconds, peak = measure(write_hcl, small, args.rules)
    per_rule = seconds / (small * args.rules) * 1000
    print(f"validate HCL: {small} applications x {args.rules} rules")
    print(f"  time {seconds:.2f} s ({per_rule:.2f} ms per rule), peak traced memory {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
