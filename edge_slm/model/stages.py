"""The stages of `edge-slm train`, in order, over one shared run context.

    corpus -> tokenizer -> teacher -> teacher labels -> student -> distillation -> pruning
           -> calibration

A stage is a function of the `RunContext`. It does its work unless its marker
(`OUT/.<marker>.done`) holds the digest of what the work depends on, loads what it leaves for
the stages after it into the context, and returns a `StageReport`: whether it resumed, and
its own figures. The keys of the teacher's labels and of the students build on the keys
before them, so a new teacher relabels and retrains every student, while new pruning settings
redo only the pruning and the calibration.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Sequence, Tuple

import numpy as np

from ..corpus.build import SPLIT_CALIB, CorpusConfig, write_corpus
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .data import Batch, LabelSpace, Sets, encode, read_jsonl
from .distill import SoftLabels, fit
from .report import (Figures, StageReport, evaluate_student, evaluate_teacher, fit_calibration,
                     headline)
from .run import RunContext
from .student import ModelConfig, build_student, count_params
from .teacher import JointTeacher, soft_labels
from .tokenizer_train import fast_tokenizer, token_id, train_tokenizer

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from ..runtime.evidence import WordEvidence


def corpus(ctx: RunContext) -> StageReport:
    """Sample the corpus, the extra sentences only the teacher labels, and the out-of-scope
    sentences that set the rejection threshold."""
    cfg = ctx.config
    extra_cfg = CorpusConfig(**{**asdict(cfg.corpus), "count": cfg.data.extra_sentences,
                                "seed": cfg.corpus.seed + 1000, "augment_fraction": 1.0,
                                "augment_probs": cfg.data.extra_augment_probs})
    calib_cfg = CorpusConfig(**{**asdict(cfg.corpus), "count": cfg.data.calibration_sentences,
                                "seed": cfg.corpus.seed + 2000, "oos_fraction": 1.0})
    paths = [ctx.out / "corpus.jsonl", ctx.out / "extra.jsonl", ctx.out / "calibration.jsonl"]
    stage = ctx.marker("corpus", [asdict(cfg.corpus), asdict(extra_cfg), asdict(calib_cfg)])
    resumed = stage.done
    with ctx.timed("corpus"):
        if not resumed:
            ctx.log(f"corpus: sampling {cfg.corpus.count} + {extra_cfg.count} + "
                    f"{calib_cfg.count} out-of-scope sentences")
            for corpus_cfg, path in zip((cfg.corpus, extra_cfg, calib_cfg), paths):
                write_corpus(corpus_cfg, path, progress=ctx.progress)
            stage.finish()
    ctx.records = list(read_jsonl(paths[0]))
    ctx.extra_recs = [dict(r, intent=None, slots=[]) for r in read_jsonl(paths[1])]
    ctx.calib_recs = calibration_records(read_jsonl(paths[2]))
    ctx.train_all = [r for r in ctx.records if r["split"] == "train"]
    splits = Counter(r["split"] for r in ctx.records)
    return StageReport(resumed, {"sentences": len(ctx.records), "splits": dict(sorted(
        splits.items())), "extra": len(ctx.extra_recs), "calibration": len(ctx.calib_recs)})


def tokenizer(ctx: RunContext) -> StageReport:
    """Train the WordPiece vocabulary on the training split; encode every set with it."""
    cfg = ctx.config
    path = ctx.out / "tokenizer.json"
    stage = ctx.marker("tokenizer", [asdict(cfg.corpus), cfg.data.vocab_size])
    resumed = stage.done
    with ctx.timed("tokenizer"):
        if not resumed:
            train_tokenizer((r["text"] for r in ctx.train_all), cfg.data.vocab_size, out=path)
            stage.finish()
        ctx.tok_json = path.read_text(encoding="utf-8")
        ctx.fast = fast_tokenizer(ctx.tok_json)
    ctx.sets = sets = _encode_sets(ctx)
    labels = sets.labels
    ctx.model_config = ModelConfig(**{
        **asdict(cfg.model), "vocab_size": ctx.fast.get_vocab_size(),
        "n_intents": len(labels.intents), "n_tags": len(labels.tags),
        "n_frames": len(labels.frames)})
    return StageReport(resumed, {
        "vocab": ctx.fast.get_vocab_size(), "intents": len(labels.intents),
        "frames": len(labels.frames), "tags": len(labels.tags), "student_rows": len(sets.train),
        "valid": len(sets.valid), "held-out": {k: len(b) for k, (b, _) in sets.evals.items()}})


def teacher(ctx: RunContext) -> StageReport:
    """Fine-tune the MiniLM teacher on the training split."""
    import torch

    cfg = ctx.config
    tdir = ctx.out / "teacher"
    stage = ctx.marker("teacher", [asdict(cfg.corpus), asdict(cfg.teacher)])
    resumed = stage.done
    sentences = min(len(ctx.train_all), cfg.teacher.train_sentences)
    with ctx.timed("teacher"):
        tdir.mkdir(exist_ok=True)
        if not resumed:
            model = JointTeacher(_sets(ctx).labels, cfg.teacher)
            ctx.log(f"teacher: fine-tuning all-MiniLM-L6-v2 ({model.n_params():,} parameters) "
                    f"on {sentences} sentences")
            model.fit(ctx.train_all[:cfg.teacher.train_sentences], progress=ctx.progress)
            model.save(tdir / "teacher.pt")
            stage.finish()
    blob = torch.load(str(tdir / "teacher.pt"), map_location="cpu", weights_only=False)
    ctx.teacher_params = int(sum(v.numel() for v in blob["state_dict"].values()))
    return StageReport(resumed, {"params": ctx.teacher_params, "sentences": sentences})


def teacher_labels(ctx: RunContext) -> StageReport:
    """The teacher's intent, frame and tag distributions of every set, on student tokens; the
    teacher's row of the table, measured on them."""
    cfg, sets = ctx.config, _sets(ctx)
    path = ctx.out / "teacher" / "soft.npz"
    stage = ctx.marker("soft", [
        ctx.keys["teacher"], ctx.keys["corpus"], cfg.data.student_sentences,
        cfg.data.extra_sentences, cfg.data.eval_sentences, cfg.data.calibration_sentences,
        str(ctx.dev_path), _model_config(ctx).max_len])
    resumed = stage.done
    with ctx.timed("teacher_labels"):
        if not resumed:
            _label_with_teacher(ctx, sets, path)
            stage.finish()
        ctx.soft = dict(np.load(path))
    res = ctx.results["teacher"] = evaluate_teacher(ctx.soft_of, sets,
                                                    cfg.data.target_false_accept,
                                                    ctx.teacher_params)
    rows = {k[:-len(".intent")]: len(v) for k, v in ctx.soft.items() if k.endswith(".intent")}
    return StageReport(resumed, {"rows": rows, **headline(res)})


