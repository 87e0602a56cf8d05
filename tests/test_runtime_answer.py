"""From model outputs to the answer: frames, the satellite's area, the home's say, values in
the vocabulary of the entity's domain. The model is replaced by chosen logits (the decisions
after it are pure); the real model runs in test_runtime_engine and test_runtime_ha_suite."""

from __future__ import annotations

import re

import numpy as np
import pytest

from edge_slm.home import inventory_from_dict
from edge_slm.runtime.answer import Answerer, device_words
from edge_slm.runtime.known_home import KnownHome
from edge_slm.runtime.labels import Frame, Labels
from edge_slm.runtime.values import ValueTables

INTENTS = [None, "HassTurnOn", "HassVacuumStart", "HassStartTimer", "HassGetState"]
SLOTS = ["area", "name", "state", "minutes", "hours"]
TAGS = ["O"] + [f"{p}-{s}" for s in SLOTS for p in ("B", "I")]
FRAMES = [Frame(), Frame.make({"domain": "light"}), Frame.make({"domain": "light"}, True),
          Frame.make({"domain": "cover"})]
LABELS = Labels(INTENTS, TAGS, FRAMES, {"HassTurnOn": [0, 1, 2], "HassGetState": [0, 3]})
VALUES = ValueTables(
    domain_maps={"state": {"cover": {"open": "open"}, "binary_sensor": {"open": "on"}}},
    maps={"state": {"open": "on"}}, numeric=["minutes", "hours"],
    name_domains={"HassTurnOn": ["light", "script"], "HassVacuumStart": ["vacuum"],
                  "HassGetState": ["cover", "binary_sensor", "light"]},
    free_slots={"HassStartTimer": ["name"]},
    intent_slots={"HassTurnOn": ["area", "name"], "HassVacuumStart": ["name"],
                  "HassStartTimer": ["hours", "minutes", "name"],
                  "HassGetState": ["name", "state"]})
HOME = inventory_from_dict({
    "areas": [{"name": "Kitchen"}, {"name": "Living Room"}],
    "entities": [{"name": "Play Corner", "domain": "light", "area": "Living Room"},
                 {"name": "Rover", "domain": "vacuum"},
                 {"name": "Garage Door", "domain": "cover"},
                 {"name": "Skylight", "domain": "binary_sensor"}]})


