#!/usr/bin/env python3
"""Benchmark corpus generation on one core, beside hassil's own sampler measured in the same run.

Prints a table of sentences per second with the ratio to the baseline. Usage:
    python scripts/bench_corpus.py [--count 200000] [--lang en]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200000)
    parser.add_argument("--lang", default="en")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    from hassil.intents import TextSlotList
    from hassil.sample import sample_intents

    from edge_slm.corpus.build import CorpusBuilder, CorpusConfig, write_corpus

    t0 = time.perf_counter()
    builder = CorpusBuilder(CorpusConfig(lang=args.lang, count=args.count, seed=1))
    load_s = time.perf_counter() - t0
    inv = builder.inventory
    lists = {
        "area": TextSlotList.from_strings([a.name for a in inv.areas]),
        "floor": TextSlotList.from_strings([f.name for f in inv.floors]),
        "name": TextSlotList.from_strings([e.name for e in inv.entities]),
    }
    rows = []

    # Baseline: hassil's sampler, text only, in template order (what the corpus replaces).
    n_base = min(args.count, 50000)
    t0 = time.perf_counter()
    produced = sum(1 for _ in itertools.islice(
        sample_intents(builder.tset.intents, lists, language=args.lang), n_base))
    rows.append(("hassil sample_intents (text only, template order)", produced,
                 time.perf_counter() - t0))

    rng = random.Random(1)
    templates = [t for t in builder.tset.templates if builder.sampler.usable(t)]
    t0 = time.perf_counter()
    for _ in range(args.count):
        builder.sampler.sample(templates[int(rng.random() * len(templates))], rng)
    rows.append(("edge-slm random walk with spans", args.count, time.perf_counter() - t0))

    t0 = time.perf_counter()
    n = sum(1 for _ in builder.records())
    rows.append(("edge-slm records (walk+augment+split)", n, time.perf_counter() - t0))

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_corpus(replace(builder.config), Path(tmp) / "c.jsonl", builder=builder)
        rows.append(("edge-slm write_corpus (JSON lines+stats)", args.count,
                     time.perf_counter() - t0))

    base_rate = rows[0][1] / rows[0][2]
    print(f"corpus benchmark, lang={args.lang}, one core, templates loaded in {load_s:.2f} s\n")
    print(f"| {'what':<50} | {'sentences':>9} | {'seconds':>7} | {'sent/s':>8} | {'x base':>6} |")
    print(f"|{'-' * 52}|{'-' * 11}|{'-' * 9}|{'-' * 10}|{'-' * 8}|")
    for what, count, secs in rows:
        rate = count / secs
        ratio = rate / base_rate
        print(f"| {what:<50} | {count:>9} | {secs:>7.2f} | {rate:>8.0f} | {ratio:>6.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
