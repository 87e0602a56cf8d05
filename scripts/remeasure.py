#!/usr/bin/env python3
"""Re-measure written bundles after a change to what the engine decides after the model (the
answer's rules, compound splitting): the same members, model.tflite included, gated again by
this checkout's engine; the manifest's metrics and golden cases rewritten in place.

    scripts/remeasure.py --run RUN [--dev FILE] BUNDLE...

RUN is a training run folder whose corpus is the one the bundles were measured on (its
`train_config.json` and `corpus.jsonl`; `edge-slm train` re-creates them byte for byte from
the same corpus config, and may be stopped once its corpus stage has run). Then print each
bundle's figures as the converter's table does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_slm.convert.build import remeasure
from edge_slm.convert.report import format_report
from edge_slm.errors import EdgeSlmError


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="training run folder (its corpus)")
    ap.add_argument("--dev", type=Path, help="a development set of real commands (measured)")
    ap.add_argument("bundles", type=Path, nargs="+", help="bundles to re-measure in place")
    args = ap.parse_args()
    variants = {}
    try:
        for path in args.bundles:
            metrics = remeasure(path, args.run, args.dev)
            variants[path.stem] = {"metrics": metrics, "status": "ok", "reasons": []}
    except EdgeSlmError as err:
        print(f"remeasure: {err}", file=sys.stderr)
        return 1
    print(format_report({"model": "(re-measured)", "variants": variants, "refused": []}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