def run(text, intent_probs, tags=None, frame=0, area=None, user=True, threshold=0.5,
        common=frozenset()):
    """Answer `text` as if the model gave these intent probabilities, per-word tags
    ({word index: tag}) and frame."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    li = np.log(np.maximum(np.asarray(intent_probs, np.float64), 1e-9))
    lt = np.full((1 + len(words), len(TAGS)), -5.0)
    lt[:, 0] = 5.0
    for k, tag in (tags or {}).items():
        lt[1 + k, :] = -5.0
        lt[1 + k, TAGS.index(tag)] = 5.0
    lf = np.full(len(FRAMES), -5.0)
    lf[frame] = 5.0
    home = KnownHome(HOME, user=user)
    return Answerer(LABELS, VALUES, common).answer(text, li, lt, lf, words, home, None, user,
                                                   area, 1.0, threshold)


def test_frame_gives_fixed_slots_without_words():
    res = run("turn on the lights", [0, 1, 0, 0, 0], frame=1)
    assert res.intent == "HassTurnOn"
    [slot] = res.slots
    assert (slot.name, slot.value, slot.raw, slot.start, slot.end) == \
        ("domain", "light", "", None, None)


def test_a_frame_outside_the_intents_own_is_never_chosen():
    # the frame head prefers the cover frame, which HassTurnOn was never seen with
    res = run("turn on the lights", [0, 1, 0, 0, 0], frame=3)
    assert res.slot_values() == {}


def test_satellite_area_only_where_the_frame_means_it():
    with_context = run("lights on in here", [0, 1, 0, 0, 0], frame=2, area="kitchen")
    assert with_context.slot_values() == {"domain": "light", "area": "Kitchen"}
    area = [s for s in with_context.slots if s.name == "area"][0]
    assert area.raw == "" and area.start is None
    no_context = run("all the lights on", [0, 1, 0, 0, 0], frame=1, area="Kitchen")
    assert "area" not in no_context.slot_values()
    no_area_given = run("lights on in here", [0, 1, 0, 0, 0], frame=2)
    assert "area" not in no_area_given.slot_values()


def test_a_said_area_wins_over_the_satellites():
    res = run("lights on in the living room", [0, 1, 0, 0, 0],
              tags={4: "B-area", 5: "I-area"}, frame=2, area="Kitchen")
    assert res.slot_values() == {"area": "Living Room", "domain": "light"}


def test_the_named_entitys_domain_chooses_the_intent():
    # the model leans to HassTurnOn; Rover is a vacuum, which HassTurnOn never takes
    res = run("start rover", [0.0, 0.7, 0.3, 0, 0], tags={1: "B-name"})
    assert res.intent == "HassVacuumStart" and res.slot_values() == {"name": "Rover"}
    assert res.confidence == pytest.approx(0.3)


def test_naming_the_users_own_device_is_evidence_of_a_command():
    # too doubtful for the threshold, but it names Rover, a vacuum, for an intent taking one
    named = run("start rover", [0.3, 0.3, 0.4, 0, 0], tags={1: "B-name"}, threshold=0.9)
    assert named.intent == "HassVacuumStart"
    shipped = run("start rover", [0.3, 0.3, 0.4, 0, 0], tags={1: "B-name"}, threshold=0.9,
                  user=False)
    assert shipped.intent is None  # the example home is no evidence
    doubtful = run("start rover", [0.6, 0.3, 0.1, 0, 0], tags={1: "B-name"}, threshold=0.9)
    assert doubtful.intent is None
    no_name = run("start the robot", [0.3, 0.3, 0.4, 0, 0], threshold=0.9)
    assert no_name.intent is None
    # a name of one word the vocabulary holds whole is a common word: it buys five times the
    # doubt the threshold allows, no more (at 0.98, p(no intent) up to 0.1)
    common = {"rover", "garage", "door"}
    assert run("start rover", [0.12, 0.3, 0.58, 0, 0], tags={1: "B-name"},
               threshold=0.98).intent == "HassVacuumStart"
    assert run("start rover", [0.08, 0.3, 0.62, 0, 0], tags={1: "B-name"},
               threshold=0.98, common=common).intent == "HassVacuumStart"
    assert run("start rover", [0.12, 0.3, 0.58, 0, 0], tags={1: "B-name"},
               threshold=0.98, common=common).intent is None
    # a name of several words is specific, whatever its words
    assert run("is the garage door open", [0.3, 0, 0, 0, 0.7],
               tags={2: "B-name", 3: "I-name"}, threshold=0.98,
               common=common).intent == "HassGetState"


def test_the_unit_said_decides_the_duration_slot():
    res = run("set a timer for 1 hour 5 minutes", [0, 0, 0, 1, 0],
              tags={4: "B-minutes", 6: "B-minutes"})
    assert res.slot_values() == {"hours": 1, "minutes": 5}
    # "half" an hour is no number of hours: the tagger's slot stands
    half = run("timer for 1 and a half hours", [0, 0, 0, 1, 0],
               tags={2: "B-hours", 5: "B-minutes"})
    assert half.slot_values()["hours"] == 1 and "minutes" in half.slot_values()
    # a half the tagger read as the unit said after it is the next smaller unit, never a
    # second "hours" (valued 1 for the "1" of "1/2")
    for text, k in (("timer for 70 and 1/2 hours", 4), ("timer for 2 and a half hours", 5)):
        twice = run(text, [0, 0, 0, 1, 0], tags={2: "B-hours", k: "B-hours"})
        assert [(s.name, s.raw) for s in twice.slots] == [("hours", text.split()[2]),
                                                          ("minutes", text.split()[k])]
        assert twice.slot_values() == {"hours": int(text.split()[2]), "minutes": 30}


def test_slots_the_intent_never_takes_are_dropped():
    res = run("set a timer for 5 minutes in the kitchen", [0, 0, 0, 1, 0],
              tags={4: "B-minutes", 8: "B-area"})
    assert res.slot_values() == {"minutes": 5}


def test_the_users_home_adds_names_the_tagger_missed():
    res = run("turn on play corner lights", [0, 1, 0, 0, 0], frame=1)
    assert res.slot_values() == {"name": "Play Corner"}  # the name replaces the domain
    shipped = run("turn on play corner lights", [0, 1, 0, 0, 0], frame=1, user=False)
    assert shipped.slot_values() == {"domain": "light"}


def test_timer_names_are_free_text_even_in_a_strict_home():
    res = run("set a 5 minute timer named pizza", [0, 0, 0, 1, 0],
              tags={2: "B-minutes", 6: "B-name"})
    assert res.slot_values() == {"minutes": 5, "name": "pizza"}


def test_places_the_home_lacks_are_dropped():
    res = run("turn on the attic lights", [0, 1, 0, 0, 0], tags={3: "B-area"}, frame=1)
    assert res.slot_values() == {"domain": "light"}


@pytest.mark.parametrize("text,state", [("is the garage door open", "open"),
                                        ("is the skylight open", "on")])
def test_states_in_the_vocabulary_of_the_entitys_domain(text, state):
    n = len(text.split())
    tags = {2: "B-name", n - 1: "B-state"}
    if n == 5:
        tags[3] = "I-name"
    res = run(text, [0, 0, 0, 0, 1], tags=tags, frame=3)
    assert res.slot_values()["state"] == state
    assert "domain" not in res.slot_values()  # the name says which entity


def test_device_words_come_from_the_bundles_domains_and_classes():
    values = ValueTables(**{**VALUES.__dict__, "class_domains": {"garage_door": "cover"},
                            "vocab": {"device_class": ["blinds", "roller shutter"]}})
    words = device_words(LABELS, values)
    for word in ("light", "lights", "cover", "vacuum", "script", "binary sensor",
                 "garage door", "garage doors", "blinds", "roller shutter", "roller shutters"):
        assert word in words
    assert "kitchen" not in words and "rover" not in words and "" not in words


def test_a_kind_of_device_said_is_weaker_evidence_of_a_command():
    # at threshold 0.98 the threshold allows p(no intent) < 0.02; a device word, 5 x that
    light = [0.08, 0.92, 0, 0, 0]
    assert run("turn on the light", light, frame=1, threshold=0.98, user=False).intent \
        == "HassTurnOn"
    assert run("turn on the lights please", light, frame=1, threshold=0.98).intent \
        == "HassTurnOn"
    # the same doubt without a device word, or with more than five times the doubt: rejected
    assert run("turn it on", light, frame=1, threshold=0.98).intent is None
    assert run("turn on the light", [0.12, 0.88, 0, 0, 0], frame=1,
               threshold=0.98).intent is None
    # only for an intent that takes a device (a timer's does not)
    timer = [0.08, 0, 0, 0.92, 0]
    assert run("start a light timer", timer, threshold=0.98).intent is None
    # a word inside another word is no device word ("lightning")
    assert run("turn on the lightning", light, frame=1, threshold=0.98).intent is None


def test_below_the_threshold_nothing_is_answered():
    res = run("turn it on", [0.3, 0.7, 0, 0, 0], frame=1, threshold=0.9)
    assert res.intent is None and res.slots == [] and res.top_intent == "HassTurnOn"
    assert res.alternatives[0].intent == "HassTurnOn"


def test_a_fixed_sentence_is_answered_below_the_threshold_when_the_model_agrees():
    values = ValueTables(fixed_sentences={"turn on the lights": "HassTurnOn",
                                          "start the timer": "HassStartTimer"})
    answer = Answerer(LABELS, values)

    def at(text, probs):
        li = np.log(np.maximum(np.asarray(probs, np.float64), 1e-9))
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        lt = np.full((1 + len(words), len(TAGS)), -5.0)
        lt[:, 0] = 5.0
        return answer.answer(text, li, lt, np.array([-5.0, 5.0, -5.0, -5.0]), words,
                             KnownHome(HOME, user=False), None, False, None, 1.0, 0.9)

    said = at("Turn on the lights!", [0.3, 0.7, 0, 0, 0])
    assert said.intent == "HassTurnOn" and said.slot_values() == {"domain": "light"}
    # not word for word, or the model's best intent is another: the threshold rules
    assert at("turn on the lights now", [0.3, 0.7, 0, 0, 0]).intent is None
    assert at("turn on the lights", [0.3, 0, 0, 0.7, 0]).intent is None
    # the model's best guess is "no intent": a fixed sentence does not overrule it
    assert at("turn on the lights", [0.6, 0.4, 0, 0, 0]).intent is None


def test_a_name_of_the_home_said_word_for_word_moves_the_intent():
    # the model is sure of HassTurnOn; "garage door" is a cover of the home, which only
    # HassGetState of these intents takes: a name of two words is specific enough
    res = run("what about the garage door", [0, 0.98, 0, 0, 0.02], frame=0)
    assert res.intent == "HassGetState" and res.slot_values()["name"] == "Garage Door"
    # one word ("rover") needs the model to give the intent a share of its probability
    assert run("zap rover", [0, 0.999, 0.0001, 0, 0]).intent == "HassTurnOn"
    assert run("zap rover", [0, 0.95, 0.05, 0, 0]).intent == "HassVacuumStart"


def test_a_name_of_the_home_wins_over_free_text_read_there():
    labels = Labels([None, "HassListAddItem"], ["O", "B-item", "I-item", "B-name", "I-name"])
    values = ValueTables(name_domains={"HassListAddItem": ["todo"]},
                         intent_slots={"HassListAddItem": ["item", "name"]})
    home = KnownHome(inventory_from_dict({"entities": [{"name": "Trader Joes",
                                                        "domain": "todo"}]}), user=True)
    text = "add apples to my trader joes list"
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    lt = np.full((1 + len(words), 5), -5.0)
    lt[:, 0] = 5.0
    for k, tag in ((1, 1), (4, 1)):  # "apples" and "trader" read as items
        lt[1 + k] = -5.0
        lt[1 + k, tag] = 5.0
    res = Answerer(labels, values).answer(text, np.log([1e-3, 1.0]), lt, np.zeros(1), words,
                                          home, None, True, None, 1.0, 0.5)
    assert res.slot_values() == {"item": "apples", "name": "Trader Joes"}


@pytest.mark.parametrize("text,tagged,probs,want", [
    # "white" read as the colour to set is a word of the light Kitchen White: it is turned off
    ("turn off the kitchen white light", [4], [1e-4, 0.95, 0.05],
     ("HassTurnOff", {"name": "Kitchen White"})),
    # ... when the model gives the other intent at least 1% of the best one's probability
    ("turn off the kitchen white light", [4], [1e-4, 0.999, 0.0009],
     ("HassLightSet", {"color": "white"})),
    # a colour said outside the name is one to set, on the light the name says
    ("set the kitchen white light to blue", [3, 6], [1e-4, 0.95, 0.05],
     ("HassLightSet", {"color": "blue", "name": "Kitchen White"})),
])
def test_a_value_read_inside_a_name_of_the_home_is_the_name(text, tagged, probs, want):
    labels = Labels([None, "HassLightSet", "HassTurnOff", "HassSetVolume"],
                    ["O", "B-color", "I-color", "B-name", "I-name"])
    values = ValueTables(name_domains={"HassLightSet": ["light"], "HassTurnOff": ["light"]},
                         intent_slots={"HassLightSet": ["color", "name"],
                                       "HassTurnOff": ["name"]},
                         vocab={"color": ["white", "blue"]})
    home = KnownHome(inventory_from_dict({"entities": [{"name": "Kitchen White",
                                                        "domain": "light"}]}), user=True)
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    lt = np.full((1 + len(words), 5), -5.0)
    lt[:, 0] = 5.0
    for k in tagged:
        lt[1 + k] = -5.0
        lt[1 + k, 1] = 5.0
    res = Answerer(labels, values).answer(text, np.log(probs), lt, np.zeros(1), words, home,
                                          None, True, None, 1.0, 0.5)
    assert res.intent == want[0]
    said = {s.name: s.value for s in res.slots if s.said}
    assert said == want[1]


def test_a_timer_named_like_a_device_stays_a_timer():
    """A timer's name is its own words: a device of the same name (Rover, a vacuum) moves
    the answer only when the model gives the device's intent its share (1% of the best)."""
    timer = run("stop rover timer", [0, 0, 0.004, 0.996, 0], tags={1: "B-name"})
    assert timer.intent == "HassStartTimer" and timer.slot_values() == {"name": "rover"}
    device = run("stop rover timer", [0, 0, 0.05, 0.95, 0], tags={1: "B-name"})
    assert device.intent == "HassVacuumStart" and device.slot_values() == {"name": "Rover"}


