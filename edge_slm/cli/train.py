"""`edge-slm train`: corpus -> teacher -> student -> pruning -> calibration, with a table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError

#: Where a development checkout keeps the dev set of real commands (used when present).
DEFAULT_DEV = Path("../shared/data/dev_real_commands.jsonl")


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the subcommand."""
    p = sub.add_parser("train", help="train the model (teacher, distilled student, pruned)",
                       description=__doc__)
    p.add_argument("--config", type=Path, help="training config YAML (default: built-in)")
    p.add_argument("--out", type=Path, required=True, help="output folder (resumable)")
    p.add_argument("--dev", type=Path,
                   help=f"dev set of real commands to report on (default: {DEFAULT_DEV} "
                        "when it exists)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    from ..model.pipeline import load_train_config, run_training

    config = load_train_config(args.config)
    dev = args.dev
    if dev is None and DEFAULT_DEV.exists():
        dev = DEFAULT_DEV
        print(f"train: reporting on the dev set {dev}", file=sys.stderr)
    if dev is not None and not dev.exists():
        raise ConfigError(f"--dev {dev}: no such file")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    report = run_training(config, args.out, dev_path=dev, progress=not args.no_progress,
                          log=log)
    from ..model.pipeline import format_table

    print(format_table(report["results"]))
    print(f"\nfinal model: {args.out / 'model'}  (report: {args.out / 'report.md'})")
    return 0
