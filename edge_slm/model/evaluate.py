"""Task-level metrics: intent accuracy, slot F1, exact match, false accepts, ECE.

Works on corpus-format records (slot spans) and on dev-set-format records (`slots` a
{name: value} dict or null): for the latter, slot F1 compares (name, lower-cased text).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..home import Inventory
from ..runtime.metrics import UNSCORED, gold_pairs, record_names
from ..runtime.resolve import HomeNames, resolve_spans
from .calibrate import accept, expected_calibration_error, softmax
from .data import Batch, LabelSpace, decode_spans


def home_of(inventory: Optional[Inventory] = None) -> HomeNames:
    """The home the corpus was sampled in: its inventory's devices, areas and floors. (Each
    record adds the places it names itself: see `record_names`.)"""
    return HomeNames.from_inventory(inventory) if inventory is not None else HomeNames()


def _record_home(rec: Dict[str, Any], home: Optional[HomeNames]) -> Optional[HomeNames]:
    """`home` plus the places the record itself names (a device someone names is a device of
    their home): its slots' canonical values, or a dev record's entities and areas."""
    own_names = record_names(rec)
    if not any(own_names.values()):
        return home
    own = HomeNames.build(own_names["name"], own_names["area"], own_names["floor"])
    return own if home is None else home.union(own)


def score(intent_logits: np.ndarray, tag_logits: np.ndarray, batch: Batch,
          records: Sequence[Dict[str, Any]], labels: LabelSpace, temperature: float = 1.0,
          threshold: float = 0.0, home: Optional[HomeNames] = None,
          frame_logits: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Metrics of one model on one set (records aligned with batch rows).

    `slot_f1` scores the tagger's spans as decoded; `slot_f1_resolved` scores them after
    resolution against `home` (what the runtime engine answers), when a home is given;
    `frame_acc`, where the intent is right, the frame (fixed slots and context) chosen among
    the intent's own.
    """
    probs = softmax(intent_logits, temperature)
    pred = probs.argmax(-1)
    gold = batch.intents
    accepted, _ = accept(probs, threshold)
    final = np.where(accepted, pred, 0)
    is_cmd = gold != 0
    tag_pred = tag_logits.argmax(-1)
    counts = {"raw": [0, 0, 0], "resolved": [0, 0, 0]}
    exact = exact_n = 0
    for i, rec in enumerate(records):
        n = len(batch.offsets[i])
        spans = decode_spans(tag_pred[i, 1:1 + n].tolist(), batch.offsets[i], labels,
                             rec["text"])
        g = gold_pairs(rec)
        if g is None:  # an intent-only label: no slots to match
            continue
        exact_n += 1
        variants = {"raw": spans}
        rec_home = _record_home(rec, home)
        if rec_home:
            variants["resolved"] = resolve_spans(rec["text"], spans, rec_home, strict=True)
        for kind, found in variants.items():
            predicted = {(name, rec["text"][a:b].lower()) for name, a, b in found}
            if "gold_values" in rec:
                predicted = {p for p in predicted if p[0] not in UNSCORED}
            c = counts[kind]
            c[0] += len(predicted & g)
            c[1] += len(predicted - g)
            c[2] += len(g - predicted)
            if kind == ("resolved" if rec_home else "raw"):
                exact += int(pred[i] == gold[i] and predicted == g)
    out = {
        "n": float(len(records)),
        "intent_acc": float((pred == gold).mean()) if len(gold) else 0.0,
        "intent_acc_thresholded": float((final == gold).mean()) if len(gold) else 0.0,
        "slot_f1": _f1(*counts["raw"]),
        "exact_match": exact / max(1, exact_n),
        "ece": expected_calibration_error(probs, gold) if len(gold) else 0.0,
    }
    if home is not None or any(isinstance(r.get("home"), dict) and r["home"] for r in records):
        out["slot_f1_resolved"] = _f1(*counts["resolved"])
    if (~is_cmd).any():
        out["false_accept"] = float(accepted[~is_cmd].mean())
        out["n_oos"] = float((~is_cmd).sum())
    if is_cmd.any():
        out["command_acc"] = float((pred[is_cmd] == gold[is_cmd]).mean())
        out["command_recall_thresholded"] = float((final[is_cmd] == gold[is_cmd]).mean())
        # rejected ("no intent" after the threshold) although the best guess was right
        out["rejected_top_right"] = float(((final[is_cmd] != gold[is_cmd])
                                           & (pred[is_cmd] == gold[is_cmd])).mean())
        right = np.flatnonzero(is_cmd & (pred == gold))
        frames = batch.frames if batch.frames is not None else np.zeros(len(batch), np.int32)
        if frame_logits is not None and len(right) and "gold_values" not in records[0]:
            hits = [choose_frame(frame_logits[i], labels.intent_frames.get(
                labels.intents[gold[i]], [0])) == frames[i] for i in right]
            out["frame_acc"] = float(np.mean(hits))
    return out


def choose_frame(frame_logits: np.ndarray, allowed: Sequence[int]) -> int:
    """The best frame among those an intent takes."""
    allowed = list(allowed) or [0]
    return int(allowed[int(np.argmax(np.asarray(frame_logits)[allowed]))])


def _f1(tp: int, fp: int, fn: int) -> float:
    return float(2 * tp / max(1, 2 * tp + fp + fn))


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
