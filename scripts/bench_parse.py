#!/usr/bin/env python3
"""Benchmark parsing on one core: the engine in-process beside hassil.recognize (Home
Assistant's template matcher) on the same sentences, then `edge-slm parse --jsonl` as a whole
process (lines per second, peak RSS).

Prints a table with ratios to hassil measured in the same run. Usage:
    python scripts/bench_parse.py [--sentences 5000] [--bundle PATH ...]
Needs the `corpus` extra (hassil) for the sentences and the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def sentences(n: int):
    """`n` sentences of the corpus (commands, held-out wording, noise and out-of-scope)."""
    from edge_slm.corpus.build import CorpusBuilder, CorpusConfig

    builder = CorpusBuilder(CorpusConfig(lang="en", count=n, seed=7))
    return builder, [r["text"] for r in builder.records()][:n]


def hassil_times(builder, texts):
    from hassil import recognize
    from hassil.intents import TextSlotList

    inv = builder.inventory
    lists = {
        "area": TextSlotList.from_strings([a.name for a in inv.areas]),
        "floor": TextSlotList.from_strings([f.name for f in inv.floors]),
        "name": TextSlotList.from_strings([e.name for e in inv.entities]),
    }
    ctx = {"area": inv.areas[0].name}
    lat, hits = [], 0
    for t in texts:
        t0 = time.perf_counter()
        r = recognize(t, builder.tset.intents, slot_lists=lists, intent_context=ctx)
        lat.append(time.perf_counter() - t0)
        hits += r is not None
    return np.asarray(lat) * 1000, hits / len(texts)


def engine_times(bundle, texts):
    from edge_slm.runtime.engine import IntentEngine

    engine = IntentEngine.load(bundle)
    for t in texts[:200]:
        engine.parse(t)  # warm up
    lat = []
    for t in texts:
        t0 = time.perf_counter()
        engine.parse(t)
        lat.append(time.perf_counter() - t0)
    return np.asarray(lat) * 1000


def whole_process(bundle, texts):
    """(seconds, lines/s) of `edge-slm parse --jsonl` over `texts`."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
        for t in texts:
            fh.write(json.dumps({"text": t}) + "\n")
        path = fh.name
    cmd = [sys.executable, "-m", "edge_slm", "parse", "--jsonl", "--bundle", str(bundle)]
    cpu = sorted(os.sched_getaffinity(0))[0] if hasattr(os, "sched_getaffinity") else None
    pre = ["taskset", "-c", str(cpu)] if cpu is not None and _has("taskset") else []
    t0 = time.perf_counter()
    with open(path, "rb") as inp:
        out = subprocess.run(pre + cmd, stdin=inp, capture_output=True, check=True)
    secs = time.perf_counter() - t0
    lines = out.stdout.count(b"\n")
    assert lines == len(texts), (lines, len(texts))
    os.unlink(path)
    return secs, lines / secs


def _has(prog: str) -> bool:
    return any((Path(p) / prog).exists() for p in os.environ.get("PATH", "").split(":"))


def main() -> int:
    from edge_slm.runtime.engine import shipped_bundles

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=5000)
    parser.add_argument("--bundle", type=Path, action="append",
                        help="bundle(s) to measure (default: every shipped one)")
    args = parser.parse_args()
    bundles = args.bundle or shipped_bundles()
    if not bundles:
        print("no bundles: pass --bundle PATH", file=sys.stderr)
        return 2
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    builder, texts = sentences(args.sentences)
    base, recognized = hassil_times(builder, texts)
    rows = [("hassil.recognize (template matcher)", base, None)]
    for b in bundles:
        rows.append((f"engine.parse {Path(b).name}", engine_times(b, texts), b))
    base_p50 = float(np.percentile(base, 50))
    print(f"parse benchmark: {len(texts)} corpus sentences, one core; hassil recognized "
          f"{100 * recognized:.1f}% of them\n")
    print(f"| {'what':<40} | {'p50 ms':>7} | {'p99 ms':>7} | {'mean ms':>7} | "
          f"{'x hassil p50':>12} |")
    print(f"|{'-' * 42}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 14}|")
    for what, lat, _ in rows:
        p50 = float(np.percentile(lat, 50))
        print(f"| {what:<40} | {p50:>7.3f} | {float(np.percentile(lat, 99)):>7.3f} | "
              f"{float(lat.mean()):>7.3f} | {base_p50 / p50:>11.1f}x |")
    print(f"\n| {'whole process: edge-slm parse --jsonl':<40} | {'lines':>6} | {'seconds':>7} | "
          f"{'lines/s':>8} | {'peak RSS MB':>11} |")
    print(f"|{'-' * 42}|{'-' * 8}|{'-' * 9}|{'-' * 10}|{'-' * 13}|")
    for b in bundles:
        secs, rate = whole_process(b, texts)
        rss = _child_rss(b)
        print(f"| {Path(b).name:<40} | {len(texts):>6} | {secs:>7.2f} | {rate:>8.0f} | "
              f"{rss:>11.1f} |")
    return 0


def _child_rss(bundle) -> float:
    """Peak RSS (MB) of one `edge-slm parse` of a single text, in a fresh process."""
    # VmHWM, not getrusage: ru_maxrss survives fork+exec and would report this process's peak
    code = ("import sys; from edge_slm.cli import main; "
            "main(['parse', '--bundle', sys.argv[1], 'turn off the kitchen lights']); "
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]; "
            "print(hwm.split()[1], file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, str(bundle)], capture_output=True,
                         text=True, check=True)
    return int(out.stderr.strip().splitlines()[-1]) / 1024


if __name__ == "__main__":
    sys.exit(main())
