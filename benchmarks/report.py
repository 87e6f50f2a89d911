"""Medians of the runs, ratios to the references, one table and one JSON file.

Pure functions of the recorded runs, so the smoke test can check them and a
saved JSON file can be re-rendered.
"""

import json
import statistics
from pathlib import Path

REFERENCES = ("haproxy", "nginx", "direct")


def medians(runs):
    """{test: {proxy: {figure: median}}} over the runs that did not fail."""
    result = {}
    for test, by_proxy in runs.items():
        for proxy, figures in by_proxy.items():
            good = [f for f in figures if "error" not in f]
            if good:
                names = list(good[0])
                medians_ = {n: statistics.median(f[n] for f in good) for n in names}
                result.setdefault(test, {})[proxy] = medians_
    _add_derived(result)
    return result


def _add_derived(result):
    """Figures the issue's targets are stated in: added p99 latency, PROXY v2 cost,
    the one-rule reconcile on the large document over the same on the small one."""
    keepalive = result.get("keepalive", {})
    if "direct" in keepalive:
        direct_p99 = keepalive["direct"]["p99_ms"]
        for figures in keepalive.values():
            figures["p99_added_ms"] = figures["p99_ms"] - direct_p99
    apply = result.get("apply_under_load", {}).get("l4plan", {})
    if apply.get("put_one_rule_small_s"):
        apply["put_large_over_small"] = apply["put_one_rule_s"] / apply["put_one_rule_small_s"]
    plain = result.get("conn_close", {})
    for proxy, figures in result.get("conn_close_proxy_v2", {}).items():
        if proxy in plain:
            figures["cost_pct"] = 100.0 * (1 - figures["req_s"] / plain[proxy]["req_s"])


def ratio(value, reference):
    if reference is None or value is None or reference == 0:
        return None
    return value / reference


def rows(result, runs, proxies):
    """Table rows: test, figure, proxy, runs, value, then one ratio per reference."""
    for test, by_proxy in result.items():
        names = list(dict.fromkeys(n for f in by_proxy.values() for n in f))
        for name in names:
            order = list(proxies) + [p for p in by_proxy if p not in proxies]
            for proxy in (p for p in order if name in by_proxy.get(p, {})):
                value = by_proxy[proxy][name]
                refs = [by_proxy.get(r, {}).get(name) for r in REFERENCES]
                yield [test, name, proxy, _runs(runs[test][proxy]), value] + [
                    ratio(value, r) for r in refs
                ]


def _runs(figures):
    good = sum("error" not in f for f in figures)
    return str(good) if good == len(figures) else f"{good}/{len(figures)}"


def number(value):
    """Three significant digits, never an exponent."""
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def ratio_text(value):
    return "-" if value is None else f"{value:.2f}"


HEADER = ["test", "figure", "proxy", "runs", "median"] + [f"x{r}" for r in REFERENCES]


def table(result, runs, proxies):
    """The figures as a Markdown table (readable as plain text too)."""
    lines = [HEADER]
    for row in rows(result, runs, proxies):
        lines.append(row[:4] + [number(row[4])] + [ratio_text(r) for r in row[5:]])
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    text = [_line(line, widths) for line in lines]
    text.insert(1, _line(["-" * w for w in widths], widths))
    return "\n".join(text)


def _line(cells, widths):
    padded = [c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
    return "| " + " | ".join(padded) + " |"


def errors(runs):
    """(test, proxy, message) for every failed run."""
    for test, by_proxy in runs.items():
        for proxy, figures in by_proxy.items():
            for f in figures:
                if "error" in f:
                    yield test, proxy, f["error"]


def write_json(path, meta, runs, result):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, "runs": runs, "medians": result}
    path.write_text(json.dumps(document, indent=1) + "\n")  # keys in table order
    return path
