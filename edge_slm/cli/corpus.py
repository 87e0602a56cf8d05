"""`edge-slm corpus`: write labelled sentences with exact slot spans (or show a few)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict

from ..errors import ConfigError
from ..daemon.options import add_renamed_flag

if TYPE_CHECKING:  # the corpus needs hassil (train extra); import it only when run
    from ..corpus.build import CorpusConfig


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the subcommand."""
    p = sub.add_parser("corpus", help="sample a labelled corpus from Home Assistant templates",
                       description=__doc__)
    p.add_argument("--lang", default="en", help="language of home-assistant-intents (en)")
    p.add_argument("--count", type=int, default=10000, help="number of sentences (10000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (1)")
    p.add_argument("--out", type=Path,
                   help="JSON-lines file to write (stats go to FILE.stats.json); "
                        "without it, sentences are shown on stdout")
    add_renamed_flag(p, "--home", "--inventory", type=Path,
                     help="the home whose names the sentences use (YAML or JSON: entities, "
                          "areas, floors; default: the shipped one)")
    p.add_argument("--sentences", type=Path, nargs="+", default=[],
                   help="custom_sentences YAML files with your own intents")
    p.add_argument("--oos-fraction", type=float, default=0.12,
                   help="share of out-of-scope sentences (%(default)s)")
    p.add_argument("--augment-fraction", type=float, default=0.6,
                   help="share of sentences augmented (%(default)s)")
    p.add_argument("--no-package", action="store_true", help="skip Home Assistant's templates")
    p.add_argument("--no-extended", action="store_true", help="skip edge-slm's own templates")
    p.add_argument("--json", action="store_true", help="with no --out: print JSON lines")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> "CorpusConfig":
    """Build the typed config at the CLI boundary."""
    from ..corpus.build import CorpusConfig

    if args.count < 1:
        raise ConfigError("--count must be at least 1")
    return CorpusConfig(
        lang=args.lang, count=args.count, seed=args.seed,
        inventory=str(args.home) if args.home else None,
        sentences=[str(p) for p in args.sentences],
        include_package=not args.no_package, include_extended=not args.no_extended,
        oos_fraction=args.oos_fraction, augment_fraction=args.augment_fraction,
    )


def show(rec: Dict[str, Any]) -> str:
    """One record as a line a person reads: text with [slot] marks, intent, values."""
    text = rec["text"]
    marked, last = [], 0
    for slot in sorted(rec["slots"], key=lambda s: s["start"]):
        marked.append(text[last:slot["start"]])
        marked.append(f"[{text[slot['start']:slot['end']]}]({slot['name']})")
        last = slot["end"]
    marked.append(text[last:])
    values = {s["name"]: s["value"] for s in rec["slots"]}
    values.update({f"={k}": v for k, v in rec["fixed_slots"].items()})
    values.update({f"ctx.{k}": v for k, v in rec["context"].items()})
    extra = f"  {json.dumps(values, ensure_ascii=False)}" if values else ""
    aug = f"  ~{','.join(rec['augment'])}" if rec["augment"] else ""
    return f"{rec['intent'] or '(out of scope)':<28} {''.join(marked)}{extra}{aug}"


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    from ..corpus.build import CorpusBuilder, write_corpus

    config = config_from_args(args)
    if args.out is None:
        for rec in CorpusBuilder(config).records():
            print(json.dumps(rec, ensure_ascii=False) if args.json else show(rec))
        return 0
    start = time.perf_counter()
    summary = write_corpus(config, args.out, progress=sys.stderr.isatty() or args.count >= 50000)
    elapsed = time.perf_counter() - start
    st = summary["stats"]
    print(f"wrote {st['total']} sentences ({len(st['intents'])} intents incl. out-of-scope, "
          f"{st['unaugmented']} unaugmented) to {args.out} in {elapsed:.1f} s; "
          f"stats in {args.out}.stats.json", file=sys.stderr)
    return 0
