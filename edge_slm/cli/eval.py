"""`edge-slm eval`: intent accuracy, slot F1, exact match and false accepts of a bundle on a
JSON-lines file (corpus format, or the dev-set format with `slots` as a {name: value} dict)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigError


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the subcommand."""
    p = sub.add_parser("eval", help="measure a bundle on labelled sentences",
                       description=__doc__)
    p.add_argument("--bundle", type=Path, help="model bundle (default: the shipped int8 one)")
    p.add_argument("--data", type=Path, required=True, help="JSON lines with text and intent")
    p.add_argument("--split", help="only records of this split (corpus files: heldout, ...)")
    p.add_argument("--limit", type=int, help="at most this many records")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    from ..runtime.metrics import evaluate
    from .parse import load_engine

    if not args.data.exists():
        raise ConfigError(f"--data {args.data}: no such file")
    records = []
    with open(args.data, encoding="utf-8") as fh:
        try:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError as err:
                    raise ConfigError(f"{args.data}:{n}: not JSON ({err})") from err
                if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
                    raise ConfigError(f"{args.data}:{n}: expected an object with a \"text\"")
                if args.split and rec.get("split") != args.split:
                    continue
                records.append(rec)
                if args.limit and len(records) >= args.limit:
                    break
        except UnicodeDecodeError as err:
            raise ConfigError(f"{args.data}: not UTF-8 text ({err})") from None
    if not records:
        raise ConfigError(f"{args.data}: no records to evaluate")
    engine = load_engine(args.bundle)
    m = evaluate(engine, records)
    if args.json:
        print(json.dumps(m, indent=1))
        return 0
    print(f"bundle: {engine.bundle.where} ({engine.bundle.model_id})")
    print(f"records:          {int(m['n'])}")
    print(f"intent accuracy:  {100 * m['intent_acc']:.2f}%  (best guess, before the "
          f"threshold: {100 * m['top1_acc']:.2f}%)")
    if "rejected_top_right" in m:
        print(f"rejected, though the best intent was right: "
              f"{100 * m['rejected_top_right']:.2f}% of the commands")
    print(f"slot F1:          {100 * m['slot_f1']:.2f}%")
    print(f"exact match:      {100 * m['exact_match']:.2f}%")
    if "implied_acc" in m:
        print(f"implied slots:    {100 * m['implied_acc']:.2f}%  (fixed slots and the "
              "satellite's area, where the intent is right)")
    if "false_accept" in m:
        print(f"false accepts:    {100 * m['false_accept']:.2f}% of {int(m['n_oos'])} "
              "out-of-scope sentences")
    print(f"parse latency:    p50 {m['parse_p50_ms']:.3f} ms, p99 {m['parse_p99_ms']:.3f} ms")
    return 0
