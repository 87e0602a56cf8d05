"""Hermes messages: every class round-trips, bad payloads are ProtocolErrors, and the wire
format is the `rhasspy-hermes` package's own (its classes parse ours and we parse theirs)."""

from __future__ import annotations

import inspect
import json

import pytest

from edge_slm.errors import EdgeSlmError, ProtocolError
from edge_slm.protocols import Message
from edge_slm.protocols import hermes as h

SLOT = h.HermesSlot("area", {"kind": "Unknown", "value": "kitchen"}, "area", "kitchen", 0.8,
                    h.SlotRange(13, 20, 13, 20))
NUMBER = h.HermesSlot("brightness", {"kind": "Number", "value": 50}, "brightness", "fifty",
                      0.9, h.SlotRange(22, 27, 22, 27))
SAMPLES = {
    h.NluQuery: h.NluQuery("turn off the kitchen lights", "kitchen", "q1",
                           ("HassTurnOff", "HassTurnOn"), "s1", "hey", "en", "data", 0.87,
                           {"name": "lamp"}),
    h.NluIntentParsed: h.NluIntentParsed("turn off the kitchen lights",
                                         h.HermesIntent("HassTurnOff", 0.96), "kitchen", "q1",
                                         (SLOT,), "s1"),
    h.NluIntent: h.NluIntent("set the light to fifty", h.HermesIntent("HassLightSet", 0.7),
                             "kitchen", "q2", (SLOT, NUMBER), "s2", "data", None, 0.5,
                             "set the light to fifty", "hey", "en-US"),
    h.NluIntentNotRecognized: h.NluIntentNotRecognized("sing a song", "garage", "q3", "d",
                                                       "s3"),
    h.NluError: h.NluError("text too long", "garage", "hermes/nlu/query", "s4"),
}


def message_classes():
    return [obj for obj in vars(h).values()
            if inspect.isclass(obj) and issubclass(obj, Message) and obj is not Message]


def test_every_message_class_has_a_sample_and_is_listed():
    found = set(message_classes())
    assert found == set(SAMPLES) == set(h.MESSAGES)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_round_trip(cls):
    msg = SAMPLES[cls]
    payload = msg.to_payload()
    assert isinstance(payload, bytes)
    assert cls.from_payload(payload) == msg
    assert cls.is_topic(msg.topic(intent_name="HassTurnOff"))


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_minimal_message_round_trips_with_nulls(cls):
    """Only the required fields: every key is still written, null when unset."""
    required = {h.NluQuery: ("x",), h.NluIntentParsed: ("x", h.HermesIntent("A", 0.5)),
                h.NluIntent: ("x", h.HermesIntent("A", 0.5)),
                h.NluIntentNotRecognized: ("x",), h.NluError: ("boom",)}[cls]
    msg = cls(*required)
    obj = json.loads(msg.to_payload())
    assert set(obj) == set(json.loads(SAMPLES[cls].to_payload()))
    assert obj["siteId"] == "default"
    assert cls.from_payload(msg.to_payload()) == msg


def test_topics():
    assert h.NluQuery.topic() == "hermes/nlu/query"
    assert h.NluIntentParsed.topic() == "hermes/nlu/intentParsed"
    assert h.NluIntentNotRecognized.topic() == "hermes/nlu/intentNotRecognized"
    assert h.NluError.topic() == "hermes/error/nlu"
    assert h.NluIntent.topic(intent_name="HassTurnOff") == "hermes/intent/HassTurnOff"
    assert h.NluIntent.topic() == "hermes/intent/#"
    assert h.NluIntent.is_topic("hermes/intent/HassTurnOn")
    assert not h.NluIntent.is_topic("hermes/intent/a/b")
    assert not h.NluIntent.is_topic("hermes/nlu/query")
    assert h.NluIntent.intent_name_of("hermes/intent/HassTurnOn") == "HassTurnOn"
    assert h.NluIntent.intent_name_of("hermes/nlu/query") is None
    assert h.NluQuery.is_topic("hermes/nlu/query")
    assert not h.NluQuery.is_topic("hermes/nlu/query/x")
    with pytest.raises(ValueError):
        h.NluIntent.topic(intent_name="a/b")


def test_query_defaults_site_and_reads_camel_case():
    q = h.NluQuery.from_payload(b'{"input": "hi", "intentFilter": ["A"], "siteId": null}')
    assert q.site_id == "default" and q.intent_filter == ("A",) and q.id is None
    q = h.NluQuery.from_payload('{"input": "hi", "siteId": "sat", "asrConfidence": 1}'
                                .encode())
    assert q.site_id == "sat" and q.asr_confidence == 1.0


def test_protocol_error_is_an_edge_slm_error():
    assert issubclass(ProtocolError, EdgeSlmError)


