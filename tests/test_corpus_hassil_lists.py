"""The hassil slot lists of a home (edge_slm/corpus/hassil_lists.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("hassil")

from hassil.intents import Intents  # noqa: E402
from hassil.recognize import recognize_best  # noqa: E402

from edge_slm.corpus.hassil_lists import slot_lists, unknown_names  # noqa: E402
from edge_slm.corpus.templates import package_intents  # noqa: E402
from edge_slm.home import inventory_from_dict  # noqa: E402

HOME = inventory_from_dict({
    "floors": [{"name": "upstairs", "aliases": ["first floor"]}],
    "areas": [{"name": "Kitchen", "aliases": ["cooking room"], "floor": "upstairs"}],
    "entities": [
        {"name": "Ceiling Light", "domain": "light", "area": "Kitchen"},
        {"name": "Back Door", "domain": "binary_sensor", "device_class": "door",
         "aliases": ["garden door"]},
    ]})


@pytest.fixture(scope="module")
def intents():
    return Intents.from_dict(package_intents("en"))


def _values(lst):
    return {(v.text_in.text, v.value_out) for v in lst.values}


def test_lists_hold_names_aliases_and_context():
    lists = slot_lists(HOME)
    assert ("cooking room", "Kitchen") in _values(lists["area"])
    assert ("first floor", "upstairs") in _values(lists["floor"])
    door = [v for v in lists["name"].values if v.text_in.text == "garden door"]
    assert [v.value_out for v in door] == ["Back Door"]
    assert door[0].context == {"domain": "binary_sensor", "device_class": "door"}


def test_hassil_matches_a_question_on_a_named_device(intents):
    result = recognize_best("is the back door open", intents, slot_lists=slot_lists(HOME),
                            language="en")
    assert result is not None and result.intent.name == "HassGetState"
    assert result.entities["name"].value == "Back Door"


def test_extra_places_and_unknown_names(intents):
    recs = [{"slots": [{"name": "name", "value": "Lava Lamp"}]},
            {"slots": [{"name": "name", "value": "Ceiling Light"}]}]
    assert unknown_names(HOME, recs) == ["Lava Lamp"]
    assert recognize_best("turn on the lava lamp", intents, slot_lists=slot_lists(HOME),
                          language="en") is None
    lists = slot_lists(HOME, {"name": unknown_names(HOME, recs), "area": ["Attic"]})
    result = recognize_best("turn on the lava lamp", intents, slot_lists=lists, language="en")
    assert result is not None and result.intent.name == "HassTurnOn"
    assert ("Attic", "Attic") in _values(lists["area"])
