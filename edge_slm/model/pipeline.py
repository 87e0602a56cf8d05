"""`edge-slm train`: corpus -> tokenizer -> teacher -> students -> pruning -> calibration.

Every stage writes its result into the output folder and is skipped when that result is
already there for the same config, so an interrupted run resumes (the teacher's fine-tuning
and its soft labels are the expensive part and are cached). The run ends with a table:
teacher / student without the teacher / distilled student / pruned student, on held-out
templates, out-of-scope sentences never trained on, and (where present) a dev set of real
commands.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..corpus.build import CorpusConfig
from ..errors import ConfigError
from .calibrate import choose_threshold, expected_calibration_error, fit_temperature, softmax
from .data import Batch, LabelSpace, encode, read_jsonl
from .distill import DistillConfig, SoftLabels
from .prune import PruneConfig
from .student import ModelConfig
from .teacher import TeacherConfig

_LOGGER = logging.getLogger(__name__)

#: A stage that finishes faster than this was served from the cache.
CACHED_STAGE_S = 2.0


@dataclass
class DataConfig:
    """Which corpus rows each stage uses."""

    student_sentences: int = 100000
    """Labelled training rows for the students."""
    extra_sentences: int = 30000
    """Extra heavily augmented sentences that only the teacher labels."""
    extra_augment_probs: Dict[str, float] = field(default_factory=lambda: {
        "asr": 0.45, "typo": 0.45, "filler": 0.5, "wake_word": 0.2, "contraction": 0.5,
        "number": 0.5, "casing": 0.5, "punctuation": 0.5})
    """Augmenter probabilities of the extra sentences."""
    eval_sentences: int = 5000
    """Held-out rows evaluated (per set)."""
    vocab_size: int = 3000
    """WordPiece vocabulary before pruning."""
    calibration_sentences: int = 200000
    """Out-of-scope sentences sampled for the rejection threshold (those of the validation
    split, one per sentence before augmentation, are kept: about 2,400 for 200,000)."""
    target_false_accept: float = 0.005
    """Rejection threshold target on those sentences (held-out out-of-scope sentences, of
    templates never seen, come out higher)."""


@dataclass
class TrainConfig:
    """The whole training run."""

    corpus: CorpusConfig = field(default_factory=lambda: CorpusConfig(count=160000, seed=1))
    """The corpus to sample."""
    data: DataConfig = field(default_factory=DataConfig)
    """Row budgets and calibration target."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Student sizes (vocab_size and label counts are filled in)."""
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    """Teacher fine-tuning."""
    distill: DistillConfig = field(default_factory=DistillConfig)
    """Student training (with and without the teacher)."""
    prune: PruneConfig = field(default_factory=PruneConfig)
    """Structured pruning."""
    recover: DistillConfig = field(default_factory=lambda: DistillConfig(epochs=2.0, lr=1e-3))
    """Distillation after pruning."""

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TrainConfig":
        """Build from a parsed YAML/JSON file; unknown keys are an error."""
        return _from_dict(cls, data or {})

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _from_dict(cls: Any, data: Dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a mapping, got {data!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    kwargs = {}
    default = cls()
    for name, value in data.items():
        current = getattr(default, name)
        kwargs[name] = _from_dict(type(current), value) if is_dataclass(current) else value
    return cls(**kwargs)


def load_train_config(path: Optional[Path]) -> TrainConfig:
    """Read a YAML training config (None: defaults)."""
    if path is None:
        return TrainConfig()
    import yaml

    return TrainConfig.from_dict(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Stage:
    """A cached step: skipped when DIR/<name>.done holds the same key."""

    def __init__(self, out: Path, name: str, key: Any) -> None:
        self.marker = out / f".{name}.done"
        self.key = _digest(key)

    @property
    def done(self) -> bool:
        """Whether this stage's result is already there."""
        return self.marker.exists() and self.marker.read_text().strip() == self.key

    def finish(self) -> None:
        """Record that the stage completed."""
        self.marker.write_text(self.key)


@dataclass
class Sets:
    """Encoded corpus and evaluation sets."""

    labels: LabelSpace
    train: Batch
    train_recs: List[Dict[str, Any]]
    extra: Batch
    extra_recs: List[Dict[str, Any]]
    valid: Batch
    valid_recs: List[Dict[str, Any]]
    evals: Dict[str, Tuple[Batch, List[Dict[str, Any]]]]
    home: Any = None
    """The names of the home the corpus was sampled in (for slot resolution)."""
    calib: Optional[Batch] = None
    """Out-of-scope validation sentences that set the rejection threshold."""
    calib_recs: List[Dict[str, Any]] = field(default_factory=list)


def run_training(config: TrainConfig, out: Path, dev_path: Optional[Path] = None,
                 progress: bool = True, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run (or resume) the whole chain; return the report."""
    import tensorflow as tf

    from ..corpus.build import write_corpus
    from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from .distill import fit
    from .teacher import JointTeacher, soft_labels
    from .tokenizer_train import fast_tokenizer, train_tokenizer

    tf.keras.utils.set_random_seed(config.distill.seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(config.to_dict(), indent=1))
    t_start = time.perf_counter()
    timings: Dict[str, float] = {}
    cached: List[str] = []
    timings_path = out / "timings.json"
    previous = json.loads(timings_path.read_text()) if timings_path.exists() else {}

    def timed(name: str, t0: float) -> None:
        """Record a stage's time; a stage served from cache keeps the time it took to build."""
        elapsed = round(time.perf_counter() - t0, 1)
        if elapsed < CACHED_STAGE_S and name in previous:
            cached.append(name)
            elapsed = previous[name]
        timings[name] = elapsed
        timings_path.write_text(json.dumps({**previous, **timings}, indent=1))

    # 1. corpus and the teacher-only extra sentences
    t0 = time.perf_counter()
    corpus_path, extra_path = out / "corpus.jsonl", out / "extra.jsonl"
    calib_path = out / "calibration.jsonl"
    extra_cfg = CorpusConfig(**{**asdict(config.corpus), "count": config.data.extra_sentences,
                                "seed": config.corpus.seed + 1000, "augment_fraction": 1.0,
                                "augment_probs": config.data.extra_augment_probs})
    calib_cfg = CorpusConfig(**{**asdict(config.corpus),
                                "count": config.data.calibration_sentences,
                                "seed": config.corpus.seed + 2000, "oos_fraction": 1.0})
    stage = Stage(out, "corpus", [asdict(config.corpus), asdict(extra_cfg), asdict(calib_cfg)])
    if not stage.done:
        log(f"corpus: sampling {config.corpus.count} + {extra_cfg.count} + "
            f"{calib_cfg.count} out-of-scope sentences")
        write_corpus(config.corpus, corpus_path, progress=progress)
        write_corpus(extra_cfg, extra_path, progress=progress)
        write_corpus(calib_cfg, calib_path, progress=progress)
        stage.finish()
    timed("corpus", t0)
    records = list(read_jsonl(corpus_path))
    extra_recs = [dict(r, intent=None, slots=[]) for r in read_jsonl(extra_path)]
    calib_recs = calibration_records(read_jsonl(calib_path))
    train_all = [r for r in records if r["split"] == "train"]
    train_recs = train_all[:config.data.student_sentences]

    # 2. tokenizer
    t0 = time.perf_counter()
    tok_path = out / "tokenizer.json"
    stage = Stage(out, "tokenizer", [asdict(config.corpus), config.data.vocab_size])
    if not stage.done:
        train_tokenizer((r["text"] for r in train_all), config.data.vocab_size, out=tok_path)
        stage.finish()
    tok_json = tok_path.read_text(encoding="utf-8")
    fast = fast_tokenizer(tok_json)
    cls_id = fast.token_to_id("[CLS]")
    timed("tokenizer", t0)

    labels = LabelSpace.from_records(records)
    max_len = config.model.max_len
    from ..corpus.inventory import load_inventory

    inventory = load_inventory(Path(config.corpus.inventory) if config.corpus.inventory else None,
                               config.corpus.lang)
    sets = _encode_sets(records, train_recs, extra_recs, fast, labels, max_len, cls_id,
                        config.data.eval_sentences, dev_path, inventory)
    sets.calib_recs = calib_recs
    sets.calib = encode(calib_recs, fast, labels, max_len, cls_id)
    mcfg = ModelConfig(**{**asdict(config.model), "vocab_size": fast.get_vocab_size(),
                          "n_intents": len(labels.intents), "n_tags": len(labels.tags),
                          "n_frames": len(labels.frames)})

    # 3. teacher: fine-tune, then label the student's rows, the extra rows and the eval sets
    t0 = time.perf_counter()
    tdir = out / "teacher"
    tdir.mkdir(exist_ok=True)
    stage = Stage(out, "teacher", [asdict(config.corpus), asdict(config.teacher)])
    if not stage.done:
        teacher = JointTeacher(labels, config.teacher)
        log(f"teacher: fine-tuning all-MiniLM-L6-v2 ({teacher.n_params():,} parameters) on "
            f"{min(len(train_all), config.teacher.train_sentences)} sentences")
        teacher.fit(train_all[:config.teacher.train_sentences], progress=progress)
        teacher.save(tdir / "teacher.pt")
        stage.finish()
    timed("teacher", t0)
    t0 = time.perf_counter()
    soft_stage = Stage(out, "soft", [stage.key, config.data.student_sentences,
                                     config.data.extra_sentences, config.data.eval_sentences,
                                     config.data.calibration_sentences, str(dev_path),
                                     mcfg.max_len])
    if not soft_stage.done:
        teacher = JointTeacher.load(tdir / "teacher.pt")
        everything = ([("train", sets.train, sets.train_recs),
                       ("extra", sets.extra, sets.extra_recs),
                       ("valid", sets.valid, sets.valid_recs),
                       ("calib", sets.calib, sets.calib_recs)]
                      + [(k, b, r) for k, (b, r) in sets.evals.items()])
        arrays = {}
        for name, batch, recs in everything:
            preds = teacher.predict([r["text"] for r in recs], progress=progress,
                                    desc=f"teacher labels {name}")
            sl = soft_labels(preds, batch.offsets, labels, max_len - 1)
            arrays[f"{name}.intent"] = sl.intent_probs
            arrays[f"{name}.frame"] = sl.frame_probs
            arrays[f"{name}.tags"] = sl.tag_probs
            arrays[f"{name}.rows"] = sl.tag_rows
        np.savez(tdir / "soft.npz", **arrays)
        soft_stage.finish()
    soft = dict(np.load(tdir / "soft.npz"))
    timed("teacher_labels", t0)

    def soft_of(name: str) -> SoftLabels:
        return SoftLabels(soft[f"{name}.intent"], soft[f"{name}.tags"], soft[f"{name}.rows"],
                          soft.get(f"{name}.frame"))

    # 4. students: without the teacher, and distilled (corpus rows + teacher-only rows)
    results: Dict[str, Dict[str, Any]] = {}
    results["teacher"] = _evaluate_teacher(soft_of, sets, config, tdir)

    def student_stage(name: str, train_fn: Callable[[], Any], key: Any) -> Checkpoint:
        path = out / "students" / name
        st = Stage(out, f"student_{name}", key)
        if st.done and (path / "checkpoint.json").exists():
            return load_checkpoint(path)
        t1 = time.perf_counter()
        ckpt = train_fn()
        ckpt.meta["train_seconds"] = round(time.perf_counter() - t1, 1)
        save_checkpoint(ckpt, path)
        st.finish()
        return ckpt

    from .student import build_student

    def train_hard() -> Checkpoint:
        model = build_student(mcfg)
        log(f"student without teacher: {len(sets.train)} labelled sentences")
        fit(model, sets.train, config.distill, progress=progress, desc="student (no teacher)")
        return Checkpoint(model, labels, tok_json, {"kind": "student_no_teacher"})

    def train_kd() -> Checkpoint:
        model = build_student(mcfg)
        both = _concat(sets.train, sets.extra)
        both_soft = _concat_soft(soft_of("train"), soft_of("extra"))
        hard_mask = np.concatenate([np.ones(len(sets.train), np.float32),
                                    np.zeros(len(sets.extra), np.float32)])
        log(f"distilled student: {len(sets.train)} labelled + {len(sets.extra)} teacher-only")
        fit(model, both, config.distill, soft=both_soft, hard_mask=hard_mask, progress=progress,
            desc="student (distilled)")
        return Checkpoint(model, labels, tok_json, {"kind": "student_distilled"})

    base_key = [soft_stage.key, asdict(mcfg), asdict(config.distill)]
    t0 = time.perf_counter()
    hard = student_stage("no_teacher", train_hard, base_key + ["hard"])
    timed("student_no_teacher", t0)
    t0 = time.perf_counter()
    kd = student_stage("distilled", train_kd, base_key + ["kd"])
    timed("student_distilled", t0)
    for name, ck in (("student_no_teacher", hard), ("distilled", kd)):
        results[name] = _evaluate_student(ck, sets, config)

    # 5. pruning and recovery by distillation
    t0 = time.perf_counter()

    def train_pruned() -> Checkpoint:
        from .prune import prune, prune_tokenizer_json, remap_ids

        keep = [fast.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]")]
        vocab = fast.get_vocab()
        keep += [i for t, i in vocab.items() if len(t) == 1 or (t.startswith("##") and len(t) == 3)]
        small, kept, report = prune(kd.model, sets.valid, config.prune,
                                    [sets.train.ids, sets.extra.ids], keep)
        new_tok = prune_tokenizer_json(tok_json, kept)
        unk = int(np.searchsorted(kept, fast.token_to_id("[UNK]")))
        both = _concat(sets.train, sets.extra)
        both.ids = remap_ids(both.ids, kept, unk)
        both_soft = _concat_soft(soft_of("train"), soft_of("extra"))
        hard_mask = np.concatenate([np.ones(len(sets.train), np.float32),
                                    np.zeros(len(sets.extra), np.float32)])
        log(f"pruned: heads {report['heads_before']} -> {report['heads_after']}, ffn "
            f"{report['ffn_before']} -> {report['ffn_after']}, vocab {report['vocab_before']} "
            f"-> {report['vocab_after']}; recovering by distillation")
        fit(small, both, config.recover, soft=both_soft, hard_mask=hard_mask, progress=progress,
            desc="pruned (recovery)")
        return Checkpoint(small, labels, new_tok, {"kind": "student_pruned", "prune": report})

    pruned = student_stage("pruned", train_pruned,
                           base_key + [asdict(config.prune), asdict(config.recover), "kd"])
    timed("prune_recover", t0)

    # 6. calibration of the final model, evaluation, report
    final = _calibrated(pruned, sets, config)
    save_checkpoint(final, out / "model")
    results["pruned"] = _evaluate_student(final, sets, config)
    timings["this_run"] = round(time.perf_counter() - t_start, 1)
    timings["total_uncached"] = round(sum(v for k, v in timings.items() if k != "this_run"), 1)
    report = {"results": results, "timings_s": timings, "cached_stages": cached,
              "params": {k: v.get("params") for k, v in results.items()},
              "calibration": final.meta["calibration"]}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    table = format_table(results)
    (out / "report.md").write_text(table + "\n")
    log(table)
    return report


def _encode_sets(records: Sequence[Dict[str, Any]], train_recs: List[Dict[str, Any]],
                 extra_recs: List[Dict[str, Any]], fast: Any, labels: LabelSpace, max_len: int,
                 cls_id: int, eval_n: int, dev_path: Optional[Path],
                 inventory: Any = None) -> Sets:
    from ..runtime.metrics import to_corpus_format
    from .evaluate import home_of

    valid = [r for r in records if r["split"] == "valid"][: max(eval_n, 2000)]
    held = [r for r in records if r["split"] == "heldout" and r["intent"]][:eval_n]
    held_oos = [r for r in records if r["split"] == "heldout" and not r["intent"]][:eval_n]
    evals: Dict[str, Tuple[Batch, List[Dict[str, Any]]]] = {}
    for name, recs in (("heldout_templates", held), ("heldout_oos", held_oos)):
        evals[name] = (encode(recs, fast, labels, max_len, cls_id), recs)
    if dev_path is not None and Path(dev_path).exists():
        dev = [to_corpus_format(r) for r in read_jsonl(Path(dev_path))]
        evals["dev"] = (encode(dev, fast, labels, max_len, cls_id), dev)
    return Sets(labels, encode(train_recs, fast, labels, max_len, cls_id), train_recs,
                encode(extra_recs, fast, labels, max_len, cls_id), extra_recs,
                encode(valid, fast, labels, max_len, cls_id), valid, evals,
                home_of(inventory))


def _concat(a: Batch, b: Batch) -> Batch:
    return Batch(np.concatenate([a.ids, b.ids]), np.concatenate([a.intents, b.intents]),
                 np.concatenate([a.tags, np.full_like(b.tags, -1)]), a.offsets + b.offsets,
                 np.concatenate([a.frames, b.frames]))


def _concat_soft(a: SoftLabels, b: SoftLabels) -> SoftLabels:
    frames = (np.concatenate([a.frame_probs, b.frame_probs])
              if a.frame_probs is not None and b.frame_probs is not None else None)
    return SoftLabels(np.concatenate([a.intent_probs, b.intent_probs]),
                      np.concatenate([a.tag_probs, b.tag_probs]),
                      np.concatenate([a.tag_rows, b.tag_rows[1:] + a.tag_rows[-1]]), frames)


def calibration_records(records: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The out-of-scope sentences of the validation split that set the threshold: one per
    sentence before augmentation (its `base`). The corpus samples each negative many times,
    with noise; one hard near-miss ("like literally", "Like literally?", "um, like
    literally") would otherwise count several times and set the threshold alone."""
    seen, out = set(), []
    for rec in records:
        key = " ".join(str(rec.get("base") or rec["text"]).lower().split())
        if rec["split"] == "valid" and not rec["intent"] and key not in seen:
            seen.add(key)
            out.append(rec)
    return out


def _calibration(valid_logits: np.ndarray, valid: Batch, calib_logits: np.ndarray,
                 target: float) -> Dict[str, float]:
    """Temperature fitted on the validation split; the threshold, the lowest whose false
    accepts on the calibration sentences stay within `target`."""
    t = fit_temperature(valid_logits, valid.intents)
    probs = softmax(valid_logits, t)
    return {"temperature": t, "threshold": choose_threshold(softmax(calib_logits, t), target),
            "calibration_sentences": int(len(calib_logits)),
            "ece_before": expected_calibration_error(softmax(valid_logits), valid.intents),
            "ece_after": expected_calibration_error(probs, valid.intents),
            "target_false_accept": target}


def _encoder_for(ckpt: Any, labels: LabelSpace) -> Callable[[List[Dict[str, Any]]], Batch]:
    """Encode records with a checkpoint's own (possibly pruned) tokenizer."""
    from .tokenizer_train import fast_tokenizer

    fast = fast_tokenizer(ckpt.tokenizer_json)
    cls_id = fast.token_to_id("[CLS]")
    max_len = ckpt.model.config.max_len
    return lambda recs: encode(recs, fast, labels, max_len, cls_id)


def _fit_calibration(ckpt: Any, enc: Callable[[List[Dict[str, Any]]], Batch], sets: Sets,
                     config: TrainConfig) -> Dict[str, float]:
    """Temperature and threshold of a student, fitted on the validation split."""
    from .distill import predict

    valid = enc(sets.valid_recs)
    li, _ = predict(ckpt.model, valid.ids)
    ci, _ = predict(ckpt.model, enc(sets.calib_recs).ids)
    return _calibration(li, valid, ci, config.data.target_false_accept)


def _calibrated(ckpt: Any, sets: Sets, config: TrainConfig) -> Any:
    ckpt.meta["calibration"] = _fit_calibration(ckpt, _encoder_for(ckpt, sets.labels), sets,
                                                config)
    return ckpt


def _evaluate_student(ckpt: Any, sets: Sets, config: TrainConfig) -> Dict[str, Any]:
    from .distill import predict_all
    from .evaluate import score
    from .student import count_params

    enc = _encoder_for(ckpt, sets.labels)
    cal = ckpt.meta.get("calibration") or _fit_calibration(ckpt, enc, sets, config)
    out: Dict[str, Any] = {"params": count_params(ckpt.model), "calibration": cal}
    for name, (_, recs) in sets.evals.items():
        b = enc(recs)
        li, lt, lf = predict_all(ckpt.model, b.ids)
        out[name] = score(li, lt, b, recs, sets.labels, cal["temperature"], cal["threshold"],
                          home=sets.home, frame_logits=lf)
    return out


def _evaluate_teacher(soft_of: Callable[[str], SoftLabels], sets: Sets, config: TrainConfig,
                      tdir: Path) -> Dict[str, Any]:
    from .evaluate import score

    def logits(name: str, batch: Batch) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        s = soft_of(name)
        li = np.log(np.maximum(s.intent_probs.astype(np.float32), 1e-8))
        lt = np.log(np.maximum(s.dense_tags(np.arange(len(batch)), batch.ids.shape[1]), 1e-8))
        lf = (np.log(np.maximum(s.frame_probs.astype(np.float32), 1e-8))
              if s.frame_probs is not None else None)
        return li, lt, lf

    vi, _, _ = logits("valid", sets.valid)
    ci, _, _ = logits("calib", sets.calib)
    cal = _calibration(vi, sets.valid, ci, config.data.target_false_accept)
    import torch

    blob = torch.load(str(tdir / "teacher.pt"), map_location="cpu", weights_only=False)
    n_params = int(sum(v.numel() for v in blob["state_dict"].values()))
    out: Dict[str, Any] = {"params": n_params, "calibration": cal}
    for name, (b, recs) in sets.evals.items():
        li, lt, lf = logits(name, b)
        out[name] = score(li, lt, b, recs, sets.labels, cal["temperature"], cal["threshold"],
                          home=sets.home, frame_logits=lf)
    return out


def format_table(results: Dict[str, Dict[str, Any]]) -> str:
    """The closing table of a run, in markdown."""
    cols = [("params", None), ("held-out intent acc", ("heldout_templates", "intent_acc")),
            ("held-out slot F1", ("heldout_templates", "slot_f1")),
            ("held-out slot F1 (resolved)", ("heldout_templates", "slot_f1_resolved")),
            ("held-out frames", ("heldout_templates", "frame_acc")),
            ("OOS false accepts", ("heldout_oos", "false_accept")),
            ("dev intent acc", ("dev", "intent_acc")),
            ("dev acc (thresholded)", ("dev", "intent_acc_thresholded")),
            ("ECE after T", None)]
    head = "| model | " + " | ".join(c for c, _ in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for name, res in results.items():
        cells = []
        for col, path in cols:
            if col == "params":
                cells.append(f"{res.get('params', 0):,}")
            elif col == "ECE after T":
                cells.append(f"{res['calibration']['ece_after']:.3f}")
            else:
                v = res.get(path[0], {}).get(path[1])
                cells.append("-" if v is None else f"{100 * v:.2f}%")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
