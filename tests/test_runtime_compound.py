"""Several commands in one sentence (runtime/compound.py): where a sentence may be cut, how
pieces borrow a neighbour's words, and the shipped model's answers."""

from __future__ import annotations

import json

import pytest

from edge_slm.corpus.compound import join, make_compounds
from edge_slm.runtime.compound import joins, split
from edge_slm.runtime.engine import IntentEngine
from edge_slm.runtime.metrics import evaluate
from edge_slm.runtime.result import ParseResult, Slot


@pytest.fixture(scope="module")
def engine():
    return IntentEngine.load()  # the shipped int8 bundle


def _cut_words(text):
    return [text[a:b].strip() for a, b in joins(text)]


def test_joins_are_the_joining_words():
    assert _cut_words("turn off the lights and lock the door") == ["and"]
    assert _cut_words("turn off the tv, then turn on the porch light") == [", then"]
    assert _cut_words("lock the front door; turn off the lights and then set a timer") == \
        [";", "and then"]


@pytest.mark.parametrize("text", [
    "set a timer for 1 hour and 30 minutes",          # a number goes on
    "start a timer for an hour and a half",
    "turn off each and every light",                  # one phrase
    "hey nabu, turn on the lights",                   # a wake word, not a command
    "lights and fans",                                # a single word on one side
    "brand new",
])
def test_no_cut_where_one_command_goes_on(text):
    assert joins(text) == []


def _rules(text):
    """A parse by rules (for the borrowing logic alone): a verb and a device make a
    command; the device is the slot."""
    verbs = {"turn off": "HassTurnOff", "turn on": "HassTurnOn", "add": "HassListAddItem",
             "remove": "HassListRemoveItem"}
    intent = next((v for k, v in verbs.items() if text.startswith(k)), None)
    if intent in ("HassListAddItem", "HassListRemoveItem") and "list" not in text:
        intent = None  # a list command names its list
    slots = []
    for word in ("fan", "lights", "eggs", "cheese"):
        at = text.find(word)
        if at >= 0:
            slots.append(Slot("name", word, word, at, at + len(word), 0.9))
    if intent is None or not slots:
        return ParseResult(text, None, 0.9)
    return ParseResult(text, intent, 0.95, slots)


def test_a_piece_borrows_the_verb_before_it_and_its_slots_point_at_the_sentence():
    text = "turn off the lights and the fan"
    commands = split(text, _rules(text), _rules)
    assert [(c.intent, [(s.value, text[s.start:s.end]) for s in c.slots]) for c in commands] \
        == [("HassTurnOff", [("lights", "lights")]), ("HassTurnOff", [("fan", "fan")])]


def test_a_piece_borrows_the_words_after_the_next_ones_slot():
    text = "add the eggs and remove the cheese from the list"
    commands = split(text, _rules(text), _rules)
    # "add the eggs" names no list: it borrows "from the list"
    assert [(c.intent, [(s.value, text[s.start:s.end]) for s in c.slots]) for c in commands] \
        == [("HassListAddItem", [("eggs", "eggs")]),
            ("HassListRemoveItem", [("cheese", "cheese")])]


def test_no_cut_unless_every_piece_is_a_command():
    text = "turn on the lights and then some"
    assert [c.intent for c in split(text, _rules(text), _rules)] == ["HassTurnOn"]
    nothing = "hello and goodbye to you"
    assert split(nothing, _rules(nothing), _rules) == []


def _doubtful(sure, doubtful):
    """Parsers at the bundle's threshold and at a piece's lower bar: the texts in `sure` are
    commands at both, those in `doubtful` ({text: intent}) only at the lower bar."""
    def at(lower):
        def parse(text):
            if text in sure:
                return ParseResult(text, sure[text], 0.99)
            if lower and text in doubtful:
                return ParseResult(text, doubtful[text], 0.95)
            return ParseResult(text, None, 0.6)
        return parse
    return at(False), at(True)


