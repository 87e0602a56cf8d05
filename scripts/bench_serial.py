#!/usr/bin/env python3
"""Benchmark serial flashing: a 1 MB bundle over a UART throttled to 115,200 baud (each byte
costs 10 bit times), clean and with 1% of frames corrupted in each direction.

The sender and agent are the library's state machines (`FlashSender`, `Agent`, the real
golden self-test included) on `firmware_tools.serial_twin.simulate`, a simulated UART in
virtual time: the line time is exact and the run takes seconds, not the minutes a real
115,200-baud transfer would. Prints one table row per corruption rate: the effective
throughput as a fraction of the line rate (target >= 80%) and whether the installed slot is
byte-identical. Usage:
    python scripts/bench_serial.py [--size 1000000] [--baud 115200] [--corrupt 0 0.01]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from edge_slm.bundle import MANIFEST, read_bundle, write_bundle
from edge_slm.runtime.engine import default_bundle_path
from firmware_tools.agent import Agent
from firmware_tools.flash import BITS_PER_BYTE, FlashConfig, FlashSender
from firmware_tools.serial_twin import FaultRates, Faults, simulate
from firmware_tools.slots import SlotStore

TARGET = 0.80
"""Smallest acceptable throughput as a fraction of the line rate."""


def padded_bundle(size: int, folder: Path) -> bytes:
    """The shipped int4 bundle with an incompressible `padding.bin` member, about `size`
    bytes: still a valid bundle whose golden self-test passes."""
    base = read_bundle(default_bundle_path("int4"))
    members = {k: v for k, v in base.members.items() if k != MANIFEST}
    pad = max(0, size - len(default_bundle_path("int4").read_bytes()) - 400)
    members["padding.bin"] = random.Random(0).randbytes(pad)
    manifest = {k: v for k, v in base.manifest.items() if k != "members"}
    return write_bundle(folder / "padded.slm", members, manifest).read_bytes()


def main() -> int:
    """Run the benchmark; non-zero exit when a row misses the target or is not identical."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--corrupt", type=float, nargs="+", default=[0.0, 0.01],
                    help="fractions of frames with a flipped bit (default 0 and 0.01)")
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        data = padded_bundle(args.size, Path(tmp))
        line_s = len(data) * BITS_PER_BYTE / args.baud
        print(f"bundle {len(data)} bytes, {args.baud} baud: {line_s:.1f} s of pure line time")
        print(f"{'corrupt':>8} {'time s':>8} {'of line':>8} {'re-sent':>8} {'dropped':>8} "
              f"{'identical':>9}")
        for i, rate in enumerate(args.corrupt):
            store = SlotStore(Path(tmp) / f"slots{i}")
            sender = FlashSender(data, FlashConfig(baud=args.baud))
            rates = FaultRates(flip=rate)
            agent = Agent(store, insecure_unsigned=True)  # the link is measured, not keys
            sim = simulate(sender, agent, args.baud, Faults(rates, 1 + i),
                           Faults(rates, 101 + i))
            if sender.result is None:
                print(f"{rate:>8.1%} failed: {sender.error}")
                ok = False
                continue
            same = store.path(store.active()).read_bytes() == data
            frac = line_s / sim.elapsed_s
            ok = ok and same and frac >= TARGET
            print(f"{rate:>8.1%} {sim.elapsed_s:>8.1f} {frac:>8.1%} "
                  f"{sender.result.retransmits:>8} {sender.result.dropped:>8} "
                  f"{'yes' if same else 'NO':>9}")
    print(f"target: >= {TARGET:.0%} of the line rate: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