def student(ctx: RunContext) -> StageReport:
    """The student without the teacher: hard labels only, the baseline (when
    `data.baseline_student` asks for it)."""
    if not ctx.config.data.baseline_student:
        return StageReport(False, {"skipped": "data.baseline_student is off"})
    with ctx.timed("student_no_teacher"):
        ckpt, resumed = _student(ctx, "no_teacher", _student_key(ctx, "hard"), _train_hard)
    return _student_report(ctx, "student_no_teacher", ckpt, resumed)


def distillation(ctx: RunContext) -> StageReport:
    """The distilled student: hard labels and the teacher's, over the labelled rows and the
    teacher-only rows."""
    with ctx.timed("student_distilled"):
        ckpt, resumed = _student(ctx, "distilled", _student_key(ctx, "kd"), _train_distilled)
    return _student_report(ctx, "distilled", ckpt, resumed)


def pruning(ctx: RunContext) -> StageReport:
    """Heads, FFN channels and unused vocabulary of the distilled student removed by measured
    importance, then recovered by distillation."""
    cfg = ctx.config
    with ctx.timed("prune_recover"):
        ckpt, resumed = _student(ctx, "pruned", _student_key(ctx, asdict(cfg.prune),
                                                             asdict(cfg.recover), "kd"),
                                 _train_pruned)
    rep = ckpt.meta["prune"]
    figures: Figures = {"params": count_params(ckpt.model)}
    for part in ("heads", "ffn", "vocab"):
        figures[part] = f"{rep[part + '_before']} -> {rep[part + '_after']}"
    figures["train_seconds"] = ckpt.meta.get("train_seconds")
    return StageReport(resumed, figures)


