"""Task-level metrics: intent accuracy, slot F1, exact match, false accepts, ECE.

Works on corpus-format records (slot spans) and on dev-set-format records (`slots` a
{name: value} dict or null): for the latter, slot F1 compares (name, lower-cased text).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from .calibrate import accept, expected_calibration_error, softmax
from .data import Batch, LabelSpace, decode_spans


def to_corpus_format(rec: Dict[str, Any]) -> Dict[str, Any]:
    """A dev-set record as a corpus-like one (slot values kept aside for text matching)."""
    if isinstance(rec.get("slots"), list):
        return rec
    return {"text": rec["text"], "intent": rec.get("intent"), "slots": [],
            "gold_values": rec.get("slots")}


def _gold(rec: Dict[str, Any]) -> Optional[Set[Tuple[str, str]]]:
    if isinstance(rec.get("gold_values"), dict):
        return {(k, str(v).lower().strip()) for k, v in rec["gold_values"].items()
                if k not in ("domain", "device_class", "volume_step")}
    if "gold_values" in rec:
        return None  # intent-only label
    return {(s["name"], s["text"].lower()) for s in rec["slots"]}


def score(intent_logits: np.ndarray, tag_logits: np.ndarray, batch: Batch,
          records: Sequence[Dict[str, Any]], labels: LabelSpace, temperature: float = 1.0,
          threshold: float = 0.0) -> Dict[str, float]:
    """Metrics of one model on one set (records aligned with batch rows)."""
    probs = softmax(intent_logits, temperature)
    pred = probs.argmax(-1)
    gold = batch.intents
    accepted, _ = accept(probs, threshold)
    final = np.where(accepted, pred, 0)
    is_cmd = gold != 0
    tag_pred = tag_logits.argmax(-1)
    tp = fp = fn = 0
    exact = 0
    for i, rec in enumerate(records):
        n = len(batch.offsets[i])
        spans = decode_spans(tag_pred[i, 1:1 + n].tolist(), batch.offsets[i], labels,
                             rec["text"])
        predicted = {(name, rec["text"][a:b].lower()) for name, a, b in spans}
        g = _gold(rec)
        if g is None:
            continue
        if "gold_values" in rec:
            predicted = {p for p in predicted
                         if p[0] not in ("domain", "device_class", "volume_step")}
        tp += len(predicted & g)
        fp += len(predicted - g)
        fn += len(g - predicted)
        exact += int(pred[i] == gold[i] and predicted == g)
    n_rows = max(1, len(records))
    out = {
        "n": float(len(records)),
        "intent_acc": float((pred == gold).mean()) if len(gold) else 0.0,
        "intent_acc_thresholded": float((final == gold).mean()) if len(gold) else 0.0,
        "slot_f1": float(2 * tp / max(1, 2 * tp + fp + fn)),
        "exact_match": exact / n_rows,
        "ece": expected_calibration_error(probs, gold) if len(gold) else 0.0,
    }
    if (~is_cmd).any():
        out["false_accept"] = float(accepted[~is_cmd].mean())
        out["n_oos"] = float((~is_cmd).sum())
    if is_cmd.any():
        out["command_acc"] = float((pred[is_cmd] == gold[is_cmd]).mean())
        out["command_recall_thresholded"] = float((final[is_cmd] == gold[is_cmd]).mean())
    return out


def confusions(intent_logits: np.ndarray, batch: Batch, records: Sequence[Dict[str, Any]],
               labels: LabelSpace, limit: int = 30) -> List[Tuple[str, str, str]]:
    """(gold, predicted, text) of errors, most frequent confusions first."""
    pred = intent_logits.argmax(-1)
    errs = [(labels.intents[g], labels.intents[p], r["text"])
            for g, p, r in zip(batch.intents, pred, records) if g != p]
    counts: Dict[Tuple[str, str], int] = {}
    for g, p, _ in errs:
        counts[(g, p)] = counts.get((g, p), 0) + 1
    errs.sort(key=lambda e: -counts[(e[0], e[1])])
    return errs[:limit]
