"""Native messages: every class round-trips, topics carry the site, bad payloads are
ProtocolErrors."""

from __future__ import annotations

import inspect
import json

import pytest

from edge_slm.errors import ProtocolError
from edge_slm.protocols import Message
from edge_slm.protocols import native as n

PARSE = {"text": "turn off the kitchen lights", "intent": "HassTurnOff", "confidence": 0.96,
         "slots": [{"name": "area", "value": "kitchen", "raw": "kitchen", "start": 13,
                    "end": 20, "confidence": 0.36}],
         "alternatives": [{"intent": "HassTurnOn", "confidence": 0.0044}]}
SAMPLES = {
    n.NativeQuery: [n.NativeQuery("q1", text="turn off the lights", lang="en"),
                    n.NativeQuery("q2", text="lights on", area="Kitchen"),
                    n.NativeQuery(7, texts=("turn on the lamp", "")), n.NativeQuery(None, "x")],
    n.NativeReply: [n.NativeReply("q1", "en-int8-abc", 3.25, result=PARSE),
                    n.NativeReply(7, "en-int8-abc", 9.0,
                                  results=(PARSE, {"error": "text is empty"}))],
    n.NativeError: [n.NativeError("q1", "not JSON"), n.NativeError(None, "empty payload")],
    n.NativeStatus: [n.NativeStatus("online", "en-int8-abc", "0.1.0"),
                     n.NativeStatus("offline")],
}


def test_every_message_class_has_a_sample_and_is_listed():
    found = {obj for obj in vars(n).values()
             if inspect.isclass(obj) and issubclass(obj, Message) and obj is not Message
             and not obj.__name__.startswith("_")}
    assert found == set(SAMPLES) == set(n.MESSAGES)


@pytest.mark.parametrize("msg", [m for ms in SAMPLES.values() for m in ms],
                         ids=lambda m: type(m).__name__)
def test_round_trip(msg):
    payload = msg.to_payload()
    assert isinstance(payload, bytes)
    assert type(msg).from_payload(payload) == msg
    assert type(msg).is_topic(msg.topic(site_id="kitchen"))


def test_reply_is_the_parse_object_plus_id_latency_and_model():
    obj = json.loads(SAMPLES[n.NativeReply][0].to_payload())
    assert obj == dict(PARSE, id="q1", latency_ms=3.25, model_id="en-int8-abc")
    batch = json.loads(SAMPLES[n.NativeReply][1].to_payload())
    assert batch == {"id": 7, "latency_ms": 9.0, "model_id": "en-int8-abc",
                     "results": [PARSE, {"error": "text is empty"}]}


def test_query_wire_form_leaves_out_absent_fields():
    assert json.loads(n.NativeQuery("a", text="hi").to_payload()) == {"id": "a", "text": "hi"}


def test_topics_carry_the_site():
    assert n.NativeQuery.topic(site_id="kitchen") == "edge-slm/kitchen/query"
    assert n.NativeQuery.topic() == "edge-slm/+/query"
    assert n.NativeReply.topic(site_id="kitchen") == "edge-slm/kitchen/intent"
    assert n.NativeError.topic(site_id="kitchen") == "edge-slm/kitchen/intent"
    assert n.NativeStatus.topic(site_id="kitchen") == "edge-slm/kitchen/status"
    assert n.NativeQuery.site_of("edge-slm/kitchen/query") == "kitchen"
    assert n.NativeQuery.site_of("edge-slm/kitchen/intent") is None
    assert n.NativeQuery.site_of("edge-slm/a/b/query") is None
    assert n.NativeQuery.site_of("other/kitchen/query") is None
    assert not n.NativeQuery.is_topic("edge-slm/+/query")
    for bad in ("a/b", "", "#", "a+"):
        with pytest.raises(ValueError):
            n.NativeQuery.topic(site_id=bad)


def test_exactly_one_of_text_and_texts():
    with pytest.raises(ProtocolError):
        n.NativeQuery("a")
    with pytest.raises(ProtocolError):
        n.NativeQuery("a", text="x", texts=("y",))
    with pytest.raises(ProtocolError):
        n.NativeReply("a", "m", 1.0)
    with pytest.raises(ProtocolError):
        n.NativeStatus("maybe")


@pytest.mark.parametrize("payload,match", [
    (b"", "empty"),
    (b"{", "not JSON"),
    (b"\xc3\x28", "not UTF-8"),
    (b"[]", "JSON object"),
    (b'{"id": "a"}', "exactly one"),
    (b'{"id": "a", "text": "x", "texts": ["y"]}', "exactly one"),
    (b'{"id": "a", "text": 5}', "'text'"),
    (b'{"id": "a", "text": null, "texts": "abc"}', "'texts'"),
    (b'{"id": "a", "texts": []}', "empty"),
    (b'{"id": "a", "texts": ["x", 2]}', "strings only"),
    (b'{"id": true, "text": "x"}', "'id'"),
    (b'{"id": 1.5, "text": "x"}', "'id'"),
    (b'{"id": "a", "text": "x", "lang": 1}', "'lang'"),
    (b'{"id": "a", "text": "x", "context": "kitchen"}', "'context'"),
    (b'{"id": "a", "text": "x", "context": {"area": 3}}', "'area'"),
    (b'{"id": "a", "text": "x", "context": {"area": " "}}', "area"),
    (b'{"id": "a", "text": "on \\ud800 lights"}', "lone UTF-16 surrogate"),
    (b'{"id": "a", "text": "x", "context": {"\\udc00": 1}}', "lone UTF-16 surrogate"),
    (b'{"text":"\\ud800"}', "surrogate"),  # fuzzing: the reply echoing it could not be sent
])
def test_malformed_query_raises_protocol_error(payload, match):
    with pytest.raises(ProtocolError, match=match):
        n.NativeQuery.from_payload(payload)


@pytest.mark.parametrize("cls,payload", [
    (n.NativeReply, b'{"id": "a", "error": "boom"}'),
    (n.NativeReply, b'{"id": "a", "model_id": "m", "latency_ms": 1}'),
    (n.NativeReply, b'{"id": "a", "model_id": "m", "results": [1]}'),
    (n.NativeReply, b'{"id": "a", "model_id": 3, "text": "x", "intent": null}'),
    (n.NativeError, b'{"id": "a"}'),
    (n.NativeStatus, b'{"state": "sleepy"}'),
    (n.NativeStatus, b'{"model_id": "m"}'),
])
def test_malformed_replies_raise_protocol_error(cls, payload):
    with pytest.raises(ProtocolError):
        cls.from_payload(payload)


@pytest.mark.parametrize("payload,want", [
    (b'{"id": "a", "text": 5}', "a"), (b'{"id": 3}', 3), (b'{"id": true}', None),
    (b"\xff", None), (b"[]", None), (b"", None), (b'{"id": "\\ud800"}', None),
    (b"\xff", None), (b"[]", None), (b"", None),
    (b'{"id": "\\udc00", "text": 5}', None),  # fuzzing: an id UTF-8 cannot carry
])
def test_peek_id_never_raises(payload, want):
    assert n.peek_id(payload) == want