def calibration(ctx: RunContext) -> StageReport:
    """Temperature and rejection threshold of the pruned student: the final model
    (`OUT/model`), measured for the table's `pruned` row."""
    target = ctx.config.data.target_false_accept
    path = ctx.out / "model"
    ev_cfg = ctx.config.evidence
    stage = ctx.marker("calibration", [ctx.keys["student_pruned"], target, asdict(ev_cfg)])
    # A pruned student trained in this run is calibrated in this run.
    resumed = (stage.done and (path / "checkpoint.json").exists()
               and ctx.stages["pruning"].resumed)
    with ctx.timed("calibration"):
        if resumed:
            final = load_checkpoint(path)
        else:
            final = ctx.students["pruned"]
            evidence = _word_evidence(ctx, final.tokenizer_json) if ev_cfg.enabled else None
            final.meta["calibration"] = fit_calibration(final, _sets(ctx), target,
                                                        evidence=evidence)
            save_checkpoint(final, path)
            stage.finish()
    ctx.calibration = final.meta["calibration"]
    res = ctx.results["pruned"] = evaluate_student(final, _sets(ctx), target)
    return StageReport(resumed, {**ctx.calibration, **headline(res)})


#: The chain, in order: (name, stage).
STAGES: Tuple[Tuple[str, Callable[[RunContext], StageReport]], ...] = (
    ("corpus", corpus), ("tokenizer", tokenizer), ("teacher", teacher),
    ("teacher_labels", teacher_labels), ("student", student), ("distillation", distillation),
    ("pruning", pruning), ("calibration", calibration))


def _sets(ctx: RunContext) -> Sets:
    if ctx.sets is None:
        raise RuntimeError("the tokenizer stage has not run")
    return ctx.sets


def _fast(ctx: RunContext) -> Tokenizer:
    if ctx.fast is None:
        raise RuntimeError("the tokenizer stage has not run")
    return ctx.fast


def _model_config(ctx: RunContext) -> ModelConfig:
    if ctx.model_config is None:
        raise RuntimeError("the tokenizer stage has not run")
    return ctx.model_config


def _encode_sets(ctx: RunContext) -> Sets:
    """The students' rows, the teacher-only rows, validation, held-out and calibration sets."""
    from ..corpus.inventory import load_inventory
    from ..runtime.metrics import to_corpus_format
    from .evaluate import home_of

    cfg, records = ctx.config, ctx.records
    labels = LabelSpace.from_records(records)
    inventory = load_inventory(Path(cfg.corpus.inventory) if cfg.corpus.inventory else None,
                               cfg.corpus.lang)
    fast = _fast(ctx)
    max_len, cls_id = cfg.model.max_len, token_id(fast, "[CLS]")

    def enc(recs: Sequence[Dict[str, Any]]) -> Batch:
        return encode(recs, fast, labels, max_len, cls_id)

    eval_n = cfg.data.eval_sentences
    train_recs = ctx.train_all[:cfg.data.student_sentences]
    valid = [r for r in records if r["split"] == "valid"][: max(eval_n, 2000)]
    held = [r for r in records if r["split"] == "heldout" and r["intent"]][:eval_n]
    held_oos = [r for r in records if r["split"] == "heldout" and not r["intent"]][:eval_n]
    evals: Dict[str, Tuple[Batch, List[Dict[str, Any]]]] = {}
    for name, recs in (("heldout_templates", held), ("heldout_oos", held_oos)):
        evals[name] = (enc(recs), recs)
    if ctx.dev_path is not None and Path(ctx.dev_path).exists():
        dev = [to_corpus_format(r) for r in read_jsonl(Path(ctx.dev_path))]
        evals["dev"] = (enc(dev), dev)
    return Sets(labels, enc(train_recs), train_recs, enc(ctx.extra_recs), ctx.extra_recs,
                enc(valid), valid, evals, enc(ctx.calib_recs), ctx.calib_recs,
                home_of(inventory))


