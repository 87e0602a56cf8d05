"""`firmware-tools`: keys and signatures for model bundles, the TensorFlow Lite Micro
export, and flashing over a serial link or MQTT (OTA), both ends: the sender (`flash`, `ota`)
and the device's agents (`serial-agent`, `ota-agent`).

Any error the user can fix exits with status 2 and one line that says what is wrong; any
other exception is a bug and shows its traceback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from edge_slm.daemon.options import (add_link_args, add_site_id_arg, add_trusted_key_arg,
                                     link_connection)
from edge_slm.errors import ConfigError, EdgeSlmError

from . import device_agents
from .flash import add_serial_args


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(prog="firmware-tools", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("keygen", help="make an Ed25519 signing key pair")
    p.add_argument("--out", type=Path, required=True, help="folder for the two key files")
    p = sub.add_parser("sign", help="sign a bundle in place")
    p.add_argument("bundle", type=Path)
    p.add_argument("--key", type=Path, required=True, help="private key (PEM)")
    p.add_argument("--bundle-version", type=int, metavar="N",
                   help="release number, signed with the bundle; agents install only a "
                        "higher one than they run (default: the bundle's own, else the "
                        "time now in seconds)")
    p = sub.add_parser("verify", help="check a bundle's checksums and signature")
    p.add_argument("bundle", type=Path)
    add_trusted_key_arg(p, help="trusted public key (PEM); repeat for several",
                        required=True)
    p = sub.add_parser("export-c", help="the model and its tables as C sources for TFLM")
    p.add_argument("bundle", type=Path)
    p.add_argument("--out", type=Path, required=True, help="folder for the .h/.cc files")
    p.add_argument("--name", default="edge_slm", help="C identifier prefix (default edge_slm)")
    p = sub.add_parser("flash", help="send a bundle to a device's serial agent (resumes)")
    p.add_argument("bundle", type=Path)
    add_serial_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p = sub.add_parser("ota", help="send a bundle to a device over MQTT (resumes)")
    p.add_argument("bundle", type=Path)
    add_link_args(p)
    add_site_id_arg(p, help="the device's site id")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    device_agents.add_parsers(sub)
    return parser


def _flash(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from edge_slm.bundle import BundleError

    from .flash import FlashConfig, describe, flash_bundle

    try:
        data = args.bundle.read_bytes()
    except OSError as err:
        raise BundleError(f"{args.bundle}: cannot read ({err})") from err
    if not data:
        raise BundleError(f"{args.bundle}: nothing to flash: the file is empty")
    with tqdm(total=len(data), unit="B", unit_scale=True, file=sys.stderr,
              disable=args.no_progress, desc=args.bundle.name) as bar:
        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        if args.command == "ota":
            from .mqtt_link import sender_link

            try:
                link = sender_link(link_connection(args), args.site_id)
            except OSError as err:  # the broker cannot be reached (the message says which)
                raise EdgeSlmError(str(err)) from err
            try:
                # MQTT has no line rate to pace by: the protocol's window and timers still hold
                result = flash_bundle(link, data, progress, FlashConfig())
            finally:
                link.close()
        else:
            result = flash_bundle(args.port, data, progress, FlashConfig(baud=args.baud))
    print("\n".join(describe(result)))


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    from . import signing

    try:
        if args.command == "keygen":
            key, pub = signing.keygen(args.out)
            print(f"private key: {key} (keep it secret)\npublic key:  {pub}")
        elif args.command == "sign":
            if args.bundle_version is not None and \
                    not 1 <= args.bundle_version <= signing.MAX_VERSION:
                raise ConfigError(f"--bundle-version {args.bundle_version}: must be from 1 to "
                                  f"{signing.MAX_VERSION}")
            signing.sign(args.bundle, args.key, args.bundle_version)
            version = signing.bundle_version(signing.read_bundle(args.bundle))
            print(f"signed {args.bundle} (bundle version {version})")
        elif args.command == "verify":
            b = signing.verify(args.bundle, args.trusted_key)
            print(f"{args.bundle}: OK ({b.model_id}, bundle version "
                  f"{signing.bundle_version(b)}, signed by a trusted key)")
        elif args.command == "export-c":
            from .carray import export_c

            res = export_c(args.bundle, args.out, args.name)
            for f in res.files:
                print(f)
            print(f"operators: {', '.join(res.ops)}")
            for w in res.warnings:
                print(f"firmware-tools export-c: warning: {w}", file=sys.stderr)
        elif args.command in ("flash", "ota"):
            _flash(args)
        elif args.command == "serial-agent":
            return device_agents.run_serial_agent(args)
        elif args.command == "ota-agent":
            return device_agents.run_ota_agent(args)
        return 0
    except EdgeSlmError as err:  # the only error channel: anything else is a bug
        print(f"firmware-tools {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C stops an agent: status 130, no traceback
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
