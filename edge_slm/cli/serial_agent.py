"""`edge-slm serial-agent`: the device side of `firmware-tools flash`.

    edge-slm serial-agent --port /dev/ttyS0 --slots /var/lib/edge-slm/slots \\
        --trusted-key keys/edge-slm-signing.pub.pem

Receives bundles over a serial link (any pyserial URL), resuming interrupted transfers, and
installs each one A/B: the SHA-256 of the whole bundle, its format, its signature (with
--trusted-key) and its golden self-test must pass before `SLOTS/active` switches; otherwise the
old model stays active and the sender is told why. One line per finished transfer on stdout.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the subcommand."""
    from firmware_tools.flash import add_serial_args

    p = sub.add_parser("serial-agent", help="receive and install bundles over a serial link",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_serial_args(p)
    add_agent_args(p)
    p.set_defaults(run=run)


def add_agent_args(p: argparse.ArgumentParser) -> None:
    """`--slots`, `--trusted-key` and `--once`, shared with `edge-slm ota-agent`."""
    from .flags import add_trusted_key_arg

    p.add_argument("--slots", type=Path, required=True,
                   help="folder of the A/B slots (a.slm, b.slm, active)")
    add_trusted_key_arg(p, help="trusted public key (PEM); repeat for several; with any, "
                                "unsigned bundles are refused")
    p.add_argument("--once", action="store_true",
                   help="exit after one transfer (status 0 if installed, 2 if refused)")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    from firmware_tools.agent import Agent, serve_agent
    from firmware_tools.flash import open_port
    from firmware_tools.serial_protocol import STATUS_OK, STATUS_TEXT
    from firmware_tools.signing import load_public
    from firmware_tools.slots import SlotStore

    keys = [load_public(p) for p in args.trusted_key]
    agent = Agent(SlotStore(args.slots), public_keys=keys)
    port = open_port(args.port, args.baud)
    try:
        serve_agent(port, agent, once=args.once)
    finally:
        port.close()
    status = agent.last_status
    if status is not None:
        print(f"{STATUS_TEXT.get(status.code, status.code)}: {status.detail}")
    return 0 if status is None or status.code == STATUS_OK else 2