def _label_with_teacher(ctx: RunContext, sets: Sets, path: Path) -> None:
    """Write the teacher's labels of every set to `path`."""
    model = JointTeacher.load(ctx.out / "teacher" / "teacher.pt")
    everything = ([("train", sets.train, sets.train_recs), ("extra", sets.extra, sets.extra_recs),
                   ("valid", sets.valid, sets.valid_recs), ("calib", sets.calib, sets.calib_recs)]
                  + [(k, b, r) for k, (b, r) in sets.evals.items()])
    arrays: Dict[str, np.ndarray] = {}
    for name, batch, recs in everything:
        preds = model.predict([r["text"] for r in recs], progress=ctx.progress,
                              desc=f"teacher labels {name}")
        sl = soft_labels(preds, batch.offsets, sets.labels, _model_config(ctx).max_len - 1)
        arrays[f"{name}.intent"] = sl.intent_probs
        if sl.frame_probs is not None:  # read back with .get: absent is None
            arrays[f"{name}.frame"] = sl.frame_probs
        arrays[f"{name}.tags"] = sl.tag_probs
        arrays[f"{name}.rows"] = sl.tag_rows
    np.savez(path, allow_pickle=False, **arrays)  # numbers only


def _student_key(ctx: RunContext, *more: object) -> List[object]:
    """A student's key: the teacher's labels, the student's config, the training, `more`."""
    return [ctx.keys["soft"], asdict(_model_config(ctx)), asdict(ctx.config.distill), *more]


def _student(ctx: RunContext, name: str, key: object,
             train: Callable[[RunContext], Checkpoint]) -> Tuple[Checkpoint, bool]:
    """The student OUT/students/<name>: loaded when its marker holds `key`, else trained and
    saved; also whether it was loaded."""
    path = ctx.out / "students" / name
    stage = ctx.marker(f"student_{name}", key)
    if stage.done and (path / "checkpoint.json").exists():
        ckpt, resumed = load_checkpoint(path), True
    else:
        t1 = time.perf_counter()
        ckpt, resumed = train(ctx), False
        ckpt.meta["train_seconds"] = round(time.perf_counter() - t1, 1)
        save_checkpoint(ckpt, path)
        stage.finish()
    ctx.students[name] = ckpt
    return ckpt, resumed


def _student_report(ctx: RunContext, row: str, ckpt: Checkpoint, resumed: bool) -> StageReport:
    """Measure a student for its row of the table; its figures are that row."""
    res = ctx.results[row] = evaluate_student(ckpt, _sets(ctx),
                                              ctx.config.data.target_false_accept)
    return StageReport(resumed, {**headline(res), "train_seconds": ckpt.meta.get("train_seconds")})


def _train_hard(ctx: RunContext) -> Checkpoint:
    sets = _sets(ctx)
    model = build_student(_model_config(ctx), seed=ctx.config.distill.seed)
    ctx.log(f"student without teacher: {len(sets.train)} labelled sentences")
    fit(model, sets.train, ctx.config.distill, progress=ctx.progress, desc="student (no teacher)")
    return Checkpoint(model, sets.labels, ctx.tok_json, {"kind": "student_no_teacher"})


def _with_teacher_rows(ctx: RunContext) -> Tuple[Batch, SoftLabels, np.ndarray]:
    """Labelled rows then teacher-only rows: ids, the teacher's labels, where hard labels
    count."""
    sets = _sets(ctx)
    both = _concat(sets.train, sets.extra)
    both_soft = _concat_soft(ctx.soft_of("train"), ctx.soft_of("extra"))
    hard_mask = np.concatenate([np.ones(len(sets.train), np.float32),
                                np.zeros(len(sets.extra), np.float32)])
    return both, both_soft, hard_mask


