"""`edge-slm convert`: a trained student -> TFLite variants -> quality gate -> bundles + report.

    RUN/model (checkpoint) ─► float .tflite ─► int8 / int4 (dynamic range), int8-full
                                   │
             every variant as a bundle ─► IntentEngine (LiteRT) on held-out templates,
             out-of-scope sentences and the dev set ─► refused if it loses more than
             `margin` points of intent accuracy against float, accepts more out-of-scope
             sentences than `max_false_accept` or outgrows its `max_bundle_bytes`
                                   ─► OUT/<lang>-<quant>.slm
                                   └─► OUT/report.md, report.json, report.png

The evaluation sets come from the training run beside the checkpoint (`RUN/corpus.jsonl`,
held-out split), so the figures match the training report's definitions.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import __version__
from ..bundle import Bundle, read_bundle, sha256, write_bundle
from ..errors import ConfigError, EdgeSlmError
from ..model.data import read_jsonl
from ..runtime.evidence import MEMBER as EVIDENCE
from ..runtime.known_home import home_kept
from ..runtime.metrics import evaluate, to_corpus_format
from ..runtime.values import ValueTables
from .report import format_report, plot_report

if TYPE_CHECKING:
    from ..runtime.engine import IntentEngine

#: Seed of the compound sentences made from the held-out commands.
COMPOUND_SEED = 7
#: Sentences every golden check runs (besides a few held-out ones).
GOLDEN_TEXTS = ("turn off the kitchen lights", "is the garage door open?",
                "set the bedroom to 20 degrees", "what's the weather like",
                "add milk to my shopping list", "tell me a joke",
                # longer than the shortest signature: the longest one is checked too
                "could you please set the upstairs bedroom thermostat to twenty one degrees "
                "celsius before I go to sleep tonight")


#: The size each variant is held to by default (bytes, 1 MB = 1,000,000; not bundle.py's
#: MAX_BUNDLE_BYTES, the most a bundle file may be to be read at all): int4 for the
#: smallest devices, int8 where memory allows twice as much.
VARIANT_MAX_BYTES: Dict[str, int] = {"int4": 1_000_000, "int8": 1_600_000}
#: The variants made by dynamic-range quantization (weights only): those a bundle's own model
#: can be quantized to again (convert_bundle).
DYNAMIC = ("int8", "int4")


@dataclass
class ConvertConfig:
    """Settings of one conversion; saved in every bundle's manifest."""

    quants: List[str] = field(default_factory=lambda: ["float", "int8", "int4"])
    """Variants to build: float, int8, int4, int8-full."""
    margin: float = 1.0
    """Most points of intent accuracy a variant may lose against float (held-out and dev)."""
    max_false_accept: float = 0.01
    """Largest share of the held-out out-of-scope sentences a variant may answer as commands,
    said alone or in the bundle's example home (the calibration's threshold decides it: a
    variant above it is refused rather than shipped to answer chat)."""
    max_bundle_bytes: Dict[str, int] = field(default_factory=lambda: dict(VARIANT_MAX_BYTES))
    """Largest bundle per variant (variants not named have no limit): what a device is
    promised, checked before a bundle is written."""
    eval_sentences: int = 2000
    """Held-out template sentences (and as many out-of-scope ones) the gate runs."""
    golden_cases: int = 12
    """Golden inputs stored in the manifest."""
    golden_tolerance: float = 0.05
    """Largest relative intent-logit difference a runtime may show on the golden inputs."""
    latency_runs: int = 1000
    """Model invocations timed per variant."""
    representative: int = 500
    """Sentences that calibrate the full-integer variant's activations."""
    lengths: List[int] = field(default_factory=lambda: [8, 12, 16])
    """Shorter sentence lengths (tokens) that get a signature of their own beside the model's
    longest, over the same weights (convert/signatures.py): a command runs at the shortest
    that holds it. Not for int8-full (TensorFlow Lite Micro runs one)."""
    int4_block: int = 32
    """int4 only: a weight scale per this many inputs of each FULLY_CONNECTED output channel
    (32, 64, 128 or 256, where the input width divides by it) instead of one per channel (0):
    closer to float, slower to run (convert/quantize.py, docs/convert.md)."""


