"""Value normalization: numbers in digits and words, list values, names of the home."""

from __future__ import annotations

import pytest

from edge_slm.runtime.values import HomeIndex, ValueTables

RECORDS = [
    {"slots": [{"name": "brightness", "text": "half", "value": 50}]},
    {"slots": [{"name": "brightness", "text": "Half", "value": 50}]},
    {"slots": [{"name": "brightness", "text": "42", "value": 42}]},
    {"slots": [{"name": "state", "text": "shut", "value": "closed"}]},
    {"slots": [{"name": "state", "text": "shut", "value": "closed"}]},
    {"slots": [{"name": "volume_step", "text": "turn down", "value": "down"}]},
    {"slots": [{"name": "volume_step", "text": "turn down", "value": "down"}]},
    {"slots": [{"name": "volume_step", "text": "10", "value": "-10"}]},
    {"slots": [{"name": "volume_step", "text": "10", "value": "10"}]},
    {"slots": [{"name": "volume_step", "text": "20", "value": "20"}]},
    {"slots": [{"name": "temperature", "text": "warm white", "value": "2700"}]},
    {"slots": [{"name": "temperature", "text": "warm white", "value": "2700"}]},
    {"slots": [{"name": "temperature", "text": "21.5", "value": "21.5"}]},
    {"slots": [{"name": "color", "text": "red", "value": "red"}]},
]


@pytest.fixture(scope="module")
def tables():
    return ValueTables.from_dict(ValueTables.from_records(RECORDS).to_dict())


@pytest.mark.parametrize("text,expected", [
    ("21", 21), ("21.5", 21.5), ("21,5", 21.5), ("twenty one", 21), ("twenty-one", 21),
    ("seventy five", 75), ("a hundred", 100), ("one hundred and five", 105),
    ("fifty percent", 50), ("50%", 50), ("20°", 20), ("20 degrees", 20),
    ("twenty one point five", 21.5), ("two thousand", 2000), ("an", 1),
    ("kitchen", None), ("", None),
])
def test_numbers(tables, text, expected):
    assert tables.number(text) == expected


def test_learned_tables_and_numeric_slots(tables):
    assert "brightness" in tables.numeric and "temperature" in tables.numeric
    assert "color" not in tables.numeric and "state" not in tables.numeric
    assert tables.value("brightness", "Half") == 50
    assert tables.value("brightness", "seventy") == 70
    assert tables.value("state", "shut") == "closed"
    assert tables.value("temperature", "warm white") == 2700
    assert tables.value("temperature", "nineteen degrees") == 19
    assert tables.value("color", "Red ") == "Red"  # no table entry: the words as said


def test_volume_steps_take_their_sign_from_the_sentence(tables):
    assert tables.value("volume_step", "10", "turn down the volume by 10") == -10
    assert tables.value("volume_step", "10", "turn up the volume by 10") == 10
    assert tables.value("volume_step", "turn down", "turn down the tv") == "down"


def test_home_index_spelling_plurals_aliases_near_misses():
    home = HomeIndex({"name": [["Kitchen Lights", "kitchen lamp"], "Garage Door"],
                      "area": ["Living Room"]})
    assert home.canonical("name", "kitchen lights") == "Kitchen Lights"
    assert home.canonical("name", "the kitchen light") == "Kitchen Lights"
    assert home.canonical("name", "kitchen lamps") == "Kitchen Lights"
    assert home.canonical("name", "garage dor") == "Garage Door"
    assert home.canonical("area", "living rooms") == "Living Room"
    assert home.canonical("name", "bathroom fan") is None
    assert home.canonical("floor", "upstairs") is None
