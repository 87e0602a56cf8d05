"""`edge-slm models`: the bundles shipped inside the package, with size, quantization and
the metrics their manifests record."""

from __future__ import annotations

import argparse
import json
from typing import Optional


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the subcommand."""
    p = sub.add_parser("models", help="list the shipped model bundles", description=__doc__)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    from ..bundle import read_bundle
    from ..runtime.engine import default_bundle_path, shipped_bundles

    rows = []
    for path in shipped_bundles():
        b = read_bundle(path)
        m = b.manifest.get("metrics", {})
        rows.append({"path": str(path), "model_id": b.model_id, "quantization": b.quantization,
                     "bytes": path.stat().st_size,
                     "default": path == default_bundle_path(),
                     "heldout_intent_acc": m.get("heldout", {}).get("top1_acc"),
                     "heldout_answered_right": m.get("heldout", {}).get("intent_acc"),
                     "heldout_slot_f1": m.get("heldout", {}).get("slot_f1"),
                     "oos_false_accept": m.get("oos", {}).get("false_accept"),
                     "dev_intent_acc": m.get("dev", {}).get("top1_acc"),
                     "model_p50_ms": m.get("model_p50_ms")})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no bundles shipped in this installation")
        return 1

    def pct(v: Optional[float]) -> str:
        return "-" if v is None else f"{100 * float(v):.2f}%"
    print(f"{'bundle':<16} {'quant':<6} {'bytes':>10} {'held-out intent':>16} "
          f"{'answered':>9} {'slot F1':>8} {'false acc.':>10} {'dev intent':>11} "
          f"{'p50 ms':>7}")
    for r in rows:
        name = r["path"].rsplit("/", 1)[-1] + (" *" if r["default"] else "")
        p50 = "-" if r["model_p50_ms"] is None else f"{r['model_p50_ms']:.3f}"
        print(f"{name:<16} {r['quantization']:<6} {r['bytes']:>10,} "
              f"{pct(r['heldout_intent_acc']):>16} {pct(r['heldout_answered_right']):>9} "
              f"{pct(r['heldout_slot_f1']):>8} {pct(r['oos_false_accept']):>10} "
              f"{pct(r['dev_intent_acc']):>11} {p50:>7}")
    print("* the default (edge-slm parse without --bundle)\n"
          "Held-out template commands and out-of-scope sentences, and the dev set of real "
          "commands where it was present.\nIntent: the model's best guess; answered: right "
          "after the confidence threshold; p50: the model on one thread.")
    return 0
