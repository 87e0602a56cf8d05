#!/usr/bin/env python3
"""edge-slm against its peers, on the same inputs in one run: accuracy, latency, memory, size,
cold start, energy per command (estimated per Raspberry Pi board), the physical floor of the
model, and MQTT end to end.

Systems: edge-slm-float (built from --run DIR's model: no float model ships), edge-slm-int8,
edge-slm-int4 (the shipped bundles), hassil (Home Assistant's matcher), teacher-minilm (the
run's fine-tuned MiniLM, PyTorch; needs --run), fuzzywuzzy (Rhasspy's approach on rapidfuzz).
Inputs: held-out templates (the corpus builder with the bundle's recorded corpus config: the
held-out split the convert gate measured), Home Assistant's English intent suite
(tests/data/ha-intents-tests) with each test's home and satellite, and the dev set of real
commands (../shared/data/dev_real_commands.jsonl) where present. Accuracy is what a user gets:
the answer after each system's threshold, scored by edge_slm.runtime.metrics and ha_suite.

Each system runs in a fresh process pinned to one core, one thread: its peak RSS (VmHWM) is
that process's, the Python interpreter included; cold start is its imports and loading.
Latency is then timed with every system in one process on that core, in turn (`paired`), so
that the ratios between systems hold on a noisy machine; each system's latency alone, in its
own process, stays in the JSON (`alone`).

    python scripts/bench.py [--quick] [--run DIR] [--json FILE] [--write-readme]
    python scripts/bench.py --from-json FILE --write-readme     # README and plots, no rerun
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SYSTEMS = ("edge-slm-float", "edge-slm-int8", "edge-slm-int4", "hassil", "teacher-minilm",
           "fuzzywuzzy")
DEV = REPO.parent / "shared" / "data" / "dev_real_commands.jsonl"
SUITE = REPO / "tests" / "data" / "ha-intents-tests"
CACHE = Path.home() / ".cache" / "edge-slm" / "bench"
SIZES = {"quick": {"heldout": 100, "oos": 40, "dev_every": 8, "suite_every": 12, "latency": 400,
                   "mqtt": 100, "rounds": 3},
         "full": {"heldout": 1000, "oos": 300, "dev_every": 1, "suite_every": 1, "latency": 1000,
                  "mqtt": 1000, "rounds": 3}}
"""Inputs per mode: held-out commands and out-of-scope sentences, every k-th dev record and
suite file, sentences timed per system, MQTT round trips, and rounds of paired timing (see
`paired`)."""
WARMUP = 100
"""Untimed parses before timing."""
WORKER_TIMEOUT_S = 3600
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "TOKENIZERS_PARALLELISM": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}
_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[bench {time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# -- inputs -------------------------------------------------------------------------------

def inputs(size: Dict[str, int]) -> Dict[str, Any]:
    """The held-out commands and out-of-scope sentences the convert gate measured (re-created
    from the int8 bundle's recorded corpus config), and the dev set where present."""
    from edge_slm.bundle import read_bundle
    from edge_slm.corpus.build import CorpusBuilder, CorpusConfig
    from edge_slm.runtime.engine import default_bundle_path

    prov = read_bundle(default_bundle_path("int8")).manifest["provenance"]
    per_pool = size["latency"] // 4  # the timed sentences: a quarter from each kind
    held: List[Dict[str, Any]] = []
    oos: List[Dict[str, Any]] = []
    want = {True: max(size["heldout"], per_pool), False: max(size["oos"], per_pool)}
    for rec in CorpusBuilder(CorpusConfig(**prov["corpus_config"])).records():
        if rec["split"] == "heldout":
            bucket = held if rec["intent"] else oos
            if len(bucket) < want[bool(rec["intent"])]:
                bucket.append(rec)
            if len(held) >= want[True] and len(oos) >= want[False]:
                break
    dev = all_dev = None
    if DEV.is_file():
        with open(DEV, encoding="utf-8") as fh:
            all_dev = [json.loads(ln) for ln in fh if ln.strip()]
        dev = all_dev[::size["dev_every"]]
    return {"heldout": held[:size["heldout"]], "oos": oos[:size["oos"]], "dev": dev,
            "dev_note": f"{DEV} ({len(dev)} records)" if dev is not None else "not present",
            "suite_every": size["suite_every"],
            "latency_texts": latency_texts(held, oos, all_dev or [], size["latency"])}


def latency_texts(held: List[Dict[str, Any]], oos: List[Dict[str, Any]],
                  dev: List[Dict[str, Any]], n: int) -> List[str]:
    """The sentences every system is timed on: `n` taken in turn from each input (held-out
    commands, out-of-scope sentences, the dev set where present, Home Assistant's suite), so
    that no one kind of sentence decides a system's latency; --quick times the first of the
    same sentences as a full run."""
    from edge_slm.runtime.ha_suite import load_suite

    suite = [t for f in load_suite(SUITE) for g in f.groups for t in g.sentences]
    pools = [[r["text"] for r in held], [r["text"] for r in oos], [r["text"] for r in dev],
             suite]
    out: List[str] = []
    for i in range(max(map(len, pools))):
        out += [p[i] for p in pools if i < len(p)]
    return out[:n]


def float_bundle(run: Optional[Path], export: bool) -> Any:
    """A float bundle of `run`'s model (its float TFLite, exported here once (`export`) and
    cached, beside the shipped int8 bundle's other members), or the reason there is none."""
    if run is None:
        return ("no float model ships (the bundles hold int8 and int4; convert keeps the float "
                "TFLite only in memory): pass --run DIR of the training run")
    from edge_slm.bundle import read_bundle, sha256, write_bundle
    from edge_slm.runtime.engine import default_bundle_path

    weights = run / "model" / "weights.npz"
    if not weights.is_file():
        return f"{weights}: no model checkpoint in the run"
    int8 = read_bundle(default_bundle_path("int8"))
    if (run / "model" / "tokenizer.json").read_bytes() != int8.members["tokenizer.json"]:
        return f"{run}/model is not the model the shipped bundles came from (tokenizer differs)"
    lengths = int8.manifest["provenance"]["convert_config"].get("lengths", [])
    key = sha256(weights.read_bytes() + repr(sorted(lengths)).encode())[:16]
    path = CACHE / f"en-float-{key}.slm"
    if not path.exists() and not export:
        return "--quick does not export the float model (TensorFlow): run once without it"
    if not path.exists():
        log(f"float: exporting {run}/model to float TFLite (TensorFlow; cached in {CACHE})")
        from edge_slm.convert.export import float_tflite
        from edge_slm.convert.signatures import merge
        from edge_slm.model.checkpoint import load_checkpoint

        model = load_checkpoint(run / "model").model
        flat = merge({n: float_tflite(model, n) for n in {model.config.max_len, *lengths}})
        members = {k: v for k, v in int8.members.items() if k != "manifest.json"}
        members["model.tflite"] = flat
        manifest = dict(int8.manifest, model_id=f"en-float-{sha256(flat)[:10]}",
                        quantization="float", golden={"cases": []}, metrics={})
        CACHE.mkdir(parents=True, exist_ok=True)
        write_bundle(path, members, manifest)
    return path


# -- one system, in its own process ---------------------------------------------------------

def worker(name: str, spec_path: Path) -> Dict[str, Any]:
    """Load `name`, time it alone, score it; what the parent reads from this process's
    stdout."""
    t0 = time.perf_counter()
    spec = json.loads(spec_path.read_text())
    from bench_systems import make_system

    system = make_system(name, spec)
    out: Dict[str, Any] = {"cold_start_s": time.perf_counter() - t0}
    texts = spec["latency_texts"]
    for t in texts[:WARMUP]:
        system.parse(t)
    lat = []
    c0 = time.process_time()
    for t in texts:
        t1 = time.perf_counter()
        system.parse(t)
        lat.append(time.perf_counter() - t1)
    cpu = time.process_time() - c0
    ms = np.asarray(lat) * 1000
    out.update(p50_ms=float(np.percentile(ms, 50)), p99_ms=float(np.percentile(ms, 99)),
               per_s=len(lat) / float(np.sum(lat)), cpu_ms_per_command=1000 * cpu / len(lat),
               timed=len(lat))
    if hasattr(system, "model") and hasattr(system, "encode"):  # the engine: model alone
        rows = [system.encode(t)[0] for t in texts[:200]]
        mt = []
        for row in rows * 2:
            t1 = time.perf_counter()
            system.model.run(row)
            mt.append(time.perf_counter() - t1)
        out["model_p50_ms"] = float(np.percentile(np.asarray(mt[len(rows):]) * 1000, 50))
    from edge_slm.runtime.ha_suite import load_suite, run_suite
    from edge_slm.runtime.metrics import evaluate

    out["heldout"] = evaluate(system, spec["heldout"])
    out["oos"] = evaluate(system, spec["oos"])
    if spec.get("dev"):
        out["dev"] = evaluate(system, spec["dev"])
    suite = load_suite(SUITE)[::spec["suite_every"]]
    report = run_suite(system, suite)
    out["suite"] = {"n": report.n, "intent_acc": report.intent_acc,
                    "slots_acc": report.slots_acc}
    if hasattr(system, "text_bytes"):
        out["expanded_sentences"] = system.sentences
        out["model_bytes"] = system.text_bytes()
    out["peak_rss_mb"] = _vmhwm_mb()
    return out


def _vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_worker(args: List[str], cpu: Optional[int]) -> Dict[str, Any]:
    """`scripts/bench.py ARGS` in a fresh process (on core `cpu`, one thread), its JSON."""
    pre = ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []
    env = dict(os.environ, **ONE_THREAD)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get(
        "PYTHONPATH", "").split(os.pathsep) if p])
    done = subprocess.run(pre + [sys.executable, str(Path(__file__).resolve()), *args],
                          capture_output=True, text=True, env=env, timeout=WORKER_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"worker {args[:2]} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def model_bytes(name: str, spec: Dict[str, Any]) -> Optional[int]:
    """What a system loads as its model, in bytes (fuzzywuzzy reports its own)."""
    if name.startswith("edge-slm-"):
        return Path(spec["bundles"][name.rsplit("-", 1)[1]]).stat().st_size
    if name == "teacher-minilm":
        return (Path(spec["run"]) / "teacher" / "teacher.pt").stat().st_size
    if name == "hassil":
        from importlib import resources

        return sum(f.stat().st_size for f in Path(str(resources.files(
            "home_assistant_intents"))).rglob("*") if f.is_file() and "/en" in str(f))
    return None


# -- the run --------------------------------------------------------------------------------

def measure(args: argparse.Namespace) -> Dict[str, Any]:
    import bench_cost as cost

    from edge_slm.bundle import read_bundle
    from edge_slm.runtime.engine import default_bundle_path

    size = SIZES["quick" if args.quick else "full"]
    cpu = sorted(os.sched_getaffinity(0))[0] if hasattr(os, "sched_getaffinity") else None
    result: Dict[str, Any] = {"mode": "quick" if args.quick else "full", "systems": {},
                              "with_run": args.run is not None,
                              "skipped": {}, "started": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                      time.gmtime())}
    result["machine"] = run_worker(["--machine"], cpu)
    result["machine"]["load_average"] = os.getloadavg()[0]
    log(f"machine: {json.dumps(result['machine'])}")
    spec: Dict[str, Any] = inputs(size)
    spec["bundles"] = {q: str(default_bundle_path(q)) for q in ("int8", "int4")}
    spec["run"] = str(args.run) if args.run else None
    result["inputs"] = {"heldout": len(spec["heldout"]), "oos": len(spec["oos"]),
                        "dev": spec["dev_note"], "suite_every": spec["suite_every"],
                        "timed": len(spec["latency_texts"])}
    fb = float_bundle(args.run, export=not args.quick)
    if isinstance(fb, Path):
        spec["bundles"]["float"] = str(fb)
    else:
        result["skipped"]["edge-slm-float"] = fb
    if args.run is None:
        result["skipped"]["teacher-minilm"] = "needs --run DIR (the run's teacher/teacher.pt)"
    elif args.quick:
        result["skipped"]["teacher-minilm"] = "--quick leaves the teacher out (PyTorch: about " \
            "15 s to load, 10-20 ms a command)"
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        for name in SYSTEMS:
            if name in result["skipped"]:
                log(f"{name}: skipped ({result['skipped'][name]})")
                continue
            log(f"{name}: running in its own process")
            res = run_worker(["--worker", name, "--spec", str(spec_path)], cpu)
            res.setdefault("model_bytes", model_bytes(name, spec))
            result["systems"][name] = res
            log(f"{name}: p50 {res['p50_ms']:.3f} ms, held-out {res['heldout']['intent_acc']:.3f}"
                f", suite {res['suite']['intent_acc']:.3f}, RSS {res['peak_rss_mb']:.0f} MB")
        names = list(result["systems"])
        log(f"paired timing: {', '.join(names)} in one process, {size['rounds']} rounds")
        spec["rounds"] = size["rounds"]
        spec_path.write_text(json.dumps(spec))
        for name, figures in run_worker(["--paired", ",".join(names), "--spec",
                                         str(spec_path)], cpu).items():
            result["systems"][name]["alone"] = {k: result["systems"][name][k] for k in (
                "p50_ms", "p99_ms", "per_s")}
            result["systems"][name].update(figures)
    for quant, path in spec["bundles"].items():
        name = f"edge-slm-{quant}"
        if name in result["systems"]:
            bundle = read_bundle(path)
            shapes = cost.model_shapes(bundle.model, quant == "int4",
                                       median_length(path, spec["latency_texts"]))
            fl = cost.floor(shapes, result["machine"], "float32" if quant == "float" else "int8")
            s = result["systems"][name]
            s["shapes"] = shapes
            s["floor"] = dict(fl, parse_over_floor=s["p50_ms"] / fl["floor_ms"],
                              model_over_floor=s.get("model_p50_ms", np.nan) / fl["floor_ms"])
    for name, s in result["systems"].items():
        s["energy_mj"] = cost.energy(s["cpu_ms_per_command"] / 1000)
    result["energy_source"] = cost.BOARD_SPEED_SOURCE
    result["board_speed"] = cost.BOARD_SPEED
    if args.no_mqtt or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin:"
                                    + os.environ.get("PATH", "")) is None:
        result["skipped"]["mqtt"] = "--no-mqtt" if args.no_mqtt else "no mosquitto installed"
    else:
        mq = {f"edge-slm-{q}": Path(spec["bundles"][q])
              for q in (("int8",) if args.quick else ("int8", "int4"))}
        result["mqtt"] = cost.mqtt(mq, size["mqtt"], log)
    result["targets"] = targets(result["systems"])
    result["seconds"] = time.monotonic() - _T0
    return result


