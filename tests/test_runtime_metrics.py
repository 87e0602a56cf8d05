"""Task-level metrics (runtime/metrics.py) with the shipped engine: what a user gets after the
threshold, and abstention's own loss beside it."""

from __future__ import annotations

import numpy as np
import pytest

from edge_slm.home import inventory_from_dict
from edge_slm.runtime.engine import IntentEngine
from edge_slm.runtime.metrics import evaluate, record_home

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


def test_a_record_is_answered_in_the_home_it_says(engine):
    """A dev record's `entities` are the user's own home for that record: a command naming
    one of its devices is evidence of a command (answer.py), where the same words said
    without a home are not sure enough."""
    said = {"text": "turn on zorblax", "intent": "HassTurnOn", "slots": {"name": "zorblax"}}
    ids, _ = engine.tokens(said["text"])  # as the engine answers: with its word evidence
    li = engine.intent_logits(ids, engine.model.run_tokens(ids))[0] / engine.temperature
    p = np.exp(li - li.max())
    p_none = float(p[0] / p.sum())
    assert 0.0 < p_none < 0.2
    # doubt twice what the threshold allows: rejected, unless the name is the user's device
    # (a name the vocabulary does not hold whole: below answer.NAMED_ENTITY_MAX_P_NONE)
    engine.threshold = 1.0 - p_none / 2
    homeless = evaluate(engine, [dict(said, entities=None)])
    assert homeless["command_acc"] == 0.0
    in_home = evaluate(engine, [dict(said, entities={"entities": [
        {"name": "zorblax", "domain": "switch"}]})])
    assert in_home["command_acc"] == 1.0 and in_home["slot_f1"] == 1.0
    assert not engine.home.user  # the engine's own home is back: the shipped one
    mine = inventory_from_dict({"entities": [{"name": "Den Lamp", "domain": "light"}]})
    engine.set_home(mine)
    evaluate(engine, [dict(said, entities={"entities": [
        {"name": "zorblax", "domain": "switch"}]}), dict(said, entities=None)])
    assert engine.home.user and engine.home.inventory is mine


def test_a_home_that_cannot_be_loaded_leaves_the_record_scored_by_names(engine):
    bad = {"entities": [{"name": "zorblax", "domain": "teleporter"}], "areas": ["den"]}
    assert record_home({"home": bad}) is None
    assert record_home({"home": {}}) is None and record_home({}) is None
    home = record_home({"home": {"entities": [{"name": "zorblax", "domain": "switch"}],
                                 "areas": ["den"], "floors": ["upstairs"]}})
    assert home is not None and [e.domain for e in home.entities] == ["switch"]
    assert [a.name for a in home.areas] == ["den"] and [f.name for f in home.floors] == ["upstairs"]
    m = evaluate(engine, [{"text": "turn on zorblax", "intent": "HassTurnOn", "slots": None,
                           "entities": bad}])
    assert m["n"] == 1.0


def test_exact_match_counts_only_records_whose_slots_are_labelled(engine):
    labelled = {"text": "turn off the kitchen lights", "intent": "HassTurnOff",
                "slots": {"area": "kitchen", "domain": "light"}}
    wrong = dict(labelled, slots={"area": "garage", "domain": "light"})
    m = evaluate(engine, [labelled] + RECORDS)  # RECORDS: intent-only labels (slots None)
    assert m["exact_n"] == 1.0 and m["exact_match"] == 1.0
    m = evaluate(engine, [labelled, wrong] + RECORDS)
    assert m["exact_n"] == 2.0 and m["exact_match"] == 0.5
