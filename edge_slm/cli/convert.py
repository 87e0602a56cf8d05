"""`edge-slm convert`: float, int8 and int4 TFLite bundles, each through a task-level gate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict

from ..errors import ConfigError
from .train import DEFAULT_DEV


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the subcommand."""
    p = sub.add_parser("convert", help="convert a trained model to TFLite bundles (gated)",
                       description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path,
                     help="the trained model folder (RUN/model from `edge-slm train`)")
    src.add_argument("--bundle", type=Path,
                     help="or a float or int8 bundle whose checkpoint is gone: its model is "
                          "quantized again (to --quant int4, say) and gated on --run's "
                          "corpus, which must be the one the bundle was measured on")
    p.add_argument("--out", type=Path, required=True, help="folder for bundles and report")
    p.add_argument("--quant", default="int8,int4",
                   help="variants, comma-separated: float, int8, int4, int8-full "
                        "(default int8,int4; float is always measured as the reference)")
    p.add_argument("--margin", type=float, default=1.0,
                   help="refuse a variant that loses more than this many points of intent "
                        "accuracy against float (default 1.0)")
    # their defaults are ConvertConfig's (convert/build.py, not imported until a conversion)
    p.add_argument("--max-false-accept", type=float,
                   help="refuse a variant that answers more than this share of the held-out "
                        "out-of-scope sentences as commands, alone or in the example home "
                        "(default 0.01)")
    p.add_argument("--max-bytes",
                   help="largest bundle per variant, comma-separated VARIANT=BYTES; a larger "
                        "one is refused (default int4=1000000,int8=1600000; empty: no limit)")
    p.add_argument("--eval-sentences", type=int, default=2000,
                   help="held-out template sentences the gate runs (default 2000)")
    p.add_argument("--lengths", default="8,12,16",
                   help="shorter sentence lengths (tokens), comma-separated, that get a "
                        "signature of their own over the same weights, so that short "
                        "commands run faster (default 8,12,16; empty: the longest only)")
    p.add_argument("--int4-block", type=int,
                   help="int4 weight scales per this many inputs (32, 64, 128, 256) where a "
                        "layer's width allows, instead of one per output channel (0): closer "
                        "to float, slower (default 32)")
    p.add_argument("--run", type=Path, dest="run_dir",
                   help="the training run folder (default: the model folder's parent)")
    p.add_argument("--dev", type=Path,
                   help=f"dev set of real commands (default: {DEFAULT_DEV} when it exists)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    from ..convert.build import ConvertConfig, convert, convert_bundle, format_report

    quants = [q.strip() for q in args.quant.split(",") if q.strip()]
    dev = args.dev if args.dev is not None else (DEFAULT_DEV if DEFAULT_DEV.exists() else None)
    if dev is not None and not dev.exists():
        raise ConfigError(f"--dev {dev}: no such file")
    try:
        lengths = [int(n) for n in args.lengths.split(",") if n.strip()]
    except ValueError as err:
        raise ConfigError(f"--lengths {args.lengths!r}: comma-separated token counts, "
                          "e.g. 16 or 12,20") from err
    if any(n < 2 for n in lengths):
        raise ConfigError(f"--lengths {args.lengths!r}: each length needs at least 2 tokens")
    given: Dict[str, Any] = {}  # the rest: ConvertConfig's defaults
    if args.max_false_accept is not None:
        given["max_false_accept"] = args.max_false_accept
    if args.max_bytes is not None:
        given["max_bundle_bytes"] = _sizes(args.max_bytes)
    if args.int4_block is not None:
        given["int4_block"] = args.int4_block
    config = ConvertConfig(quants=quants, margin=args.margin, eval_sentences=args.eval_sentences,
                           lengths=lengths, **given)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.bundle is not None:
        if args.run_dir is None:
            raise ConfigError("--bundle needs --run RUN: the training run whose corpus the "
                              "bundle was measured on (edge-slm train with the bundle's "
                              "provenance.corpus_config, stopped after its corpus stage)")
        if not args.bundle.is_file():
            raise ConfigError(f"--bundle {args.bundle}: no such file")
        report = convert_bundle(args.bundle, args.out, config, args.run_dir, dev_path=dev,
                                log=log, progress=not args.no_progress)
    else:
        report = convert(args.model, args.out, config, dev_path=dev, run=args.run_dir,
                         log=log, progress=not args.no_progress)
    print(format_report(report))
    print(f"\nreport: {args.out / 'report.md'}, {args.out / 'report.png'}")
    return 1 if report["refused"] else 0


def _sizes(text: str) -> Dict[str, int]:
    """`--max-bytes`: "int4=1000000,int8=1600000" -> {"int4": 1000000, "int8": 1600000}."""
    sizes = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        name, _, value = (part.strip() for part in item.partition("="))
        try:
            size = int(value.replace("_", ""))
        except ValueError as err:
            raise ConfigError(f"--max-bytes {text!r}: VARIANT=BYTES, comma-separated, e.g. "
                              "int4=1000000,int8=1600000") from err
        if not name or size <= 0:
            raise ConfigError(f"--max-bytes {text!r}: each limit needs a variant and a "
                              "positive number of bytes")
        sizes[name] = size
    return sizes
