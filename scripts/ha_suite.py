#!/usr/bin/env python3
"""Home Assistant's own English intent tests through edge-slm: a table per intent and the
failures, for each bundle (default: both shipped bundles).

Every sentence is parsed with its test file's own home and, where Home Assistant hears it from
a satellite, with the satellite's area; an answer is right when the intent and every slot
Home Assistant expects are (edge_slm/runtime/ha_suite.py). Usage:

    python scripts/ha_suite.py [--bundle PATH ...] [--suite DIR] [--failures N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, action="append",
                   help="bundle to test (repeatable; default: the shipped int8 and int4)")
    p.add_argument("--suite", type=Path, default=ROOT / "tests" / "data" / "ha-intents-tests",
                   help="the suite folder (intents.yaml and en/)")
    p.add_argument("--failures", type=int, default=40, help="failures listed per bundle")
    p.add_argument("--json", type=Path, help="write the figures and every failure here")
    args = p.parse_args()

    from edge_slm.runtime.engine import IntentEngine, default_bundle_path
    from edge_slm.runtime.ha_suite import load_suite, run_suite

    suite = load_suite(args.suite)
    bundles = args.bundle or [default_bundle_path("int8"), default_bundle_path("int4")]
    out = {}
    for path in bundles:
        engine = IntentEngine.load(path)
        report = run_suite(engine, suite)
        print(f"\n## {path.name} ({engine.bundle.model_id}): intent "
              f"{100 * report.intent_acc:.1f}%, intent and every expected slot "
              f"{100 * report.slots_acc:.1f}% of {report.n} sentences\n")
        print(report.table())
        print("\nmissed slots (intent right):", report.missed_slots() or "none")
        lines = report.failure_lines()
        print(f"\n{len(lines)} failures" + (f" (first {args.failures}):" if lines else ""))
        for line in lines[:args.failures]:
            print("  " + line)
        out[path.name] = {"model_id": engine.bundle.model_id, "n": report.n,
                          "intent_acc": report.intent_acc, "slots_acc": report.slots_acc,
                          "by_intent": report.by_intent(), "missed_slots": report.missed_slots(),
                          "failures": lines}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