def test_beside_a_sure_command_a_piece_is_one_at_a_lower_bar():
    text = "turn off the lights and will it rain tomorrow"
    one, piece = _doubtful({"turn off the lights": "HassTurnOff"},
                           {"will it rain tomorrow": "HassGetWeather"})
    whole = ParseResult(text, None, 0.5)
    assert [c.intent for c in split(text, whole, one, piece)] == ["HassTurnOff",
                                                                  "HassGetWeather"]
    assert split(text, whole, one) == []  # every piece at the bundle's threshold: no cut
    # no piece sure on its own: nothing
    one, piece = _doubtful({}, {"turn off the lights": "HassTurnOff",
                                "will it rain tomorrow": "HassGetWeather"})
    assert split(text, whole, one, piece) == []


def test_a_preamble_is_no_command_at_the_lower_bar():
    text = "before i forget, lock the front door"
    one, piece = _doubtful({"lock the front door": "HassTurnOn"},
                           {"before i forget": "HassNevermind"})
    whole = ParseResult(text, "HassTurnOn", 0.99)
    assert [c.intent for c in split(text, whole, one, piece)] == ["HassTurnOn"]


def test_a_sure_whole_does_not_hold_back_its_pieces():
    """The whole read as one sure command, the second piece much less sure: the pieces still
    win (the finest cut whose every piece is a command)."""
    text = "close the blinds and stop the heater timer"
    one, _ = _doubtful({"close the blinds": "HassTurnOff"}, {})

    def parse(words):
        if words == "stop the heater timer":
            return ParseResult(words, "HassCancelTimer", 0.6)
        return one(words)
    blinds = Slot("name", "blinds", "blinds", 10, 16, 0.9)
    whole = ParseResult(text, "HassTurnOff", 0.99, [blinds])
    assert [c.intent for c in split(text, whole, parse)] == ["HassTurnOff", "HassCancelTimer"]


def test_a_piece_with_borrowed_words_says_a_slot_of_its_own():
    """"go ahead" + the next piece's tail reads as a command, but none of its slots is in
    "go ahead": a preamble, not a command."""
    text = "go ahead and the garage is too bright"
    garage = text.index("garage")

    def parse(words):
        if words == "the garage is too bright":
            at = words.index("garage")
            return ParseResult(words, "HassTurnOff", 0.99,
                               [Slot("area", "garage", "garage", at, at + 6, 0.9)])
        if words == "go ahead is too bright":
            return ParseResult(words, "HassTurnOff", 0.99)
        return ParseResult(words, None, 0.6)
    whole = ParseResult(text, "HassTurnOff", 0.99,
                        [Slot("area", "garage", "garage", garage, garage + 6, 0.9)])
    assert [c.intent for c in split(text, whole, parse)] == ["HassTurnOff"]


def test_a_semicolon_joins_after_two_words():
    assert _cut_words("hoover now; skip this song") == [";"]
    assert _cut_words("hey nabu, turn on the lights") == []


def test_shipped_model_answers_two_commands_in_spoken_order(engine):
    text = "turn off the kitchen lights and lock the front door"
    res = engine.parse(text)
    assert [c.intent for c in res.commands] == ["HassTurnOff", "HassTurnOn"]
    first, second = res.commands
    assert {s.name: s.value for s in first.slots} == {"area": "kitchen", "domain": "light"}
    assert any(s.said and "front door" in text[s.start:s.end] for s in second.slots)
    # the top-level fields are the first command's
    assert (res.intent, res.confidence, res.slots) == \
        (first.intent, first.confidence, first.slots)
    d = res.to_dict()
    assert [c["intent"] for c in d["commands"]] == ["HassTurnOff", "HassTurnOn"]
    for c in d["commands"]:
        assert set(c) == {"intent", "confidence", "slots"}
        for s in c["slots"]:
            if s["start"] is not None:
                assert text[s["start"]:s["end"]] == s["raw"]
    json.dumps(d)


