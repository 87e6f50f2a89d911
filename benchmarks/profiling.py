"""Where the runtime spends its time during each test: py-spy samples, summed by function.

py-spy (``pip install py-spy``) samples the running runtime from outside, so
the runtime runs unchanged; the sampler shares the load core with the load,
so figures of a profiled run are not comparable with others.
"""

import collections
import contextlib
import re
import shutil
import subprocess
from pathlib import Path

RATE = 250  # samples per second
RUNTIME_FILES = "(runtime/"
GRACE = 15


class PySpy:
    """Records one raw (collapsed stacks) profile per test into ``directory``."""

    def __init__(self, directory):
        if not shutil.which("py-spy"):
            raise SystemExit("--py-spy needs py-spy: pip install py-spy")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def sampling(self, pid, name, seconds):
        """Sample ``pid`` for ``seconds`` while the block runs; write ``name``.txt."""
        argv = ["py-spy", "record", "--pid", str(pid), "--duration", str(seconds)]
        argv += ["--rate", str(RATE), "--nonblocking", "--format", "raw"]
        argv += ["-o", str(self.directory / f"{name}.txt")]
        sampler = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield
        finally:
            try:
                sampler.wait(seconds + GRACE)
            except subprocess.TimeoutExpired:
                sampler.kill()
                sampler.wait()


def _function(frame):
    """``"name (file.py:123)"`` without its line number, so a function's lines add up."""
    return re.sub(r":\d+\)$", ")", frame)


def summarize(lines, top=12):
    """From py-spy's raw format, in percent of all samples: the functions most often
    on top of the stack (self), and the runtime's own functions most often anywhere
    on it (inclusive: the reactor's frames are under everything)."""
    own, anywhere, total = collections.Counter(), collections.Counter(), 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        functions, count = [_function(f) for f in stack.split(";")], int(count)
        total += count
        own[functions[-1]] += count
        for function in set(functions):
            if RUNTIME_FILES in function:
                anywhere[function] += count
    if not total:
        return []
    return [
        (kind, 100.0 * n / total, frame)
        for kind, counter in (("self", own), ("inclusive", anywhere))
        for frame, n in counter.most_common(top)
    ]


def write_summaries(directory):
    """DIR/<test>.top.txt next to each DIR/<test>.txt."""
    for raw in sorted(Path(directory).glob("*.txt")):
        if raw.name.endswith(".top.txt"):
            continue
        with open(raw) as lines:
            rows = summarize(lines)
        text = "".join(f"{kind:9} {share:5.1f}%  {frame}\n" for kind, share, frame in rows)
        raw.with_suffix(".top.txt").write_text(text)