def _package_versions() -> Dict[str, str]:
    from importlib import metadata

    out = {"edge-slm": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "tensorflow-cpu", "tensorflow", "keras", "ai-edge-litert",
                "ai-edge-quantizer", "tokenizers", "hassil", "home-assistant-intents", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _code_version() -> str:
    try:
        here = Path(__file__).resolve().parent
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=here,
                             capture_output=True, text=True, timeout=5)
        if rev.returncode == 0 and rev.stdout.strip():
            return f"{__version__}+{rev.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


@dataclass
class EvalSets:
    """What the gate measures on."""

    heldout: List[Dict[str, Any]]
    oos: List[Dict[str, Any]]
    dev: List[Dict[str, Any]]
    train: List[Dict[str, Any]]
    compound: List[Dict[str, Any]] = field(default_factory=list)
    """Sentences of two or three held-out commands (corpus/compound.py)."""


def load_eval_sets(run: Path, n: int, dev_path: Optional[Path]) -> EvalSets:
    """Held-out commands and out-of-scope sentences of a training run, and the dev set."""
    corpus = run / "corpus.jsonl"
    if not corpus.exists():
        raise EdgeSlmError(f"{corpus}: no corpus beside the model; convert a model inside its "
                           "training run folder (RUN/model), or pass --run RUN")
    held: List[Dict[str, Any]] = []
    oos: List[Dict[str, Any]] = []
    train: List[Dict[str, Any]] = []
    with open(corpus, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["split"] == "heldout":
                (held if rec["intent"] else oos).append(rec)
            elif rec["split"] == "train" and len(train) < 200000:
                train.append(rec)
    from ..corpus.compound import make_compounds

    compound = make_compounds(held, max(1, n // 10), seed=COMPOUND_SEED)
    held, oos = held[:n], oos[:n]
    dev = ([to_corpus_format(r) for r in read_jsonl(dev_path)]
           if dev_path is not None and dev_path.exists() else [])
    return EvalSets(held, oos, dev, train, compound)


def _wildcards(lang: str, corpus: Dict[str, Any]) -> List[str]:
    """The free-text slot lists of the templates the corpus was sampled from."""
    from ..corpus.templates import wildcard_lists

    return wildcard_lists(lang, [Path(p) for p in corpus.get("sentences") or []],
                          corpus.get("include_package", True),
                          corpus.get("include_extended", True))


def _train_config(run: Path) -> Dict[str, Any]:
    """The training run's saved config ({} when the folder has none)."""
    path = run / "train_config.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _home_json(run: Path) -> bytes:
    """The home the corpus was sampled in: the bundle's fallback home (`home.json`)."""
    from ..corpus.inventory import load_inventory
    from ..home import home_json

    cfg = _train_config(run)
    corpus = cfg.get("corpus", {})
    inv_path = corpus.get("inventory")
    return home_json(load_inventory(Path(inv_path) if inv_path else None,
                                    corpus.get("lang", "en")))


def convert(model_dir: Path, out: Path, config: ConvertConfig,
            dev_path: Optional[Path] = None, run: Optional[Path] = None,
            log: Callable[[str], None] = print, progress: bool = True) -> Dict[str, Any]:
    """Build, gate and write the bundles; return the report (also written to OUT)."""
    from ..model.checkpoint import load_checkpoint
    from . import quantize
    from .export import float_tflite
    from .signatures import merge

    _check_int4_block(config)
    unknown = [q for q in config.quants if q not in quantize.VARIANTS]
    if unknown:
        raise ConfigError(f"unknown --quant {', '.join(unknown)}; choose from "
                          f"{', '.join(quantize.VARIANTS)}")
    model_dir, out = Path(model_dir), Path(out)
    run = Path(run) if run is not None else model_dir.parent
    ckpt = load_checkpoint(model_dir)
    sets = load_eval_sets(run, config.eval_sentences, dev_path)
    train_cfg = _train_config(run)
    lang = train_cfg.get("corpus", {}).get("lang", "en")

    common: Dict[str, bytes] = {
        "tokenizer.json": ckpt.tokenizer_json.encode("utf-8"),
        "labels.json": json.dumps(ckpt.labels.to_dict(), indent=1).encode("utf-8"),
        "config.json": json.dumps({
            "lang": lang, "model_config": ckpt.model.config.to_dict(),
            "calibration": ckpt.meta.get("calibration") or {"temperature": 1.0,
                                                            "threshold": 0.0},
        }, indent=1).encode("utf-8"),
        "home.json": _home_json(run),
        "values.json": json.dumps(ValueTables.from_records(
            sets.train, wildcards=_wildcards(lang, train_cfg.get("corpus", {}))).to_dict(),
            ensure_ascii=False).encode("utf-8"),
    }
    if ckpt.evidence is not None:  # the word evidence its threshold was fitted with
        common[EVIDENCE] = ckpt.evidence.to_bytes()
    provenance = {"packages": _package_versions(), "code_version": _code_version(),
                  "seed": {"corpus": train_cfg.get("corpus", {}).get("seed"),
                           "distill": train_cfg.get("distill", {}).get("seed")},
                  "train_config_sha256": sha256(json.dumps(train_cfg, sort_keys=True).encode()),
                  # the whole config, so that the model can be trained again from the bundle
                  "train_config": train_cfg,
                  "checkpoint": ckpt.meta.get("kind"), "convert_config": asdict(config),
                  # what re-creates the gate's held-out sets (tests re-evaluate shipped bundles)
                  "corpus_config": train_cfg.get("corpus", {}),
                  "eval_sets": _eval_set_sizes(sets)}

    longest = ckpt.model.config.max_len
    lengths = sorted({longest} | {n for n in config.lengths if 0 < n < longest})
    log(f"convert: float TFLite ({', '.join(map(str, lengths))} tokens)")
    t0 = time.perf_counter()
    float_flats = {n: float_tflite(ckpt.model, n) for n in lengths}
    flats: Dict[str, bytes] = {"float": merge(float_flats)}
    for q in config.quants:
        if q in DYNAMIC:
            log(f"convert: {q} (dynamic range, every weight)")
            flats[q] = _dynamic_variant(float_flats, q, config)
        elif q == "int8-full":
            log("convert: int8-full (int8 weights and activations, calibrated)")
            from ..model.report import encoder_for

            rep = encoder_for(ckpt, ckpt.labels)(sets.train[:config.representative]).ids
            flats[q] = quantize.full_integer(ckpt.model, rep)
    convert_s = time.perf_counter() - t0

    return _gate_and_write(lang, flats, common, provenance, sets, config, out,
                           {"model": str(model_dir), "convert_seconds": round(convert_s, 1)},
                           log, progress)


def convert_bundle(source: Path, out: Path, config: ConvertConfig, run: Path,
                   dev_path: Optional[Path] = None, log: Callable[[str], None] = print,
                   progress: bool = True) -> Dict[str, Any]:
    """Build, gate and write the `config.quants` variants (int8, int4) of the model inside
    the float or int8 bundle `source`, when its checkpoint is gone: its weights brought back
    to float (requantize.py) are the reference, its other members (tokenizer, labels,
    calibration, word evidence, homes) go into every variant unchanged. `run`: the training
    run whose corpus the source was measured on (its held-out sets gate the variants)."""
    from .requantize import dequantized_lengths
    from .signatures import merge

    wrong = [q for q in config.quants if q not in DYNAMIC]
    if wrong:
        raise ConfigError(f"--quant {', '.join(wrong)}: a bundle's model is quantized again "
                          f"only to {' or '.join(DYNAMIC)} (int8-full needs the checkpoint)")
    _check_int4_block(config)
    source, out, run = Path(source), Path(out), Path(run)
    bundle = read_bundle(source)
    old = bundle.manifest
    for q in config.quants:
        if (out / f"{old['lang']}-{q}.slm").resolve() == source.resolve():
            raise ConfigError(f"--out {out}: would overwrite {source} itself; write the "
                              "variants to another folder")
    common = _members_measured_on(bundle, source, run)
    sets = load_eval_sets(run, config.eval_sentences, dev_path)
    provenance = dict(old["provenance"], packages=_package_versions(),
                      code_version=_code_version(), convert_config=asdict(config),
                      checkpoint=f"bundle {old['model_id']} (its weights as float)",
                      requantized_from={"model_id": old["model_id"],
                                        "quantization": old["quantization"],
                                        "model_sha256": sha256(bundle.model)},
                      eval_sets=_eval_set_sizes(sets))
    log(f"convert: {old['model_id']} back to float (one model per sentence length)")
    t0 = time.perf_counter()
    float_flats = dequantized_lengths(bundle.model, old["quantization"])
    flats: Dict[str, bytes] = {"float": merge(float_flats)}
    for q in config.quants:
        log(f"convert: {q} (dynamic range, every weight)")
        flats[q] = _dynamic_variant(float_flats, q, config)
    convert_s = time.perf_counter() - t0
    return _gate_and_write(old["lang"], flats, common, provenance, sets, config, out,
                           {"model": f"{source} ({old['model_id']}, requantized)",
                            "convert_seconds": round(convert_s, 1)}, log, progress)


def _dynamic_variant(float_flats: Dict[int, bytes], quant: str, config: ConvertConfig) -> bytes:
    """Variant `quant` (int8 or int4) of the float models per length, merged into one."""
    from . import quantize
    from .signatures import merge

    block = config.int4_block if quant == "int4" else 0
    return merge({n: quantize.dynamic(f, quant, block) for n, f in float_flats.items()})


def _eval_set_sizes(sets: EvalSets) -> Dict[str, int]:
    """What the provenance records of the sets a bundle was gated on."""
    return {"heldout_templates": len(sets.heldout), "oos": len(sets.oos), "dev": len(sets.dev),
            "compound": len(sets.compound)}


def _check_int4_block(config: ConvertConfig) -> None:
    from . import quantize

    if config.int4_block not in quantize.INT4_BLOCKS:
        raise ConfigError(f"int4 block {config.int4_block}: choose from "
                          f"{', '.join(map(str, quantize.INT4_BLOCKS))} (0: one scale per "
                          "channel)")


def _gate_and_write(lang: str, flats: Dict[str, bytes], common: Dict[str, bytes],
                    provenance: Dict[str, Any], sets: EvalSets, config: ConvertConfig,
                    out: Path, header: Dict[str, Any], log: Callable[[str], None],
                    progress: bool) -> Dict[str, Any]:
    """Gate every variant of `flats` ("float" the reference), write those that pass and the
    report (`header` first in it); return the report."""
    from tqdm import tqdm

    variants: Dict[str, Dict[str, Any]] = {}
    float_top: Optional[np.ndarray] = None
    order = ["float"] + [q for q in config.quants if q != "float"]
    for q in tqdm(order, desc="gate", unit="variant", disable=not progress):
        metrics, blob, top = gate_variant(lang, q, flats[q], common, provenance, sets, config,
                                          float_top)
        if q == "float":
            float_top = top
            metrics["agreement_with_float"] = 1.0
        variants[q] = {"metrics": metrics, "blob": blob}

    ref = variants["float"]["metrics"]
    report: Dict[str, Any] = dict(header, margin_points=config.margin, variants={})
    out.mkdir(parents=True, exist_ok=True)
    refused = []
    for q in order:
        m = variants[q]["metrics"]
        # the limits hold for what is shipped: the float reference only when asked for
        reasons = judge(ref, m, config.margin) + (limits(q, m, config) if q in config.quants
                                                  else [])
        entry = {"metrics": dict(m), "status": "refused" if reasons else "ok",
                 "reasons": reasons}
        if reasons:
            refused.append(q)
            log(f"convert: {q} REFUSED: " + "; ".join(reasons))
        elif q in config.quants:
            path = out / f"{lang}-{q}.slm"
            path.write_bytes(variants[q]["blob"])
            entry["bundle"] = str(path)
            log(f"convert: wrote {path} ({len(variants[q]['blob']):,} bytes)")
        else:
            entry["status"] = "reference"
        report["variants"][q] = entry
    report["refused"] = refused
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(format_report(report) + "\n")
    plot_report(report, out / "report.png")
    return report


def gate_variant(lang: str, quant: str, flat: bytes, common: Dict[str, bytes],
                 provenance: Dict[str, Any], sets: EvalSets, config: ConvertConfig,
                 float_top: Optional[np.ndarray] = None, agreement: Optional[float] = None
                 ) -> Tuple[Dict[str, Any], bytes, np.ndarray]:
    """Measure one variant through the LiteRT interpreter as a bundle: (metrics, the bundle's
    bytes with those metrics and its golden cases in the manifest, its top intent per
    evaluated sentence). `agreement`: the agreement with float measured before, kept when
    `float_top` is not given."""
    from .export import op_names

    members = dict(common, **{"model.tflite": flat})
    manifest = _manifest(lang, quant, flat, provenance, {}, {"cases": []})
    bundle = read_bundle(_bundle_bytes(members, manifest))
    engine, golden = _engine_with_golden(bundle, members, manifest, sets, config)
    metrics, top = _measure(engine, sets, config)
    if float_top is not None:
        metrics["agreement_with_float"] = float(np.mean(top == float_top))
    elif agreement is not None:
        metrics["agreement_with_float"] = agreement
    metrics["model_bytes"] = len(flat)
    metrics["ops"] = sorted(set(op_names(flat)))
    manifest = _manifest(lang, quant, flat, provenance, dict(metrics), golden)
    blob = _bundle_bytes(members, manifest)
    metrics["bundle_bytes"] = len(blob)
    return metrics, blob, top


def remeasure(path: Path, run: Path, dev_path: Optional[Path]
              ) -> Tuple[Dict[str, Any], List[str]]:
    """Gate a written bundle again with this checkout's engine, after a change to what the
    engine decides after the model: the same members, model.tflite included, measured on the
    sets of the training run `run` (whose corpus config must be the bundle's); the manifest's
    metrics, golden cases and code version rewritten in place, its agreement with float kept
    (the float model is not in the bundle). Returns the new metrics and why the bundle now
    breaks the `limits` it was converted under (empty when it keeps them)."""
    bundle = read_bundle(path)
    old = bundle.manifest
    common = _members_measured_on(bundle, path, run)
    provenance = dict(old["provenance"], code_version=_code_version())
    config = ConvertConfig(**provenance["convert_config"])
    sets = load_eval_sets(run, config.eval_sentences, dev_path)
    metrics, blob, _ = gate_variant(old["lang"], old["quantization"], bundle.model, common,
                                    provenance, sets, config,
                                    agreement=old["metrics"].get("agreement_with_float"))
    Path(path).write_bytes(blob)
    return metrics, limits(old["quantization"], metrics, config)


def _members_measured_on(bundle: Bundle, path: Path, run: Path) -> Dict[str, bytes]:
    """The members of `bundle` (read from `path`) but its model and manifest, once the run
    folder `run` is known to hold the corpus the bundle was measured on."""
    old = bundle.manifest
    if not _same_corpus(_train_config(run).get("corpus"),
                        old["provenance"].get("corpus_config")):
        raise ConfigError(f"{run}: its corpus config is not the one {path} was measured on; "
                          "re-create that corpus (edge-slm train with the manifest's "
                          "provenance.corpus_config, stopped after its corpus stage) and "
                          "pass that run folder")
    return {k: v for k, v in bundle.members.items() if k in old["members"]
            and k != "model.tflite"}


def _same_corpus(a: Any, b: Any) -> bool:
    """Whether two saved corpus configs sample the same corpus: equal once each is filled with
    `CorpusConfig`'s defaults (a manifest written before a key existed lacks it)."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return False
    from ..corpus.build import CorpusConfig

    try:
        return asdict(CorpusConfig(**a)) == asdict(CorpusConfig(**b))
    except TypeError:  # a key this checkout's CorpusConfig does not know
        return a == b


def judge(ref: Dict[str, Any], m: Dict[str, Any], margin: float) -> List[str]:
    """Why a variant with metrics `m` is refused against the float reference `ref` (empty
    when it passes): more than `margin` points of intent accuracy (the model's best guess,
    top-1) lost on the held-out templates or the dev set. (Answers after the threshold are
    reported beside it: they also move with calibration, which the variants share.)"""
    reasons = []
    for set_name in ("heldout", "dev"):
        if set_name in m and set_name in ref:
            loss = 100 * (ref[set_name]["top1_acc"] - m[set_name]["top1_acc"])
            if loss > margin:
                acc = 100 * m[set_name]["top1_acc"]
                reasons.append(f"{set_name} intent accuracy {acc:.2f}% is {loss:.2f} points "
                               f"below float's {100 * ref[set_name]['top1_acc']:.2f}% "
                               f"(margin {margin})")
    return reasons


def limits(quant: str, m: Dict[str, Any], config: ConvertConfig) -> List[str]:
    """Why a variant `quant` with metrics `m` breaks the limits any shipped bundle is held to,
    float or not (empty when it keeps them): out-of-scope false accepts above
    `config.max_false_accept`, alone or in the example home, and a bundle larger than its
    `config.max_bundle_bytes`."""
    reasons = []
    for set_name, where in (("oos", ""), ("oos_home", " in the example home")):
        fa = m.get(set_name, {}).get("false_accept")
        if fa is not None and fa > config.max_false_accept:
            reasons.append(f"out-of-scope false accepts{where} {100 * fa:.2f}% above the "
                           f"limit {100 * config.max_false_accept:.2f}% (calibrate for fewer: "
                           "the training config's data.target_false_accept)")
    limit = config.max_bundle_bytes.get(quant)
    size = m.get("bundle_bytes")
    if limit is not None and size is not None and size > limit:
        reasons.append(f"bundle {size:,} bytes above the {quant} limit {limit:,} (a smaller "
                       "model, or a smaller variant)")
    return reasons


def _manifest(lang: str, quant: str, flat: bytes, provenance: Dict[str, Any],
              metrics: Dict[str, Any], golden: Dict[str, Any]) -> Dict[str, Any]:
    return {"model_id": f"{lang}-{quant}-{sha256(flat)[:10]}", "lang": lang,
            "quantization": quant, "metrics": metrics, "provenance": provenance,
            "golden": golden, "min_runtime_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _bundle_bytes(members: Dict[str, bytes], manifest: Dict[str, Any]) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="edge-slm-bundle-") as tmp:
        path = write_bundle(Path(tmp) / "b.slm", members, manifest)
        return path.read_bytes()


def _engine_with_golden(bundle: Bundle, members: Dict[str, bytes], manifest: Dict[str, Any],
                        sets: EvalSets, config: ConvertConfig
                        ) -> Tuple[IntentEngine, Dict[str, Any]]:
    """An engine on the variant and its golden cases (computed here, on the reference
    runtime)."""
    from ..runtime.engine import IntentEngine

    engine = IntentEngine(bundle, check_golden=False)
    texts = list(GOLDEN_TEXTS) + [r["text"] for r in sets.heldout[:max(
        0, config.golden_cases - len(GOLDEN_TEXTS))]]
    cases = []
    for text in texts[:config.golden_cases]:
        ids, offsets = engine.encode(text)
        li, lt, lf = engine.model.run(ids)
        n = 1 + len(offsets)
        case = {"text": text, "ids": ids.tolist(),
                "intent_logits": [round(float(x), 5) for x in li],
                "tags": lt.argmax(-1)[:n].tolist()}
        if lf.size:
            case["frame"] = int(lf.argmax())
        cases.append(case)
    golden = {"tolerance": config.golden_tolerance, "cases": cases}
    engine.manifest = dict(manifest, golden=golden)
    engine.check_golden()
    return engine, golden


def _measure(engine: IntentEngine, sets: EvalSets, config: ConvertConfig
             ) -> Tuple[Dict[str, Any], np.ndarray]:
    out: Dict[str, Any] = {"heldout": evaluate(engine, sets.heldout),
                           "oos": evaluate(engine, sets.oos)}
    # the same out-of-scope sentences said in a home: the bundle's example home as the user's
    # own, where naming one of its devices is evidence of a command (docs/labelling.md)
    with home_kept(engine):
        engine.set_home(engine.shipped_home)
        out["oos_home"] = evaluate(engine, sets.oos)
    if sets.dev:
        out["dev"] = evaluate(engine, sets.dev)
    if sets.compound:
        out["compound"] = evaluate(engine, sets.compound)
    texts = [r["text"] for r in sets.heldout] + [r["text"] for r in sets.dev]
    tops = []
    for t in texts:
        ids, _ = engine.encode(t)
        li, _, _ = engine.model.run(ids)
        tops.append(int(li.argmax()))
    rows = [engine.encode(t)[0] for t in texts[:50]] or [engine.encode("turn on the light")[0]]
    lat = []
    for i in range(config.latency_runs):
        row = rows[i % len(rows)]
        t0 = time.perf_counter()
        engine.model.run(row)
        lat.append((time.perf_counter() - t0) * 1000)
    out["model_p50_ms"] = float(np.percentile(lat, 50))
    out["model_p99_ms"] = float(np.percentile(lat, 99))
    out["runtime"] = engine.model.runtime
    return out, np.asarray(tops)