def test_the_example_home_does_not_choose_the_intent():
    """The home shipped in a bundle fixes spellings and no more: Rover being a vacuum there
    says nothing about the user's Rover."""
    res = run("start rover", [0.0, 0.7, 0.3, 0, 0], tags={1: "B-name"}, user=False)
    assert res.intent == "HassTurnOn" and res.slot_values() == {"name": "Rover"}


def _light(text, probs, frame, tags=None):
    """Answers of a model that knows HassLightSet and HassTurnOff."""
    labels = Labels([None, "HassLightSet", "HassTurnOff", "HassSetVolume"],
                    ["O", "B-area", "I-area", "B-brightness", "I-brightness", "B-name",
                     "I-name"],
                    [Frame(), Frame.make({"domain": "light"}),
                     Frame.make({"domain": "light", "brightness_step": "down"})],
                    {"HassLightSet": [1, 2], "HassTurnOff": [1]})
    values = ValueTables(numeric=["brightness", "volume_level"], maps={
        "brightness": {"min": 1, "minimum": 1, "max": 100}}, name_domains={
        "HassLightSet": ["light"], "HassTurnOff": ["light", "switch"],
        "HassSetVolume": ["media_player"]}, intent_slots={
        "HassLightSet": ["area", "brightness"], "HassTurnOff": ["area"],
        "HassSetVolume": ["area", "volume_level"]})
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    lt = np.full((1 + len(words), len(labels.tags)), -5.0)
    lt[:, 0] = 5.0
    for k, tag in (tags or {}).items():
        lt[1 + k, :] = -5.0
        lt[1 + k, labels.tags.index(tag)] = 5.0
    lf = np.full(3, -5.0)
    lf[frame] = 5.0
    li = np.log(np.maximum(np.asarray(probs, np.float64), 1e-9))
    return Answerer(labels, values).answer(text, li, lt, lf, words, KnownHome(HOME, user=True),
                                           None, True, None, 1.0, 0.9)


