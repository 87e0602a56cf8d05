"""Task-level metrics (runtime/metrics.py) with the shipped engine: what a user gets after the
threshold, and abstention's own loss beside it."""

from __future__ import annotations

import pytest

from edge_slm.runtime.engine import IntentEngine
from edge_slm.runtime.metrics import evaluate

RECORDS = [{"text": "turn off the kitchen lights", "intent": "HassTurnOff", "slots": None},
           {"text": "what time is it", "intent": "HassGetCurrentTime", "slots": None},
           {"text": "who wrote hamlet", "intent": None, "slots": None}]


@pytest.fixture
def engine():
    return IntentEngine.load()


def test_answered_commands_are_not_counted_as_rejected(engine):
    m = evaluate(engine, RECORDS)
    assert m["intent_acc"] == 1.0 and m["top1_acc"] == 1.0
    assert m["rejected_top_right"] == 0.0 and m["false_accept"] == 0.0


def test_commands_turned_away_by_the_threshold_are_abstentions(engine):
    engine.threshold = 1.01  # nothing is sure enough: every right guess is rejected
    m = evaluate(engine, RECORDS)
    # ... except a fixed sentence of the templates ("what time is it"), when the model agrees
    assert m["command_acc"] == 0.5
    engine.values.fixed_sentences = {}
    m = evaluate(engine, RECORDS)
    assert m["top1_acc"] == 1.0
    assert m["command_acc"] == 0.0 and m["rejected_top_right"] == 1.0
    # the out-of-scope sentence is answered right: rejected
    assert m["intent_acc"] == pytest.approx(1 / 3)