@pytest.mark.parametrize("payload,match", [
    (b"", "empty"),
    (b"  \n", "empty"),
    (b"{", "not JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[1, 2]", "JSON object"),
    (b'"turn on"', "JSON object"),
    (b"null", "JSON object"),
    (b'{"input": NaN}', "not JSON"),
    (b"[" * 100000, "not JSON"),
    (b'{"siteId": "kitchen"}', "'input' is missing"),
    (b'{"input": 42}', "'input' must be a string"),
    (b'{"input": "x", "siteId": 7}', "'siteId'"),
    (b'{"input": "x", "intentFilter": "HassTurnOn"}', "'intentFilter'"),
    (b'{"input": "x", "intentFilter": ["A", 3]}', "strings only"),
    (b'{"input": "x", "asrConfidence": "high"}', "'asrConfidence'"),
    (b'{"input": "x", "asrConfidence": true}', "'asrConfidence'"),
    (b'{"input": "x", "customEntities": []}', "'customEntities'"),
    (b'{"input": "x", "id": 5}', "'id'"),
    (b'{"input": "x\\ud800"}', "lone UTF-16 surrogate"),
    (b'{"input":"\\uda00","":""}', "surrogate"),  # fuzzing: intentParsed could not be sent
])
def test_malformed_query_raises_protocol_error(payload, match):
    with pytest.raises(ProtocolError, match=match):
        h.NluQuery.from_payload(payload)


@pytest.mark.parametrize("cls,payload", [
    (h.NluIntent, b'{"input": "x"}'),
    (h.NluIntent, b'{"input": "x", "intent": {"intentName": "A"}}'),
    (h.NluIntent, b'{"input": "x", "intent": {"intentName": "A", "confidenceScore": 1},'
                  b' "slots": {}}'),
    (h.NluIntent, b'{"input": "x", "intent": {"intentName": "A", "confidenceScore": 1},'
                  b' "slots": [{"entity": "a", "value": 3}]}'),
    (h.NluIntent, b'{"input": "x", "intent": {"intentName": "A", "confidenceScore": 1},'
                  b' "slots": [{"entity": "a", "value": {"value": 1}, "range": {"start": 1}}]}'),
    (h.NluIntentParsed, b'{"input": "x", "intent": []}'),
    (h.NluError, b'{"siteId": "x"}'),
    (h.NluIntentNotRecognized, b'{"input": null}'),
])
def test_malformed_replies_raise_protocol_error(cls, payload):
    with pytest.raises(ProtocolError):
        cls.from_payload(payload)


@pytest.mark.parametrize("payload,want", [
    (b'{"input": 1, "siteId": "sat", "sessionId": "s"}', ("sat", "s")),
    (b'{"siteId": 3}', ("default", None)),
    (b"\xff", ("default", None)),
    (b"[]", ("default", None)),
    (b"", ("default", None)),
    (b'{"siteId": "\\ud800", "sessionId": "a\\udfff"}', ("default", None)),
    (b'{"siteId": "\\ud800", "sessionId": "\\udfff"}', ("default", None)),  # fuzzing
])
def test_peek_site_never_raises(payload, want):
    assert h.peek_site(payload) == want


# -- conformance with the rhasspy-hermes package ---------------------------------------------


@pytest.fixture(scope="module")
def rh():
    pytest.importorskip("rhasspyhermes")
    import rhasspyhermes.intent as intent
    import rhasspyhermes.nlu as nlu

    return nlu, intent


def _theirs(rh, cls):
    return getattr(rh[0], cls.__name__)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_rhasspy_hermes_parses_our_payload(rh, cls):
    ours = SAMPLES[cls]
    theirs = _theirs(rh, cls).from_json(ours.to_payload().decode("utf-8"))
    assert theirs.site_id == ours.site_id
    assert json.loads(theirs.payload()) == json.loads(ours.to_payload())
    assert theirs.topic(intent_name="HassTurnOff") == ours.topic(intent_name="HassTurnOff")


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_our_keys_are_rhasspy_hermes_keys(rh, cls):
    ours = json.loads(SAMPLES[cls].to_payload())
    theirs = json.loads(_theirs(rh, cls).from_json(SAMPLES[cls].to_payload()).payload())
    assert list(ours) == list(theirs)


def test_we_parse_rhasspy_hermes_query(rh):
    nlu, _ = rh
    theirs = nlu.NluQuery(input="turn off the lights", site_id="kitchen", id="7",
                          intent_filter=["HassTurnOff"], session_id="s", lang="en",
                          custom_data="cd", asr_confidence=0.5,
                          custom_entities={"name": "lamp"})
    ours = h.NluQuery.from_payload(theirs.payload().encode("utf-8"))
    assert ours == h.NluQuery("turn off the lights", "kitchen", "7", ("HassTurnOff",), "s",
                              None, "en", "cd", 0.5, {"name": "lamp"})


def test_we_parse_rhasspy_hermes_intent_with_slots(rh):
    nlu, intent = rh
    theirs = nlu.NluIntent(
        input="set it to 5", intent=intent.Intent("HassLightSet", 0.9), site_id="a",
        slots=[intent.Slot(entity="brightness", value={"kind": "Number", "value": 5},
                           range=intent.SlotRange(10, 11, 10, 11))])
    ours = h.NluIntent.from_payload(theirs.payload().encode("utf-8"))
    assert ours.slots[0].range == h.SlotRange(10, 11, 10, 11)
    assert ours.slots[0].slot_name == "brightness" and ours.slots[0].raw_value == "5"
    assert ours.slots[0].value == {"kind": "Number", "value": 5}