def test_a_brightness_setting_without_a_setting_gives_way():
    """HassLightSet with no brightness, step, colour or temperature is nothing Home Assistant
    can do: "the kitchen is too bright" is the next intent's (a remark about the room)."""
    room = _light("the kitchen is too bright", [0.01, 0.89, 0.1, 0], 1, {1: "B-area"})
    assert room.intent == "HassTurnOff"
    assert room.slot_values() == {"area": "Kitchen", "domain": "light"}
    # the frame's step, or a said brightness, is a setting: the intent stands
    lights = _light("the lights are too bright", [0.01, 0.89, 0.1, 0], 2)
    assert lights.intent == "HassLightSet" and lights.slot_values()["brightness_step"] == "down"
    said = _light("kitchen to 50", [0.01, 0.89, 0.1, 0], 1, {0: "B-area", 2: "B-brightness"})
    assert said.intent == "HassLightSet" and said.slot_values()["brightness"] == 50
    # the next intent cannot be carried out either (a volume setting with no level): as read
    missed = _light("turn kitchen to 50%", [0.01, 0.89, 0, 0.1], 1, {1: "B-area"})
    assert missed.intent == "HassLightSet" and missed.slot_values() == {
        "area": "Kitchen", "domain": "light"}


@pytest.mark.parametrize("tags", [{3: "B-area", 4: "B-name"}, {3: "B-name", 4: "I-name"}],
                         ids=["read-as-a-name", "read-with-the-area-as-one-name"])