def median_length(bundle: str, texts: List[str]) -> int:
    """The length (tokens) the median timed sentence runs at in the bundle's model: the
    shortest of its length signatures that holds it."""
    from edge_slm.runtime.engine import IntentEngine

    engine = IntentEngine.load(bundle, check_golden=False)
    runs = sorted(next(m for m in engine.model.lengths if m >= len(engine.tokens(t)[0]))
                  for t in texts)
    return runs[len(runs) // 2]


def targets(systems: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """The acceptance targets, measured in this run."""
    out: Dict[str, Any] = {}
    e = systems.get("edge-slm-int8")
    if e is None:
        return out
    for peer, factor in (("hassil", 10.0), ("teacher-minilm", 20.0)):
        if peer in systems:
            ratio = systems[peer]["p50_ms"] / e["p50_ms"]
            out[f"p50 {factor:g}x faster than {peer}"] = {"ratio": ratio, "ok": ratio >= factor}
    if "hassil" in systems and "dev" in e and "dev" in systems["hassil"]:
        a, b = e["dev"]["intent_acc"], systems["hassil"]["dev"]["intent_acc"]
        out["dev intent accuracy above hassil"] = {"int8": a, "hassil": b, "ok": a > b}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer sentences, under a minute")
    p.add_argument("--run", type=Path, help="a training run (model/, teacher/, report.json): "
                                            "the float model and the teacher")
    p.add_argument("--json", type=Path, metavar="FILE", help="write every figure here")
    p.add_argument("--no-mqtt", action="store_true", help="skip the MQTT round trips")
    p.add_argument("--write-readme", action="store_true",
                   help="rewrite README.md's Performance section and docs/img/bench-*.png")
    p.add_argument("--from-json", type=Path, metavar="FILE",
                   help="report (and --write-readme) from an earlier --json, without measuring")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--paired", help=argparse.SUPPRESS)
    p.add_argument("--machine", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.machine:
        import bench_cost

        print(json.dumps(bench_cost.machine()))
        return 0
    if args.worker:
        print(json.dumps(worker(args.worker, args.spec)))
        return 0
    if args.paired:
        from bench_systems import paired

        print(json.dumps(paired(args.paired.split(","), json.loads(args.spec.read_text()),
                                WARMUP)))
        return 0
    import bench_report

    if args.from_json:
        result = json.loads(args.from_json.read_text())
    else:
        result = measure(args)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(bench_report.tables(result))
    if args.write_readme:
        bench_report.write_readme(result, REPO)
    return 0


if __name__ == "__main__":
    sys.exit(main())
