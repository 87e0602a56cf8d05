"""The pure Wyoming handler on the real shipped bundle: describe -> info, transcript and
recognize -> intent (entities in the home's spelling, implied ones included) or
not-recognized with a reason, several commands -> intents-start/intent.../intents-stop, bad
data -> error; one engine shared with the MQTT handler."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List

import pytest

from edge_slm import __version__
from edge_slm.daemon import DaemonConfig
from edge_slm.daemon.handlers import Handler
from edge_slm.daemon.served import ServedEngine
from edge_slm.daemon.wyoming_handler import (BAD_EVENT, WyomingHandler, commands_of,
                                             entities_of, result_events)
from edge_slm.protocols import wyoming as w
from edge_slm.protocols.wyoming_wire import LINE_TOO_LONG, Event, FrameError
from edge_slm.runtime.engine import IntentEngine
from edge_slm.runtime.result import Command, ParseResult, Slot

KITCHEN = "turn off the kitchen lights"
CONTEXT = {"conversation_id": "01J0"}


@pytest.fixture(scope="module")
def source():
    return ServedEngine(IntentEngine.load())


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def handler(source):
    return WyomingHandler(source, DaemonConfig())


def _slot(name, value, start=None):
    return Slot(name, value, "" if start is None else str(value), start,
                None if start is None else start + len(str(value)), 0.9)


def _entities(event):
    return {e.name: e.value for e in event.entities}


def test_describe_is_answered_with_the_intent_program(handler, source):
    [info] = handler.handle(Event("describe"))
    assert isinstance(info, w.Info) and len(info.intent) == 1
    program = info.intent[0]
    assert (program.name, program.version, program.installed) == ("edge-slm", __version__, True)
    [model] = program.models
    assert model.name == source.served.model_id and model.languages == ("en",)
    assert model.description == "int8 bundle"


@pytest.mark.parametrize("event", [
    Event("transcript", {"text": KITCHEN, "language": "en", "context": CONTEXT}),
    Event("recognize", {"text": KITCHEN, "context": CONTEXT}),
])
def test_a_command_is_an_intent_with_its_entities(handler, event):
    [intent] = handler.handle(event, "10.0.0.5")
    assert isinstance(intent, w.Intent) and intent.name == "HassTurnOff"
    entities = _entities(intent)
    assert entities["area"].lower() == "kitchen" and entities["domain"] == "light"
    assert 0.5 < intent.confidence <= 1.0 and intent.context == CONTEXT
    assert intent.text is None  # Home Assistant would say it back


def test_out_of_scope_is_not_recognized_with_a_reason(handler):
    [nr] = handler.handle(Event("transcript", {"text": "what is the capital of france"}))
    assert isinstance(nr, w.NotRecognized)
    assert nr.text == "not recognized: not a home command" and nr.context is None


def test_the_context_area_is_the_satellites_room(handler):
    [intent] = handler.handle(Event("transcript", {"text": "turn on the lights in here",
                                                   "context": {"area": "Kitchen"}}))
    assert intent.name == "HassTurnOn"
    assert _entities(intent)["area"].lower() == "kitchen"
    [without] = handler.handle(Event("transcript", {"text": "turn on the lights in here"}))
    assert "area" not in _entities(without)


@pytest.mark.parametrize("data, words", [
    ({"text": 5}, "'text' must be a string"),
    ({}, "'text' is missing"),
    ({"text": "lights on", "context": ["kitchen"]}, "'context' must be an object"),
    ({"text": "lights on", "context": {"area": 3}}, "area name"),
    ({"text": "lights on", "context": {"area": "  "}}, "area name"),
    ({"text": "lights on", "context": {"area": "x" * 201}}, "area name"),
])
def test_bad_request_data_is_an_error(handler, data, words):
    [err] = handler.handle(Event("transcript", data))
    assert isinstance(err, w.Error) and err.code == BAD_EVENT and words in err.text


@pytest.mark.parametrize("data, words", [
    ({"text": "   "}, "nothing was said"),
    ({"text": "turn on the light " * 60}, "text too long"),
    ({"text": KITCHEN, "language": "de-DE"}, "language 'de-DE' is not served"),
])
def test_a_request_that_cannot_be_answered_is_not_recognized_with_the_reason(handler, data,
                                                                             words):
    [nr] = handler.handle(Event("transcript", dict(data, context=CONTEXT)))
    assert isinstance(nr, w.NotRecognized) and words in nr.text and nr.context == CONTEXT


def test_other_event_types_are_ignored(handler):
    for kind in ("audio-start", "ping", "error", "intent", "synthesize"):
        assert handler.handle(Event(kind, {"text": "x"})) == []


def test_a_frame_error_is_answered_with_its_code(handler):
    err = handler.frame_error(FrameError(LINE_TOO_LONG, "header line too long"))
    assert err == w.Error("header line too long", LINE_TOO_LONG)


def test_each_client_address_has_its_rate_limit(source):
    clock = Clock()
    handler = WyomingHandler(source, DaemonConfig(rate_limit=1.0, rate_burst=64), clock)
    answers = [handler.handle(Event("recognize", {"text": KITCHEN}), "10.0.0.9")[0]
               for _ in range(65)]
    assert all(isinstance(a, w.Intent) for a in answers[:64])
    assert isinstance(answers[64], w.NotRecognized) and "rate limited" in answers[64].text
    assert isinstance(handler.handle(Event("recognize", {"text": KITCHEN}), "10.0.0.8")[0],
                      w.Intent)
    clock.now += 1.0
    assert isinstance(handler.handle(Event("recognize", {"text": KITCHEN}), "10.0.0.9")[0],
                      w.Intent)


# -- results to events ---------------------------------------------------------------------

@dataclass
class _Cmd:
    """A command as the engine's multi-command results will hold them."""

    intent: str
    confidence: float
    slots: List[Slot]


