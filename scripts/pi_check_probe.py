#!/usr/bin/env python3
"""What `scripts/pi-check` runs inside the emulated arm64 root, with the runtime only (numpy,
ai-edge-litert, the installed edge-slm wheel). One JSON object (or JSON lines) on stdout.

    probe.py system                 machine, Python, package versions, HWCAPs qemu gives
    probe.py bundles                the bundles the installed package ships
    probe.py golden PATH            load PATH with its golden self-test: ok, worst diff, error
    probe.py parse PATH [--limit N] `parse --jsonl` WITHOUT the golden self-test (diagnostic:
                                    how far off a refused bundle is), JSON lines on stdin
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import struct
import sys
import time
from importlib import metadata

AT_HWCAP, AT_HWCAP2 = 16, 26


def hwcaps() -> dict:
    """AT_HWCAP and AT_HWCAP2 of this process (what qemu's CPU model advertises)."""
    out = {}
    try:
        data = open("/proc/self/auxv", "rb").read()
    except OSError:
        return out
    for i in range(0, len(data) - 15, 16):
        key, value = struct.unpack("<QQ", data[i:i + 16])
        if key in (AT_HWCAP, AT_HWCAP2):
            out["hwcap" if key == AT_HWCAP else "hwcap2"] = hex(value)
    return out


def system() -> dict:
    versions = {}
    for pkg in ("edge-slm", "numpy", "ai-edge-litert", "paho-mqtt", "cryptography"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"machine": platform.machine(), "python": platform.python_version(),
            "libc": " ".join(platform.libc_ver()), "packages": versions, **hwcaps()}


def golden(path: str) -> dict:
    from edge_slm.errors import EdgeSlmError
    from edge_slm.runtime.engine import IntentEngine

    t0 = time.perf_counter()
    try:
        engine = IntentEngine.load(path)
    except EdgeSlmError as err:
        return {"golden_ok": False, "error": str(err),
                "load_s": round(time.perf_counter() - t0, 2)}
    return {"golden_ok": True, "golden_max_diff": round(float(engine.golden_max_diff), 5),
            "runtime": engine.model.runtime, "load_s": round(time.perf_counter() - t0, 2)}


def parse_unchecked(path: str, limit: int) -> None:
    from edge_slm.cli.parse import serve_jsonl
    from edge_slm.runtime.engine import IntentEngine

    engine = IntentEngine.load(path, check_golden=False)
    lines = sys.stdin.buffer.readlines()[:limit]
    serve_jsonl(engine, io.BytesIO(b"".join(lines)), sys.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("system", "bundles", "golden", "parse"))
    p.add_argument("path", nargs="?")
    p.add_argument("--limit", type=int, default=10 ** 9)
    args = p.parse_args()
    if args.what == "system":
        print(json.dumps(system()))
    elif args.what == "bundles":
        from edge_slm.runtime.engine import shipped_bundles

        print(json.dumps([str(b) for b in shipped_bundles()]))
    elif args.what == "golden":
        print(json.dumps(golden(args.path)))
    else:
        parse_unchecked(args.path, args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
