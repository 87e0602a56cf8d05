"""Word evidence for a bundle already written (its model's float checkpoint gone): fitted on
the training run's corpus, weighed against the bundle's own quantized model, the threshold
set anew so that the calibration sentences' false accepts stay what they were.

    RUN/corpus.jsonl, RUN/calibration.jsonl (training splits) ─► WordEvidence
    validation split through the bundle's model ─► its weight (model/evidence.stack_weight)
    calibration split through the bundle's model, with the evidence ─► the lowest threshold
    that accepts no more of those out-of-scope sentences than the old one did
                                        ─► config.json, evidence.npz (then re-measure)

A run's own model gets its evidence at calibration (model/stages.py); this is for the
bundles shipped before evidence existed, and `scripts/remeasure.py --add-evidence` runs it.
Keeping the old false-accept count, rather than fitting to the run's target, matters: the
shipped model may have learned from today's calibration sentences (the corpus has changed
since it trained), so a target there would not mean what it says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np

from ..bundle import read_bundle
from ..errors import ConfigError
from ..model.calibrate import accept, choose_threshold, command_log_odds
from ..model.data import read_jsonl
from ..model.evidence import (EvidenceTrainConfig, fit_evidence, stack_weight,
                              training_sentences, with_weight)
from ..runtime.answer import intent_probs
from ..runtime.evidence import MEMBER


def _answered_probs(engine: Any, texts: List[str]) -> np.ndarray:
    """The intent probabilities the engine answers each text with (its word evidence, if
    any, included), computed as the answer step computes them: a threshold chosen on them
    accepts there exactly what it accepted here."""
    rows = []
    for t in texts:
        ids = engine.tokens(t)[0]
        li = engine.intent_logits(ids, engine.model.run_tokens(ids))[0]
        rows.append(intent_probs(np.asarray(li), engine.temperature))
    return np.stack(rows).astype(np.float64)


def add_evidence(path: Path, run: Path, config: EvidenceTrainConfig,
                 log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Give the bundle at `path` word evidence and the threshold that goes with it, in place
    (members config.json and evidence.npz; the manifest is rewritten by the re-measure that
    must follow). A bundle that has evidence already gets it fitted anew, keeping the false
    accepts it answers with now. Returns the new calibration figures."""
    from ..runtime.engine import IntentEngine
    from .build import _bundle_bytes

    corpus, pool = Path(run) / "corpus.jsonl", Path(run) / "calibration.jsonl"
    for p in (corpus, pool):
        if not p.exists():
            raise ConfigError(f"{p}: missing; word evidence is fitted on a training run's "
                              "corpus (edge-slm train, stopped after its corpus stage)")
    bundle = read_bundle(path)
    engine = IntentEngine(bundle, check_golden=False)
    records = list(read_jsonl(corpus))
    valid = [r for r in records if r["split"] == "valid"]
    pooled = list(read_jsonl(pool))
    calib = [r["text"] for r in pooled if r["split"] == "calib" and not r["intent"]]
    commands, oos = training_sentences((r for r in records if r["split"] == "train"), pooled)
    log(f"evidence: fitting on {len(commands)} commands and {len(oos)} out-of-scope sentences")
    evidence = fit_evidence(engine.tokenizer, commands, oos, config,
                            max_pieces=engine.max_len - 1)
    vl = np.stack([np.asarray(engine.model.run_tokens(engine.tokens(r["text"])[0])[0],
                              np.float64) for r in valid])
    own = np.array([evidence.log_odds(engine.tokenizer.encode(r["text"]).ids) for r in valid])
    weight = stack_weight(command_log_odds(vl, engine.temperature), own,
                          np.array([bool(r["intent"]) for r in valid]))
    evidence = with_weight(evidence, weight)
    before = int(accept(_answered_probs(engine, calib), engine.threshold)[0].sum())
    engine.evidence = evidence  # this engine is ours alone: it answers with the new one
    # as many false accepts as before: (before + 0.5) / n, floored, is `before`
    threshold = choose_threshold(_answered_probs(engine, calib), (before + 0.5) / len(calib))
    config_json = json.loads(bundle.members["config.json"])
    config_json["calibration"] = dict(config_json["calibration"], threshold=threshold,
                                      evidence_weight=weight)
    members = {k: v for k, v in bundle.members.items() if k in bundle.manifest["members"]}
    members["config.json"] = json.dumps(config_json, indent=1).encode("utf-8")
    members[MEMBER] = evidence.to_bytes()
    manifest = dict(bundle.manifest)
    Path(path).write_bytes(_bundle_bytes(members, manifest))
    figures = {"evidence_weight": weight, "threshold_before": engine.threshold,
               "threshold": threshold, "calibration_false_accepts": before,
               "calibration_sentences": len(calib)}
    log(f"evidence: weight {weight:.3f}; threshold {engine.threshold:.6f} -> {threshold:.6f} "
        f"({before} of {len(calib)} calibration sentences accepted, as before)")
    return figures
