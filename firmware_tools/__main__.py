"""`firmware-tools`: keys and signatures for model bundles, and the TensorFlow Lite Micro
export (serial flashing and OTA are further subcommands as they land).

Any error exits with status 2 and one line that says what is wrong."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from edge_slm.errors import EdgeSlmError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(prog="firmware-tools", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("keygen", help="make an Ed25519 signing key pair")
    p.add_argument("--out", type=Path, required=True, help="folder for the two key files")
    p = sub.add_parser("sign", help="sign a bundle in place")
    p.add_argument("bundle", type=Path)
    p.add_argument("--key", type=Path, required=True, help="private key (PEM)")
    p = sub.add_parser("verify", help="check a bundle's checksums and signature")
    p.add_argument("bundle", type=Path)
    p.add_argument("--pubkey", type=Path, required=True, action="append",
                   help="trusted public key (PEM); repeat for several")
    p = sub.add_parser("export-c", help="the model and its tables as C sources for TFLM")
    p.add_argument("bundle", type=Path)
    p.add_argument("--out", type=Path, required=True, help="folder for the .h/.cc files")
    p.add_argument("--name", default="edge_slm", help="C identifier prefix (default edge_slm)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    from . import signing

    try:
        if args.command == "keygen":
            key, pub = signing.keygen(args.out)
            print(f"private key: {key} (keep it secret)\npublic key:  {pub}")
        elif args.command == "sign":
            signing.sign(args.bundle, args.key)
            print(f"signed {args.bundle}")
        elif args.command == "verify":
            b = signing.verify(args.bundle, args.pubkey)
            print(f"{args.bundle}: OK ({b.model_id}, signed by a trusted key)")
        elif args.command == "export-c":
            from .carray import export_c

            res = export_c(args.bundle, args.out, args.name)
            for f in res.files:
                print(f)
            print(f"operators: {', '.join(res.ops)}")
            for w in res.warnings:
                print(f"firmware-tools export-c: warning: {w}", file=sys.stderr)
        return 0
    except EdgeSlmError as err:
        print(f"firmware-tools {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
