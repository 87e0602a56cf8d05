#!/usr/bin/env python3
"""Re-measure written bundles after a change to what the engine decides after the model (the
answer's rules, compound splitting): the same members, model.tflite included, gated again by
this checkout's engine; the manifest's metrics and golden cases rewritten in place.

    scripts/remeasure.py --run RUN [--dev FILE] [--add-evidence] BUNDLE...

RUN is a training run folder whose corpus is the one the bundles were measured on (its
`train_config.json` and `corpus.jsonl`; `edge-slm train` re-creates them byte for byte from
the same corpus config, and may be stopped once its corpus stage has run). Then print each
bundle's figures as the converter's table does, marking "refused" (and exiting 1) a bundle
that breaks the limits the converter holds every bundle to (out-of-scope false accepts, size:
convert.build.limits, with the settings the bundle was made with).

--add-evidence first gives each bundle word evidence fitted on RUN's corpus, weighed against
the bundle's own model, and the threshold that accepts as many of RUN's calibration sentences
as the old one did (edge_slm/convert/evidence.py): for bundles made before evidence existed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_slm.convert.build import remeasure
from edge_slm.convert.evidence import add_evidence
from edge_slm.convert.report import format_report
from edge_slm.errors import EdgeSlmError
from edge_slm.model.evidence import EvidenceTrainConfig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="training run folder (its corpus)")
    ap.add_argument("--dev", type=Path, help="a development set of real commands (measured)")
    ap.add_argument("--add-evidence", action="store_true",
                    help="fit word evidence and its threshold first (see above)")
    ap.add_argument("bundles", type=Path, nargs="+", help="bundles to re-measure in place")
    args = ap.parse_args()
    variants = {}
    try:
        for path in args.bundles:
            if args.add_evidence:
                add_evidence(path, args.run, EvidenceTrainConfig())
            metrics, reasons = remeasure(path, args.run, args.dev)
            variants[path.stem] = {"metrics": metrics, "reasons": reasons,
                                   "status": "refused" if reasons else "ok"}
    except EdgeSlmError as err:
        print(f"remeasure: {err}", file=sys.stderr)
        return 1
    print(format_report({"model": "(re-measured)", "variants": variants, "refused": []}))
    return 1 if any(v["reasons"] for v in variants.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
