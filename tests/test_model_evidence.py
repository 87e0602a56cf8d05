"""Training the word evidence and weighing it against the model (model/evidence.py), and the
calibration that fits the threshold on the two together (model/report.calibration)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from edge_slm.bundle import read_bundle
from edge_slm.runtime.engine import default_bundle_path
from edge_slm.tokenizer import WordPieceTokenizer

torch = pytest.importorskip("torch")

from edge_slm.model.evidence import (MAX_WEIGHT, EvidenceTrainConfig,  # noqa: E402
                                     fit_evidence, stack_weight, with_weight)


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer.from_dict(read_bundle(default_bundle_path()).json("tokenizer.json"))


DEVICES = ["lights", "fan", "heater", "tv", "blinds", "garage door", "vacuum"]
PLACES = ["kitchen", "bedroom", "office", "garage", "hallway"]
CHAT = ["tell me a joke about cats", "who wrote the odyssey", "how tall is mount everest",
        "i had a long day at work", "what is the capital of france", "do you like pizza",
        "my sister is visiting next week", "how do i bake bread", "sing me a song",
        "what does the fox say", "recommend a good book", "why is the sky blue"]


def _commands(n, rng):
    verbs = ["turn on the", "switch off the", "is the", "open the", "close the"]
    return [f"{rng.choice(verbs)} {rng.choice(PLACES)} {rng.choice(DEVICES)}" for _ in range(n)]


def _chat(n, rng):
    return [rng.choice(CHAT) + rng.choice(["", " please", " today", " now"]) for _ in range(n)]


def test_the_evidence_learns_what_a_command_says(tok):
    rng = random.Random(0)
    ev = fit_evidence(tok, _commands(400, rng), _chat(400, rng),
                      EvidenceTrainConfig(buckets=1024, sentences=400))
    assert ev.config.weight == 0.0  # weighed later, against a model
    assert ev.config.vocab_size == tok.vocab_size
    # unseen combinations of seen words
    command = ev.log_odds(tok.encode("close the office fan").ids)
    chat = ev.log_odds(tok.encode("who wrote a good book today").ids)
    assert command > 2.0 and chat < -2.0
    assert with_weight(ev, 0.5).shift(tok.encode("close the office fan").ids) == \
        pytest.approx(0.5 * command)


def test_fitting_needs_both_kinds_of_sentence(tok):
    with pytest.raises(ValueError, match="out-of-scope"):
        fit_evidence(tok, ["turn on the lights"], [], EvidenceTrainConfig())


def test_the_weight_is_what_the_evidence_adds_beside_the_model():
    rng = np.random.default_rng(0)
    y = rng.random(4000) < 0.5
    truth = np.where(y, 2.0, -2.0)
    model = truth + rng.normal(0, 2.0, 4000)
    informative = truth + rng.normal(0, 2.0, 4000)  # as good as the model, independent
    noise = rng.normal(0, 2.0, 4000)
    w = stack_weight(model, informative, y)
    assert 0.6 < w < 1.6  # worth about as much as the model
    assert stack_weight(model, noise, y) < 0.1  # adds nothing
    assert stack_weight(model, -informative, y) == 0.0  # against the facts: never counted
    # far better than a weak model: a second opinion still, worth the model's own at most
    weak = truth + rng.normal(0, 20.0, 4000)
    assert stack_weight(weak, informative, y) == MAX_WEIGHT


def test_calibration_fits_the_threshold_on_model_and_evidence_together(tok):
    from edge_slm.model.calibrate import choose_threshold, softmax
    from edge_slm.model.data import Batch
    from edge_slm.model.report import calibration, shifted

    rng = random.Random(1)
    ev = fit_evidence(tok, _commands(300, rng), _chat(300, rng),
                      EvidenceTrainConfig(buckets=512, sentences=300))
    valid_texts = _commands(100, rng) + _chat(100, rng)
    calib_texts = _chat(200, rng)
    nr = np.random.default_rng(2)
    intents = np.array([1 + i % 3 for i in range(100)] + [0] * 100)
    valid_logits = nr.normal(0, 1, (200, 4)).astype(np.float32)
    valid_logits[np.arange(200), intents] += 3.0
    calib_logits = nr.normal(0, 1, (200, 4)).astype(np.float32)
    valid = Batch(ids=np.zeros((200, 4), np.int32), intents=intents,
                  tags=np.zeros((200, 4), np.int32), offsets=[[] for _ in range(200)])
    recs = [{"text": t} for t in valid_texts]
    crecs = [{"text": t} for t in calib_texts]
    cal, weighted = calibration(valid_logits, valid, calib_logits, 0.05, ev, tok, recs, crecs)
    assert weighted is not None and weighted.config.weight == cal["evidence_weight"] > 0
    t = cal["temperature"]
    want = choose_threshold(softmax(shifted(calib_logits, t, weighted, tok, crecs), t), 0.05)
    assert cal["threshold"] == want
    plain, none = calibration(valid_logits, valid, calib_logits, 0.05)
    assert none is None and "evidence_weight" not in plain
    assert plain["threshold"] == choose_threshold(softmax(calib_logits, plain["temperature"]),
                                                  0.05)
    # chat the evidence knows: its shift lowers the command odds, so the threshold on the
    # combination admits no more calibration sentences than the model alone
    assert cal["threshold"] != plain["threshold"]
