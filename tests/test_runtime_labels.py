"""labels.json: intents, frames (fixed slots and context) and tags; format 1 still reads."""

from __future__ import annotations

import pytest

from edge_slm.runtime.labels import EMPTY_FRAME, Frame, Labels, frame_of


def test_frame_of_a_record_leaves_out_what_a_span_says():
    rec = {"intent": "HassTurnOn", "fixed_slots": {"domain": "cover", "device_class": "garage"},
           "slots": [{"name": "device_class", "value": "garage"}], "context": {}}
    assert frame_of(rec) == Frame.make({"domain": "cover"})
    ctx = {"intent": "HassTurnOn", "fixed_slots": {"domain": "light"}, "slots": [],
           "context": {"area": "kitchen"}}
    assert frame_of(ctx) == Frame.make({"domain": "light"}, True)
    said = dict(ctx, slots=[{"name": "area", "value": "den"}])
    assert frame_of(said) == Frame.make({"domain": "light"})
    assert frame_of({"intent": None, "fixed_slots": {"x": 1}}) == EMPTY_FRAME


def test_labels_round_trip_and_format_1():
    frames = [Frame(), Frame.make({"domain": "light"}, True)]
    labels = Labels([None, "HassTurnOn"], ["O"], frames, {"HassTurnOn": [0, 1]})
    data = {"intents": ["<none>", "HassTurnOn"], "tags": ["O"],
            "frames": [f.to_dict() for f in frames], "intent_frames": {"HassTurnOn": [0, 1]}}
    again = Labels.from_json(data)
    assert again.frames == labels.frames and again.frames_of("HassTurnOn") == [0, 1]
    old = Labels.from_json({"intents": ["<none>", "HassTurnOn"], "tags": ["O"]})
    assert old.frames == [EMPTY_FRAME] and old.frames_of("HassTurnOn") == [0]


@pytest.mark.parametrize("data", [
    {"intents": "x", "tags": []},
    {"intents": ["<none>"], "tags": ["O"], "frames": [{"fixed": {"domain": "light"}}]},
    {"intents": ["<none>"], "tags": ["O"], "frames": [{}], "intent_frames": {"X": [3]}},
    {"intents": ["<none>"], "tags": ["O"], "frames": [{"fixed": 3}]},
])
def test_malformed_labels_are_refused(data):
    with pytest.raises(ValueError):
        Labels.from_json(data)
