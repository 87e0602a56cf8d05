"""The engine on a bundle made by the project's own pipeline (small profile)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_slm.runtime.engine import InputError, IntentEngine, ParseResult


@pytest.fixture(scope="module")
def engine(small_bundles):
    return IntentEngine.load(small_bundles[0] / "en-int8.slm")


def test_parse_result_shape(engine):
    res = engine.parse("turn off the kitchen lights")
    assert isinstance(res, ParseResult)
    d = res.to_dict()
    assert set(d) == {"text", "intent", "confidence", "slots", "alternatives", "commands"}
    assert 0.0 <= d["confidence"] <= 1.0
    assert len(d["alternatives"]) <= 3
    for alt in d["alternatives"]:
        assert alt["confidence"] <= d["confidence"] + 1e-6
    for s in d["slots"]:
        assert set(s) == {"name", "value", "raw", "start", "end", "confidence"}
        if s["start"] is None:  # implied: a fixed slot or the satellite's area
            assert s["raw"] == "" and s["end"] is None
        else:
            assert res.text[s["start"]:s["end"]] == s["raw"]
    json.dumps(d)


def test_engine_agrees_with_the_keras_model(small_run, engine):
    """Same tokenizer ids and (to quantization error) the same decisions as training."""
    from edge_slm.model.checkpoint import load_checkpoint
    from edge_slm.model.data import read_jsonl
    from edge_slm.model.pipeline import _encoder_for

    ckpt = load_checkpoint(small_run[0] / "model")
    recs = [r for r in read_jsonl(small_run[0] / "corpus.jsonl") if r["split"] == "heldout"]
    recs = recs[:200]
    batch = _encoder_for(ckpt, ckpt.labels)(recs)
    keras_top = np.asarray(ckpt.model(batch.ids)[0]).argmax(-1)
    same_ids = 0
    for row, rec in zip(batch.ids, recs):
        ids, _ = engine.encode(rec["text"])
        same_ids += bool(np.array_equal(ids, row))
    assert same_ids == len(recs)
    tops = np.asarray([engine.model.run(engine.encode(r["text"])[0])[0].argmax() for r in recs])
    assert (tops == keras_top).mean() > 0.95


def test_below_threshold_is_not_recognized(engine):
    engine_threshold = engine.threshold
    engine.threshold = 1.01  # nothing is ever sure enough
    try:
        res = engine.parse("turn off the kitchen lights")
        assert res.intent is None and res.slots == []
        assert res.alternatives and res.alternatives[0].intent == res.top_intent
    finally:
        engine.threshold = engine_threshold


@pytest.mark.parametrize("bad,message", [
    (None, "must be a string"), (42, "must be a string"), ("", "empty"), ("   ", "empty"),
    ("x" * 5000, "too long"),
])
def test_bad_input_is_an_input_error(engine, bad, message):
    with pytest.raises(InputError, match=message):
        engine.parse(bad)


def test_parse_batch_keeps_order_and_reports_bad_items(engine):
    texts = ["turn on the lamp", "", "set the bedroom to 20 degrees", 7]
    out = engine.parse_batch(texts)
    assert len(out) == 4
    assert isinstance(out[0], ParseResult) and out[0].text == texts[0]
    assert isinstance(out[1], InputError) and isinstance(out[3], InputError)
    assert out[2].text == texts[2]


def test_names_resolve_to_the_homes_spelling(engine):
    """A name said in another case or number comes back in the home's own spelling; one the
    home lacks is dropped when the home is the user's (or given for the query)."""
    from edge_slm.home import inventory_from_dict

    home = inventory_from_dict({
        "areas": [{"name": "Boat House"}],
        "entities": [{"name": "Aquarium Pump", "domain": "switch", "aliases": ["fish pump"]}]})
    engine.set_home(home)
    try:
        assert engine.strict
        for text in ("turn on the AQUARIUM PUMP", "switch off the aquarium pumps",
                     "turn on the fish pump in the boat house"):
            res = engine.parse(text)
            for s in res.slots:
                if s.name == "name":
                    assert s.value == "Aquarium Pump", res
                if s.name == "area":
                    assert s.value == "Boat House", res
        queried = engine.parse("turn on the kitchen lights", names={"area": ["Kitchen"]})
        assert all(s.value in ("Kitchen", "light") for s in queried.slots), queried
    finally:
        engine.set_home(None)
    assert not engine.strict


def test_the_users_home_replaces_the_shipped_one():
    """The shipped model: the example home calls the living room "lounge" and the ground
    floor "first floor"; a user's home that has a "First Floor" wins, and a place only the
    example home has is never answered once the user's home is given."""
    from edge_slm.home import inventory_from_dict

    engine = IntentEngine.load()
    example = engine.parse("turn off the lights in the lounge").slot_values()
    assert example.get("area") == "living room"
    assert engine.parse("turn off the lights on the first floor").slot_values().get(
        "floor") == "ground floor"
    engine.set_home(inventory_from_dict({"floors": [{"name": "First Floor"}],
                                         "areas": [{"name": "Office", "floor": "First Floor"}],
                                         "entities": []}))
    assert "area" not in engine.parse("turn off the lights in the lounge").slot_values()
    assert engine.parse("turn off the lights on the first floor").slot_values().get(
        "floor") == "First Floor"