def _two_commands() -> ParseResult:
    first = _Cmd("HassTurnOff", 0.98, [_slot("area", "Kitchen", 13), _slot("domain", "light")])
    second = _Cmd("HassTurnOn", 0.91, [_slot("name", "Front Door Lock", 41),
                                       _slot("domain", "lock")])
    result = ParseResult("turn off the kitchen lights and lock the front door", "HassTurnOff",
                         0.98, list(first.slots))
    result.commands = [first, second]  # type: ignore[attr-defined]
    return result


def test_several_commands_are_intents_between_start_and_stop():
    events = result_events(_two_commands(), CONTEXT)
    assert [type(e) for e in events] == [w.IntentsStart, w.Intent, w.Intent, w.IntentsStop]
    assert events[0].context == events[-1].context == CONTEXT
    assert [e.name for e in events[1:3]] == ["HassTurnOff", "HassTurnOn"]
    assert _entities(events[1]) == {"area": "Kitchen", "domain": "light"}
    assert _entities(events[2]) == {"name": "Front Door Lock", "domain": "lock"}
    assert [e.confidence for e in events[1:3]] == [0.98, 0.91]
    assert all(e.context == CONTEXT for e in events[1:3])


def test_one_command_in_commands_is_a_plain_intent():
    result = _two_commands()
    result.commands = result.commands[:1]  # type: ignore[attr-defined]
    [intent] = result_events(result)
    assert isinstance(intent, w.Intent) and intent.name == "HassTurnOff"


def test_no_commands_is_not_recognized_and_a_result_without_commands_stands_for_one():
    result = _two_commands()
    result.commands = []  # type: ignore[attr-defined]
    result.intent, result.top_intent, result.confidence = None, "HassTurnOn", 0.41
    [nr] = result_events(result)
    assert nr.text == "not recognized: not sure enough (best guess HassTurnOn, 41%)"
    plain = ParseResult("lights off", "HassTurnOff", 0.9, [_slot("domain", "light")])
    assert commands_of(plain) == [Command("HassTurnOff", 0.9, plain.slots)]
    assert commands_of(replace(plain, intent=None)) == []


def test_entities_keep_the_first_slot_of_each_name():
    slots = [_slot("name", "lamp", 0), _slot("area", "Hall", 9), _slot("name", "fan", 20)]
    assert [(e.name, e.value) for e in entities_of(slots)] == [("name", "lamp"),
                                                               ("area", "Hall")]


def test_the_compound_sentence_end_to_end(handler):
    """Several commands in one sentence: intents-start, one intent each, intents-stop."""
    text = "turn off the kitchen lights and lock the front door"
    assert len(handler.source.parse(text).commands) == 2
    events = handler.handle(Event("transcript", {"text": text}))
    assert [e.TYPE for e in events] == ["intents-start", "intent", "intent", "intents-stop"]
    assert [e.name for e in events[1:3]] == ["HassTurnOff", "HassTurnOn"]


def test_mqtt_and_wyoming_serve_one_engine_and_a_swap_reaches_both(source):
    engine = source.engine
    shared = ServedEngine(engine)
    mqtt = Handler(engine, DaemonConfig(), source=shared)
    wyoming = WyomingHandler(shared, DaemonConfig())
    assert mqtt.source is wyoming.source and mqtt.engine is engine
    other = IntentEngine.load(engine.bundle, check_golden=False)
    assert mqtt.swap(other) == source.served.model_id
    assert shared.engine is other and wyoming.source.engine is other
    [intent] = wyoming.handle(Event("recognize", {"text": KITCHEN}))
    assert intent.name == "HassTurnOff"
