"""What a command costs, beyond its latency (`scripts/bench.py`): the model's arithmetic and
weight traffic, this machine's measured limits (the physical floor), an energy estimate per
Raspberry Pi board, and the MQTT round trip beside mosquitto's bare one.

Every figure for a board is an ESTIMATE: CPU seconds measured here, scaled by an assumed
per-core slowdown of the board (`BOARD_SPEED`), priced at the board's published idle-to-load
power step (`edge_slm.daemon.energy.PROFILES`, sources there).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from edge_slm.daemon.energy import PROFILES

BOARD_SPEED = {"pi-zero-2w": 28.0, "pi-3b+": 20.0, "pi-4": 8.0, "pi-5": 3.0}
"""ASSUMED: how many times longer one core of the board takes for this work than one core of
the reference machine (AMD EPYC Zen 5 at 2.6 GHz with AVX-512). The ladder between boards
follows Raspberry Pi's product briefs (Pi 5: "2-3x the CPU performance of Raspberry Pi 4";
Pi 4: "up to 3x" a Pi 3B+; Zero 2 W: the 3B+'s Cortex-A53 at 1.0 instead of 1.4 GHz); the
step from the reference core to a Pi 4's Cortex-A72 (1.5-1.8 GHz, 128-bit NEON without int8
dot products, against 512-bit AVX-512 VNNI at 2.6 GHz) is our assumption. Measure on the
board before relying on it."""
BOARD_SPEED_SOURCE = ("assumed per-core slowdowns vs the reference machine: Raspberry Pi "
                      "product briefs for the ratios between boards (Pi 5 2-3x Pi 4, Pi 4 up "
                      "to 3x Pi 3B+, Zero 2 W = 3B+ cores at 1.0 GHz), our assumption (8x) "
                      "for a Pi 4 core vs a Zen 5 core with AVX-512; power: "
                      "edge_slm/daemon/energy.py PROFILES (published idle/load watts)")
MQTT_WARMUP = 50
"""Untimed round trips before each timed series."""


# -- the model's arithmetic ---------------------------------------------------------------

def model_shapes(flat: bytes, int4: bool, tokens: Optional[int] = None) -> Dict[str, Any]:
    """Operators, multiply-accumulates and weight bytes read per command of a TFLite model,
    from its shapes (LiteRT's own kernels, no delegate, so that the graph is the model's),
    and how many partitions LiteRT's default XNNPACK delegate makes of it:
    FULLY_CONNECTED rows x in x out, BATCH_MATMUL output x contracted dimension; weight bytes
    are the fully-connected weights plus the embedding rows one command looks up (an int4
    model's weights count half a byte each). The graph read is the longest signature's;
    `tokens` (the length a command runs at, see convert/signatures.py) scales what depends
    on the sentence's length: rows of FULLY_CONNECTED and embedding lookups linearly,
    attention's BATCH_MATMULs by the square."""
    from ai_edge_litert import interpreter as lit

    it = lit.Interpreter(model_content=bytes(flat), num_threads=1,
                         experimental_op_resolver_type=lit.OpResolverType
                         .BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    ops: Dict[str, int] = {}
    macs = weight_bytes = attention = rows_bytes = 0.0
    seq = 1
    for op in it._get_ops_details():
        name = op["op_name"]
        ops[name] = ops.get(name, 0) + 1
        ins = [tensors[i] for i in op["inputs"] if i >= 0]
        out = tensors[op["outputs"][0]]
        if name == "FULLY_CONNECTED" and len(ins) >= 2:
            x, w = ins[0]["shape"], ins[1]["shape"]
            macs += float(np.prod(x[:-1])) * w[0] * w[1]
            weight_bytes += _bytes(ins[1], int4)
            seq = max(seq, int(np.prod(x[:-1])))
        elif name == "BATCH_MATMUL" and len(ins) >= 2:
            a, b, c = (float(np.prod(t)) for t in (ins[0]["shape"], ins[1]["shape"],
                                                   out["shape"]))
            batch = float(np.prod(out["shape"][:-2]))
            attention += c * float(np.sqrt(a * b / (c * batch)))
        elif name == "EMBEDDING_LOOKUP" and len(ins) >= 2:
            table = ins[1]
            row = _bytes(table, int4) / max(1, int(table["shape"][0]))
            rows_bytes += row * int(np.prod(ins[0]["shape"]))
    delegated = lit.Interpreter(model_content=bytes(flat), num_threads=1)
    delegated.allocate_tensors()
    partitions = sum(op["op_name"] == "DELEGATE" for op in delegated._get_ops_details())
    f = min(1.0, tokens / seq) if tokens else 1.0
    return {"ops": dict(sorted(ops.items())), "op_count": sum(ops.values()),
            "macs": int(macs * f + attention * f * f),
            "weight_bytes_per_command": int(weight_bytes + rows_bytes * f),
            "tokens": int(round(seq * f)), "xnnpack_partitions": partitions}


def _bytes(t: Dict[str, Any], int4: bool) -> float:
    n = float(np.prod(t["shape"]))
    item = np.dtype(t["dtype"]).itemsize
    return n * 0.5 if int4 and item == 1 else n * item


# -- this machine -------------------------------------------------------------------------

def machine() -> Dict[str, Any]:
    """The reference machine: CPU model, cores, clock and SIMD, its theoretical peak
    multiply-accumulates per second on one core (`peak_macs`), and what one core reaches now
    (numpy: memory bandwidth from a 256 MB copy, read + write; float32 matmul with BLAS on one
    thread: run with OPENBLAS_NUM_THREADS=1)."""
    info: Dict[str, Any] = {"cpu": "?", "cores": os.cpu_count(), "mhz": 0.0, "flags": []}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name" and info["cpu"] == "?":
                info["cpu"] = value
            elif key == "cpu MHz" and not info["mhz"]:
                info["mhz"] = float(value)
            elif key == "flags" and not info["flags"]:
                info["flags"] = value.split()
    except (OSError, ValueError):
        pass
    info["peak_macs"] = peak_macs(info["flags"], info["mhz"])
    flags = info.pop("flags")
    info["simd"] = [f for f in ("avx512f", "avx512_vnni", "avx_vnni", "avx2", "fma")
                    if f in flags]
    a = np.ones(32 * 1024 * 1024, np.float64)  # 256 MB
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    info["mem_gbps"] = 2 * a.nbytes / best / 1e9
    x = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    best = float("inf")
    for _ in range(20):
        t0 = time.perf_counter()
        x @ x
        best = min(best, time.perf_counter() - t0)
    info["numpy_f32_gmacs"] = 512 ** 3 / best / 1e9
    return info


def peak_macs(flags: List[str], mhz: float) -> Dict[str, float]:
    """Theoretical multiply-accumulates per second of one x86 core: clock x lanes of its
    widest SIMD x 2 FMA pipes (float32: 16 lanes with AVX-512, 8 with AVX2; int8 dot
    products: 64 with AVX-512 VNNI, 32 with AVX-VNNI, else float32's). An upper bound that
    no kernel reaches; what LiteRT's int8 and int4 kernels (int8 dot products) and its float
    kernels could at best do."""
    f32 = 16 if "avx512f" in flags else 8 if "fma" in flags else 4
    i8 = 64 if "avx512_vnni" in flags else 32 if "avx_vnni" in flags else f32
    hz = mhz * 1e6
    return {"float32": 2 * f32 * hz, "int8": 2 * i8 * hz}


def floor(shapes: Dict[str, Any], mach: Dict[str, Any], kind: str) -> Dict[str, float]:
    """The physical floor of one command here: the larger of the weight bytes it reads over
    the memory bandwidth (measured) and its MACs over the core's peak rate for `kind`
    ("float32" or "int8")."""
    mem_s = shapes["weight_bytes_per_command"] / (mach["mem_gbps"] * 1e9)
    mac_s = shapes["macs"] / mach["peak_macs"][kind]
    return {"memory_ms": 1000 * mem_s, "compute_ms": 1000 * mac_s,
            "floor_ms": 1000 * max(mem_s, mac_s)}


# -- energy per board ---------------------------------------------------------------------

def energy(cpu_s_per_command: float) -> Dict[str, float]:
    """ESTIMATED millijoules per command above the board's idle draw, per board."""
    return {board: 1000 * cpu_s_per_command * BOARD_SPEED[board]
            * PROFILES[board].watts_per_cpu_s for board in BOARD_SPEED}


# -- MQTT end to end ----------------------------------------------------------------------

def mqtt(bundles: Dict[str, Path], queries: int, log: Any) -> Dict[str, Any]:
    """p50/p99 of mosquitto's bare QoS 1 round trip (the floor) and of `edge-slm serve`'s
    query -> intent reply per bundle, through scripts/bench_daemon.py's own functions."""
    import bench_daemon as bd

    from edge_slm.daemon.broker import MOSQUITTO, EmbeddedBroker

    out: Dict[str, Any] = {}
    workdir = Path(os.environ.get("TMPDIR", "/tmp"))
    log_path = workdir / f"bench_mqtt_{os.getpid()}.log"
    with EmbeddedBroker(backends=(MOSQUITTO,), max_queued_messages=0) as broker:
        pub, sub = bd.Listener(broker.port, []), bd.Listener(broker.port, ["bench/bare"])
        payloads = [str(i).encode().ljust(64, b"x") for i in range(MQTT_WARMUP + queries)]
        bd.round_trips(pub, sub, "bench/bare", payloads[:MQTT_WARMUP])
        out["mosquitto-bare"] = _pcts(bd.round_trips(pub, sub, "bench/bare",
                                                     payloads[MQTT_WARMUP:]))
        sub.close()
        for name, path in bundles.items():
            replies = bd.Listener(broker.port, [f"edge-slm/{bd.SITE}/intent",
                                                f"edge-slm/{bd.SITE}/status"])
            proc = bd.serve(path, broker.url, log_path, "always-on")
            try:
                bd.wait_online(replies, proc, log_path)
                topic = f"edge-slm/{bd.SITE}/query"
                qs = [bd.query(i) for i in range(MQTT_WARMUP + queries)]
                bd.round_trips(pub, replies, topic, qs[:MQTT_WARMUP], key=bd.reply_id)
                out[name] = _pcts(bd.round_trips(pub, replies, topic, qs[MQTT_WARMUP:],
                                                 key=bd.reply_id))
            finally:
                bd.stop(proc)
                replies.close()
            log(f"mqtt: {name} {json.dumps(out[name])}")
        pub.close()
    log_path.unlink(missing_ok=True)
    return out


def _pcts(ms: np.ndarray) -> Dict[str, float]:
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "n": int(ms.size)}


def board_rows(systems: Dict[str, Dict[str, Any]]) -> List[List[str]]:
    """Per system: estimated millijoules per command on each board."""
    rows = []
    for name, s in systems.items():
        if "cpu_ms_per_command" in s:
            e = energy(s["cpu_ms_per_command"] / 1000)
            rows.append([name] + [f"{e[b]:.3f}" for b in BOARD_SPEED])
    return rows