@pytest.mark.parametrize("text,intents", [
    ("what time is it and what's the weather", ["HassGetCurrentTime", "HassGetWeather"]),
    ("lock the door, turn off the lights and set a timer for 5 minutes",
     ["HassTurnOn", "HassTurnOff", "HassStartTimer"]),
    ("set a timer for 1 hour and 30 minutes", ["HassStartTimer"]),
    ("turn on the lights", ["HassTurnOn"]),
    ("what is the capital of france and who wrote hamlet", []),
])
def test_shipped_model_commands(engine, text, intents):
    assert [c.intent for c in engine.parse(text).commands] == intents


def test_a_single_command_is_one_element_and_nothing_recognized_none(engine):
    one = engine.parse("turn off the kitchen lights")
    assert len(one.commands) == 1 and one.commands[0].intent == one.intent
    assert engine.parse("who wrote hamlet").commands == []


def _rec(text, intent, slot=None):
    slots = []
    if slot:
        at = text.index(slot[1])
        slots = [{"name": slot[0], "value": slot[1], "text": slot[1], "start": at,
                  "end": at + len(slot[1])}]
    return {"text": text, "intent": intent, "slots": slots, "augment": [], "split": "heldout"}


def test_compound_records_keep_every_span_exact():
    parts = [_rec("turn off the kitchen lights.", "HassTurnOff", ("area", "kitchen")),
             _rec("what time is it?", "HassGetCurrentTime"),
             _rec("add milk to my list", "HassShoppingListAddItem", ("item", "milk"))]
    rec = join(parts, [" and then ", ", "])
    assert rec["text"] == "turn off the kitchen lights and then what time is it, " \
                          "add milk to my list"
    assert [c["intent"] for c in rec["commands"]] == \
        ["HassTurnOff", "HassGetCurrentTime", "HassShoppingListAddItem"]
    for c in rec["commands"]:
        for s in c["slots"]:
            assert rec["text"][s["start"]:s["end"]] == s["text"]
    many = make_compounds(parts * 3, 20, seed=3)
    assert len(many) == 20 and all(2 <= len(r["commands"]) <= 3 for r in many)
    assert many == make_compounds(parts * 3, 20, seed=3)


def test_compounds_are_scored_every_command_right(engine):
    right = join([_rec("turn off the kitchen lights", "HassTurnOff", ("area", "kitchen")),
                  _rec("what time is it", "HassGetCurrentTime")], [" and "])
    wrong = join([_rec("turn off the kitchen lights", "HassTurnOn", ("area", "kitchen")),
                  _rec("what time is it", "HassGetCurrentTime")], [" and "])
    m = evaluate(engine, [right, wrong])
    assert m["n_compound"] == 2 and m["compound_all_right"] == 0.5
    assert m["compound_count_right"] == 1.0


def test_pieces_each_nearly_sure_are_commands_together():
    """Two questions each a hair under the bundle's threshold: with no piece sure on its own,
    they still qualify when every one is at least PAIR_THRESHOLD sure."""
    text = "what's switched on and then what's the dew point tonight"

    def parse(p):
        return {"what's switched on": ParseResult(p, "HassGetState", 0.995),
                "what's the dew point tonight": ParseResult(p, "HassGetWeather", 0.998)
                }.get(p, ParseResult(p, None, 0.6))

    def none(p):
        return ParseResult(p, None, 0.6)  # nothing at the bundle's threshold
    whole = ParseResult(text, None, 0.58)
    assert [c.intent for c in split(text, whole, none, parse)] == ["HassGetState",
                                                                   "HassGetWeather"]

    def less(p):
        res = parse(p)
        return ParseResult(p, res.intent, 0.98) if p.startswith("what's the") else res
    assert split(text, whole, none, less) == []  # one of them below the pair's bar
