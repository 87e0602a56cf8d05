"""Word evidence for a bundle already written (convert/evidence.py), on the small profile's
run and bundles."""

from __future__ import annotations

import json
import shutil

import pytest

from edge_slm.errors import ConfigError

pytest.importorskip("torch")

from edge_slm.convert.build import remeasure  # noqa: E402
from edge_slm.convert.evidence import add_evidence  # noqa: E402
from edge_slm.model.data import read_jsonl  # noqa: E402
from edge_slm.model.evidence import EvidenceTrainConfig  # noqa: E402
from edge_slm.runtime.answer import intent_probs  # noqa: E402
from edge_slm.runtime.engine import IntentEngine  # noqa: E402


def _calib_accepted(engine: IntentEngine, texts) -> int:
    """Calibration sentences the engine's model and evidence put above its threshold, each
    decided as the answer step decides it."""
    n = 0
    for t in texts:
        ids, _ = engine.tokens(t)
        ip = intent_probs(engine.intent_logits(ids, engine.model.run_tokens(ids))[0],
                          engine.temperature)
        n += int(ip.argmax()) != 0 and 1.0 - float(ip[0]) >= engine.threshold
    return n


def test_added_evidence_keeps_the_calibration_false_accepts(small_run, small_bundles, tmp_path):
    run = small_run[0]
    path = tmp_path / "en-int8.slm"
    shutil.copy(small_bundles[0] / "en-int8.slm", path)
    old = IntentEngine.load(path)
    calib = [r["text"] for r in read_jsonl(run / "calibration.jsonl")
             if r["split"] == "calib" and not r["intent"]]
    assert calib
    figures = add_evidence(path, run, EvidenceTrainConfig(sentences=3000), log=lambda m: None)
    assert figures["threshold_before"] == old.threshold
    metrics, _ = remeasure(path, run, None)  # the gate again, the manifest rewritten
    assert metrics["oos"]["n"] > 0
    new = IntentEngine.load(path)  # golden cases and members check out
    assert new.evidence is not None
    assert new.evidence.config.weight == pytest.approx(figures["evidence_weight"])
    assert new.threshold == pytest.approx(figures["threshold"])
    config = json.loads(new.bundle.members["config.json"])
    assert config["calibration"]["evidence_weight"] == pytest.approx(figures["evidence_weight"])
    # no more of the calibration sentences accepted than the bundle let through before
    before = figures["calibration_false_accepts"]
    assert before == _calib_accepted(old, calib)
    assert _calib_accepted(new, calib) <= before


def test_evidence_needs_the_run_s_corpus(small_bundles, tmp_path):
    path = tmp_path / "b.slm"
    shutil.copy(small_bundles[0] / "en-int8.slm", path)
    with pytest.raises(ConfigError, match="corpus"):
        add_evidence(path, tmp_path, EvidenceTrainConfig(), log=lambda m: None)