def test_a_value_read_as_a_place_the_home_lacks_is_that_value(tags):
    """"min" read as a name the home lacks, for an intent that takes a brightness and none is
    said, is the brightness; read with the area as one name ("kitchen min"), it is the area
    Kitchen and the brightness. The said brightness stands for the frame's step."""
    res = _light("turn down the kitchen min brightness", [0.01, 0.89, 0.1, 0], 2, tags)
    assert res.intent == "HassLightSet"
    assert res.slot_values() == {"area": "Kitchen", "brightness": 1, "domain": "light"}


def test_a_place_stays_a_place_when_a_value_is_said_or_the_words_are_no_value():
    said = _light("kitchen min to 50", [0.01, 0.89, 0.1, 0], 1,
                  {0: "B-area", 1: "B-name", 3: "B-brightness"})
    assert said.slot_values() == {"area": "Kitchen", "brightness": 50, "domain": "light"}
    other = _light("turn down the kitchen mint", [0.01, 0.89, 0.1, 0], 2,
                   {3: "B-name", 4: "I-name"})  # "mint" is no value: the frame's step
    assert other.slot_values() == {"area": "Kitchen", "brightness_step": "down",
                                   "domain": "light"}


def test_names_given_for_the_query_find_what_the_tagger_missed():
    """Names given with one query (`parse(names=...)`) are searched as the user's home is: a
    name or area said word for word where the tagger saw none is taken, with the given
    spelling; without them (and without a home of the user's) nothing is added."""
    text = "turn on the desk lamp in the den"
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    li = np.log(np.asarray([1e-6, 1.0, 1e-6, 1e-6, 1e-6]))
    lt = np.full((1 + len(words), len(TAGS)), -5.0)
    lt[:, 0] = 5.0  # the tagger saw nothing
    lf = np.full(len(FRAMES), -5.0)
    lf[0] = 5.0
    shipped = KnownHome(HOME, user=False)

    def answer(names):
        return Answerer(LABELS, VALUES).answer(text, li, lt, lf, words, shipped, names, True,
                                               None, 1.0, 0.5)
    given = answer({"name": [["Desk Lamp", "desk light"]], "area": ["Den"]})
    assert given.intent == "HassTurnOn"
    assert given.slot_values() == {"name": "Desk Lamp", "area": "Den"}
    assert answer(None).slot_values() == {}
