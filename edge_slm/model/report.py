"""The figures of a training run: each model measured at its own calibration, the closing
table, and a line per stage.

Every model (the teacher through its soft labels, each student through its own tokenizer) is
measured on the held-out sets with the temperature and rejection threshold fitted for it on
the validation split and the calibration sentences, so each row of the table is what that
model would answer on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .calibrate import (choose_threshold, command_log_odds, expected_calibration_error,
                        fit_temperature, softmax)
from .data import Batch, LabelSpace, Sets, encode
from .distill import SoftLabels

if TYPE_CHECKING:
    from ..runtime.evidence import WordEvidence
    from ..tokenizer import WordPieceTokenizer
    from .checkpoint import Checkpoint

#: A stage's figures: names to numbers, lists, short texts or small mappings of them.
Figures = Dict[str, Any]


@dataclass
class StageReport:
    """What a stage says when it is over (the report's `stages` entry, a log line)."""

    resumed: bool
    """Its marker held its key: its work was skipped and its results loaded."""
    figures: Figures
    """Its own figures (sizes, counts, metrics)."""
    seconds: float = 0.0
    """Its wall time in this run (loading and measuring included)."""


#: The closing table: column title and where its value sits in a model's results
#: ((held-out set, metric); params and ECE after T are read apart).
COLUMNS: List[Tuple[str, Optional[Tuple[str, str]]]] = [
    ("params", None), ("held-out intent acc", ("heldout_templates", "intent_acc")),
    ("held-out slot F1", ("heldout_templates", "slot_f1")),
    ("held-out slot F1 (resolved)", ("heldout_templates", "slot_f1_resolved")),
    ("held-out frames", ("heldout_templates", "frame_acc")),
    ("OOS false accepts", ("heldout_oos", "false_accept")),
    ("dev intent acc", ("dev", "intent_acc")),
    ("dev acc (thresholded)", ("dev", "intent_acc_thresholded")),
    ("dev rejected, top-1 right", ("dev", "rejected_top_right")),
    ("ECE after T", None)]


def calibration(valid_logits: np.ndarray, valid: Batch, calib_logits: np.ndarray,
                target: float, evidence: Optional["WordEvidence"] = None,
                tok: Optional["WordPieceTokenizer"] = None,
                valid_recs: Optional[List[Dict[str, Any]]] = None,
                calib_recs: Optional[List[Dict[str, Any]]] = None
                ) -> Tuple[Dict[str, float], Optional["WordEvidence"]]:
    """Temperature fitted on the validation split; with word `evidence` (unweighted, and the
    records of both sets), its weight beside the model's log-odds, fitted on the validation
    split too; the threshold, the lowest whose false accepts on the calibration sentences
    stay within `target`, on the model's log-odds with the evidence's shift. Returns the
    figures and the weighted evidence."""
    from .evidence import stack_weight, with_weight

    t = fit_temperature(valid_logits, valid.intents)
    probs = softmax(valid_logits, t)
    out = {"temperature": t}
    if evidence is not None:
        assert tok is not None and valid_recs is not None and calib_recs is not None
        model_odds = command_log_odds(valid_logits, t)
        own = np.array([evidence.log_odds(ids) for ids in _pieces(tok, valid_recs)])
        evidence = with_weight(evidence, stack_weight(model_odds, own, valid.intents != 0))
        calib_logits = shifted(calib_logits, t, evidence, tok, calib_recs)
        out["evidence_weight"] = evidence.config.weight
    out.update({"threshold": choose_threshold(softmax(calib_logits, t), target),
                "calibration_sentences": int(len(calib_logits)),
                "ece_before": expected_calibration_error(softmax(valid_logits), valid.intents),
                "ece_after": expected_calibration_error(probs, valid.intents),
                "target_false_accept": target})
    return out, evidence


def _pieces(tok: "WordPieceTokenizer", recs: List[Dict[str, Any]]) -> List[List[int]]:
    """The word pieces of each record's text, as the engine's tokenizer makes them."""
    return [tok.encode(r["text"]).ids for r in recs]


def shifted(logits: np.ndarray, t: float, evidence: Optional["WordEvidence"],
            tok: "WordPieceTokenizer", recs: List[Dict[str, Any]]) -> np.ndarray:
    """Intent logits with the evidence's shift, as the engine applies it ("no intent"'s logit
    lowered by t x shift: the log-odds of a command moved by the shift)."""
    if evidence is None or not evidence.config.weight:
        return logits
    return np.stack([evidence.apply(row, ids, t)
                     for row, ids in zip(logits, _pieces(tok, recs))])


def encoder_for(ckpt: Checkpoint, labels: LabelSpace) -> Callable[[List[Dict[str, Any]]], Batch]:
    """Encode records with a checkpoint's own (possibly pruned) tokenizer."""
    from .tokenizer_train import fast_tokenizer, token_id

    fast = fast_tokenizer(ckpt.tokenizer_json)
    cls_id = token_id(fast, "[CLS]")
    max_len = ckpt.model.config.max_len
    return lambda recs: encode(recs, fast, labels, max_len, cls_id)


def fit_calibration(ckpt: Checkpoint, sets: Sets, target: float,
                    enc: Optional[Callable[[List[Dict[str, Any]]], Batch]] = None,
                    evidence: Optional["WordEvidence"] = None) -> Dict[str, float]:
    """Temperature and threshold of a student, fitted on the validation split and the
    calibration sentences (`enc`: the student's encoder, when already built); with word
    `evidence` (unweighted), its weight too, and the weighted evidence becomes the
    checkpoint's."""
    from ..tokenizer import WordPieceTokenizer
    from .distill import predict

    enc = enc or encoder_for(ckpt, sets.labels)
    valid = enc(sets.valid_recs)
    li, _ = predict(ckpt.model, valid.ids)
    ci, _ = predict(ckpt.model, enc(sets.calib_recs).ids)
    tok = WordPieceTokenizer.from_json(ckpt.tokenizer_json) if evidence is not None else None
    cal, weighted = calibration(li, valid, ci, target, evidence, tok, sets.valid_recs,
                                sets.calib_recs)
    if evidence is not None:
        ckpt.evidence = weighted
    return cal


def evaluate_student(ckpt: Checkpoint, sets: Sets, target: float) -> Dict[str, Any]:
    """A student's row: params, calibration (its own, or fitted now) and the held-out sets."""
    from ..tokenizer import WordPieceTokenizer
    from .distill import predict_all
    from .evaluate import score
    from .student import count_params

    enc = encoder_for(ckpt, sets.labels)
    cal = ckpt.meta.get("calibration") or fit_calibration(ckpt, sets, target, enc)
    out: Dict[str, Any] = {"params": count_params(ckpt.model), "calibration": cal}
    tok = (WordPieceTokenizer.from_json(ckpt.tokenizer_json) if ckpt.evidence is not None
           else None)
    for name, (_, recs) in sets.evals.items():
        b = enc(recs)
        li, lt, lf = predict_all(ckpt.model, b.ids)
        if tok is not None:  # as the engine answers: with the evidence's shift
            li = shifted(li, cal["temperature"], ckpt.evidence, tok, recs)
        out[name] = score(li, lt, b, recs, sets.labels, cal["temperature"], cal["threshold"],
                          home=sets.home, frame_logits=lf)
    return out


def evaluate_teacher(soft_of: Callable[[str], SoftLabels], sets: Sets, target: float,
                     n_params: int) -> Dict[str, Any]:
    """The teacher's row, from its soft labels of each set (on student tokens)."""
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
    cal, _ = calibration(vi, sets.valid, ci, target)
    out: Dict[str, Any] = {"params": n_params, "calibration": cal}
    for name, (b, recs) in sets.evals.items():
        li, lt, lf = logits(name, b)
        out[name] = score(li, lt, b, recs, sets.labels, cal["temperature"], cal["threshold"],
                          home=sets.home, frame_logits=lf)
    return out


def headline(res: Dict[str, Any]) -> Figures:
    """A model's row of the closing table as numbers (columns it has no value for left out)."""
    out: Figures = {}
    for col, path in COLUMNS:
        if col == "params":
            out[col] = res.get("params", 0)
        elif col == "ECE after T":
            out[col] = res["calibration"]["ece_after"]
        elif path is not None and res.get(path[0], {}).get(path[1]) is not None:
            out[col] = res[path[0]][path[1]]
    return out


def format_table(results: Dict[str, Dict[str, Any]]) -> str:
    """The closing table of a run, in markdown."""
    head = "| model | " + " | ".join(c for c, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, res in results.items():
        cells = []
        for col, path in COLUMNS:
            if col == "params":
                cells.append(f"{res.get('params', 0):,}")
            elif col == "ECE after T":
                cells.append(f"{res['calibration']['ece_after']:.3f}")
            else:
                v = res.get(path[0], {}).get(path[1]) if path else None
                cells.append("-" if v is None else f"{100 * v:.2f}%")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _value(v: object) -> str:
    if isinstance(v, bool) or isinstance(v, str):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    if isinstance(v, dict):
        return "(" + ", ".join(f"{k} {_value(x)}" for k, x in v.items()) + ")"
    return str(v)


def format_figures(figures: Figures) -> str:
    """One stage's figures on one line: `name value; name value`."""
    return "; ".join(f"{k} {_value(v)}" for k, v in figures.items())


def format_stage(name: str, stage: StageReport) -> str:
    """The log line of a finished stage."""
    how = "resumed" if stage.resumed else "ran"
    return f"{name} ({how}, {stage.seconds:.1f} s): {format_figures(stage.figures)}"


def format_stages(stages: Dict[str, StageReport]) -> str:
    """The stages of a run and their figures, in markdown."""
    lines = ["| stage | resumed | seconds | figures |", "|---|---|---|---|"]
    for name, st in stages.items():
        lines.append(f"| {name} | {'yes' if st.resumed else 'no'} | {st.seconds:.1f} | "
                     f"{format_figures(st.figures)} |")
    return "\n".join(lines)
