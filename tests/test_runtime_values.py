"""Value normalization: numbers in digits and words, list values, names of the home."""

from __future__ import annotations

import pytest

from edge_slm.runtime.values import HomeIndex, ValueTables, sentence_key

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


def _rec(text, intent, slots, fixed=None, name_domain=None):
    out = []
    for name, said, value, *lst in slots:
        a = text.index(said)
        out.append({"name": name, "text": said, "value": value, "start": a,
                    "end": a + len(said), **({"list": lst[0]} if lst else {})})
    return {"text": text, "intent": intent, "slots": out, "fixed_slots": fixed or {},
            "name_domain": name_domain}


LEARN = (
    [_rec("is the garage door open", "HassGetState", [("state", "open", "open")],
          {"domain": "cover"})] * 3
    + [_rec("is the skylight open", "HassGetState", [("state", "open", "on")],
            {"domain": "binary_sensor"})] * 4
    + [_rec(f"volume down by {w}", "HassSetVolumeRelative", [("volume_step", w, -n)])
       for w, n in (("fifteen", 15), ("20", 20), ("fifteen", 15), ("30", 30))]
    + [_rec(f"volume up by {w}", "HassSetVolumeRelative", [("volume_step", w, n)])
       for w, n in (("fifteen", 15), ("20", 20), ("40", 40))]
    + [_rec("start rover", "HassVacuumStart", [("name", "rover", "rover")],
            name_domain="vacuum")] * 2
    + [_rec("timer named tea", "HassStartTimer", [("name", "tea", "tea", "timer_name")])] * 2
    + [_rec("open the garage door", "HassTurnOn", [("device_class", "garage door", "garage")],
            {"domain": "cover"})] * 2
)


def test_learned_domain_vocabularies_and_intent_tables():
    t = ValueTables.from_dict(ValueTables.from_records(LEARN).to_dict())
    assert t.value("state", "open", "", "cover") == "open"
    assert t.value("state", "open", "", "binary_sensor") == "on"
    assert t.value("state", "open") == "on"  # no domain known: the majority
    assert t.name_domains["HassVacuumStart"] == ["vacuum"]
    assert t.free_slots == {"HassStartTimer": ["name"]}
    assert "name" in t.intent_slots["HassVacuumStart"]
    assert t.class_domains == {"garage": "cover"}


def test_down_words_come_from_sentences_and_number_words_keep_no_sign():
    t = ValueTables.from_records(LEARN)
    assert "down" in t.down_words and "up" not in t.down_words
    assert "fifteen" not in t.maps.get("volume_step", {})  # "fifteen" is -15 or 15
    assert t.value("volume_step", "fifteen", "turn the volume down by fifteen") == -15
    assert t.value("volume_step", "fifteen", "volume up by fifteen") == 15


def test_a_slot_that_is_a_number_now_and_then_is_still_parsed_as_one():
    words = [_rec("turn the volume up", "HassSetVolumeRelative", [("volume_step", "up", "up")])
             ] * 12
    t = ValueTables.from_records(LEARN + words)
    assert "volume_step" in t.numeric
    assert t.value("volume_step", "20%", "volume down by 20%") == -20
    assert t.value("volume_step", "up", "turn the volume up") == "up"


def test_a_wildcard_slot_is_never_a_closed_list():
    """However few searches the corpus happened to say, a search is free text; a state list
    stays closed although a wildcard ({zone:state}) fills it now and then."""
    recs = ([_rec(f"play {q}", "HassMediaSearchAndPlay", [("search_query", q, q)])
             for q in ("abba", "adele", "queen")] * 3
            + [_rec("is the door open", "HassGetState", [("state", "open", "on")])] * 10
            + [_rec("is jane at work", "HassGetState", [("state", "work", "work", "zone")])])
    assert "search_query" in ValueTables.from_records(recs).vocab
    t = ValueTables.from_records(recs, wildcards=["search_query", "zone"])
    assert "search_query" not in t.vocab and "state" in t.vocab


def _template(text, intent, source="ha", slots=(), base=None):
    return {"text": text, "base": base or text, "intent": intent, "source": source,
            "slots": list(slots)}


def test_fixed_sentences_are_the_slotless_template_sentences():
    recs = [
        _template("Never mind!!", "HassNevermind", base="never mind"),
        _template("who made you", "HassRespond", source="ext"),
        _template("what can i say", "HassRespond", source="custom"),
        # said by two intents: neither
        _template("stop", "HassMediaPause"), _template("stop", "HassCancelAllTimers"),
        # also an out-of-scope sentence
        _template("good night", "HassRespond"), _template("good night", None, source="oos"),
        # a slot, too long, not a template
        _template("turn on kitchen", "HassTurnOn",
                  slots=[{"name": "area", "text": "kitchen", "value": "kitchen"}]),
        _template("please could you kindly turn off every light", "HassTurnOff"),
        _template("lights off", "HassTurnOff", source="teacher"),
    ]
    t = ValueTables.from_dict(ValueTables.from_records(recs).to_dict())
    assert t.fixed_sentences == {"never mind": "HassNevermind", "who made you": "HassRespond",
                                 "what can i say": "HassRespond"}
    assert t.fixed_intent("Never  mind.") == "HassNevermind"
    assert t.fixed_intent("Who made you?") == "HassRespond"
    assert t.fixed_intent("who made you today") is None
    assert ValueTables().fixed_intent("never mind") is None  # a bundle without the table


def test_sentence_key():
    assert sentence_key("  What’s UP?! ") == "what's up"
    assert sentence_key("turn-off, the lights") == "turn off the lights"