def _train_distilled(ctx: RunContext) -> Checkpoint:
    sets = _sets(ctx)
    model = build_student(_model_config(ctx), seed=ctx.config.distill.seed)
    both, both_soft, hard_mask = _with_teacher_rows(ctx)
    ctx.log(f"distilled student: {len(sets.train)} labelled + {len(sets.extra)} teacher-only")
    fit(model, both, ctx.config.distill, soft=both_soft, hard_mask=hard_mask,
        progress=ctx.progress, desc="student (distilled)")
    return Checkpoint(model, sets.labels, ctx.tok_json, {"kind": "student_distilled"})


def _train_pruned(ctx: RunContext) -> Checkpoint:
    from .prune import prune, prune_tokenizer_json, remap_ids

    sets, fast = _sets(ctx), _fast(ctx)
    keep = [token_id(fast, t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]")]
    vocab = fast.get_vocab()
    keep += [i for t, i in vocab.items() if len(t) == 1 or (t.startswith("##") and len(t) == 3)]
    small, kept, report = prune(ctx.students["distilled"].model, sets.valid, ctx.config.prune,
                                [sets.train.ids, sets.extra.ids], keep)
    new_tok = prune_tokenizer_json(ctx.tok_json, kept)
    unk = int(np.searchsorted(kept, token_id(fast, "[UNK]")))
    both, both_soft, hard_mask = _with_teacher_rows(ctx)
    both.ids = remap_ids(both.ids, kept, unk)
    ctx.log(f"pruned: heads {report['heads_before']} -> {report['heads_after']}, ffn "
            f"{report['ffn_before']} -> {report['ffn_after']}, vocab {report['vocab_before']} "
            f"-> {report['vocab_after']}; recovering by distillation")
    fit(small, both, ctx.config.recover, soft=both_soft, hard_mask=hard_mask,
        progress=ctx.progress, desc="pruned (recovery)")
    return Checkpoint(small, sets.labels, new_tok, {"kind": "student_pruned", "prune": report})


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


def _word_evidence(ctx: RunContext, tokenizer_json: str) -> "WordEvidence":
    """The word evidence (model/evidence.py), fitted on the training split: its commands
    against its out-of-scope sentences and those of the calibration pool's training split
    (chat and near-misses the model itself never learned from)."""
    from ..tokenizer import WordPieceTokenizer
    from .evidence import fit_evidence, training_sentences

    commands, oos = training_sentences(ctx.train_all,
                                       read_jsonl(ctx.out / "calibration.jsonl"))
    ctx.log(f"calibration: word evidence on {len(commands)} commands and {len(oos)} "
            "out-of-scope sentences")
    return fit_evidence(WordPieceTokenizer.from_json(tokenizer_json), commands, oos,
                        ctx.config.evidence, max_pieces=ctx.config.model.max_len - 1)


def calibration_records(records: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The out-of-scope sentences that set the threshold: those of the calibration split,
    templates and lines never trained on (`CorpusConfig.calib_fraction`), every one as sampled,
    so the same kind of wording and the same mix of sources as the held-out out-of-scope
    sentences the gate measures. (Sentences of the validation split, new fills of templates
    the model had learned, set a threshold that let two to four times its target through on
    held-out templates, and how much more varied from one training run to the next.) A corpus
    without a calibration split falls back to the validation split's.

    (Counted once per sentence before augmentation, as before, the fixed lists of hard
    near-misses and chat shrank to 4% of the calibration sentences against a quarter each of
    what is measured, and the threshold missed its target there fourfold.)"""
    records = list(records)
    calib = [rec for rec in records if rec["split"] == SPLIT_CALIB and not rec["intent"]]
    return calib or [rec for rec in records if rec["split"] == "valid" and not rec["intent"]]
