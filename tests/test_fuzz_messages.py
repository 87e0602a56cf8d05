"""Fuzzing the message entry points with hypothesis: every Hermes, native and OTA status
message's `from_payload` (only ProtocolError), the daemon's handler from payload to replies
(never raises; every reply is JSON the protocol reads back), the peek helpers (never raise),
`serve --serial`'s line feed and `parse --jsonl`'s `answer_line` (one answer object per
line, never raises, always writable as UTF-8).

Examples per target: the hypothesis profile (tests/conftest.py; scripts/soak.sh runs
"soak"). A crash found here is fixed where it is and pinned as a plain test beside the
module's others."""

from __future__ import annotations

import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
from fuzz_strategies import (  # noqa: E402
    json_payloads,
    json_values,
    raw_json,
    texts,
)
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edge_slm.errors import ProtocolError  # noqa: E402
from edge_slm.protocols.base import lone_surrogate  # noqa: E402
from edge_slm.protocols import hermes as h  # noqa: E402
from edge_slm.protocols import native as n  # noqa: E402
from edge_slm.protocols import ota  # noqa: E402

HERMES_KEYS = ("input", "siteId", "id", "intentFilter", "sessionId", "wakewordId", "lang",
               "customData", "asrConfidence", "customEntities", "intent", "slots", "error",
               "context", "asrTokens", "rawInput")
NATIVE_KEYS = ("id", "text", "texts", "lang", "context", "model_id", "latency_ms", "results",
               "intent", "error", "state", "version")
OTA_KEYS = ("state", "received", "total", "detail", "code", "at")
VALID = [h.NluQuery("turn on the lamp", "kitchen", "q1", ("HassTurnOn",)).to_payload(),
         n.NativeQuery("q", texts=("a", "b"), area="Hall").to_payload(),
         ota.OtaStatus.progress(10, 20, 1.0).to_payload()]
TEXTS = ["turn off the kitchen lights", "set the bedroom to 20 degrees", "what time is it"]

words = st.one_of(texts, st.sampled_from(TEXTS),
                  st.lists(st.sampled_from(TEXTS + ["the", "lights", "50%"]), max_size=8)
                  .map(" ".join))
"""Text the engine gets: commands, pieces of them, and anything."""


@pytest.mark.parametrize("cls", h.MESSAGES + n.MESSAGES + ota.MESSAGES,
                         ids=lambda c: c.__name__)
@given(data=st.data())
def test_from_payload_raises_protocol_error_only(cls, data):
    keys = HERMES_KEYS if cls in h.MESSAGES else NATIVE_KEYS if cls in n.MESSAGES else OTA_KEYS
    payload = data.draw(json_payloads(keys, VALID))
    try:
        msg = cls.from_payload(payload)
    except ProtocolError:
        return
    again = msg.to_payload()  # what was accepted can be written out again
    assert isinstance(again, bytes) and json.loads(again.decode("utf-8"))


@given(json_payloads(HERMES_KEYS + NATIVE_KEYS, VALID))
def test_peeks_never_raise(payload):
    site, session = h.peek_site(payload)
    assert isinstance(site, str) and (session is None or isinstance(session, str))
    assert n.peek_id(payload) is None or isinstance(n.peek_id(payload), (str, int))


# -- the handler: payload in, replies out ------------------------------------------------------


@pytest.fixture(scope="module")
def handler():
    from edge_slm.daemon import DaemonConfig
    from edge_slm.daemon.handlers import Handler
    from edge_slm.runtime.engine import IntentEngine, default_bundle_path

    config = DaemonConfig(site_areas={"kitchen": "Kitchen"}, max_text_chars=200)
    return Handler(IntentEngine.load(default_bundle_path("int8")), config)


hermes_queries = st.fixed_dictionaries(
    {"input": words},
    optional={"siteId": st.one_of(st.sampled_from(["kitchen", "default"]), texts),
              "id": texts, "sessionId": texts, "lang": st.sampled_from(["en", "de", "en-US"]),
              "intentFilter": st.lists(st.sampled_from(["HassTurnOn", "HassTurnOff", "x"])),
              "customEntities": st.dictionaries(texts, json_values, max_size=2),
              "customData": texts, "asrConfidence": st.floats(0, 1)})
native_queries = st.one_of(
    st.fixed_dictionaries({"id": st.one_of(texts, st.integers()), "text": words},
                          optional={"context": st.fixed_dictionaries({"area": texts}),
                                    "lang": st.sampled_from(["en", "fr"])}),
    st.fixed_dictionaries({"id": texts, "texts": st.lists(words, min_size=1, max_size=70)}))
utf8 = texts.filter(lambda t: lone_surrogate(t) is None)
properties = st.fixed_dictionaries(
    {}, optional={"ResponseTopic": st.one_of(utf8, st.just("replies/x")),
                  "CorrelationData": st.one_of(st.binary(max_size=16), utf8)})
"""MQTT 5 properties as paho hands them over (`mqtt.received_properties`): strings are
strict UTF-8 (paho decodes them so; a lone surrogate cannot arrive), correlation data bytes."""


def _check_replies(out):
    assert isinstance(out, list)
    for item in out:
        assert isinstance(item.topic, str) and item.topic
        obj = json.loads(item.payload.decode("utf-8"))  # valid UTF-8 JSON, always
        assert isinstance(obj, dict)


@given(topic=st.sampled_from(["hermes/nlu/query", "edge-slm/kitchen/query",
                              "edge-slm/hall/query", "edge-slm/kitchen/intent", "elsewhere"]),
       payload=st.one_of(hermes_queries.map(raw_json), native_queries.map(raw_json),
                         json_payloads(HERMES_KEYS + NATIVE_KEYS, VALID)),
       props=properties)
def test_handler_answers_any_payload_without_raising(handler, topic, payload, props):
    _check_replies(handler.handle(topic, payload, props))
    _check_replies(handler.error_reply(topic, payload, props, "internal error: Fuzz"))


@pytest.mark.parametrize("reply_to", ["replies/x", "edge-slm/kitchen/reply/x"])
def test_correlation_data_holding_a_lone_surrogate_is_echoed(handler, reply_to):
    """Found by the soak run: a str correlation datum with a lone surrogate raised
    UnicodeEncodeError out of the handler."""
    props = {"ResponseTopic": reply_to, "CorrelationData": "\ud800"}
    for payload in (b"", b'{"text": "turn on the light"}'):
        _check_replies(handler.handle("edge-slm/kitchen/query", payload, props))


# -- serve --serial: bytes in, one answer per line ---------------------------------------------


class _NoPort:
    """SerialLines needs a port only to read and write; feed() uses neither."""

    timeout = 0.2


lines = st.lists(st.one_of(words.map(lambda t: t.encode("utf-8", "surrogatepass")),
                           native_queries.map(raw_json),
                           json_payloads(("text", "context"), VALID), st.binary(max_size=40)),
                 max_size=6)


def _feed_all(engine, stream, cuts=()):
    from edge_slm.daemon.serial_lines import SerialLines

    serial = SerialLines(engine, _NoPort(), max_line=300)
    answers, at = [], 0
    for cut in sorted(cuts) + [len(stream)]:  # arbitrary read boundaries
        answers += serial.feed(stream[at:max(at, cut)])
        at = max(at, cut)
    for answer in answers:
        json.dumps(answer, ensure_ascii=False).encode("utf-8")  # writable as a line (poll)
    return answers


@given(chunks=lines, cuts=st.lists(st.integers(0, 200), max_size=4))
def test_serial_lines_feed_answers_every_line(handler, chunks, cuts):
    stream = b"".join(c.replace(b"\n", b" ") + b"\n" for c in chunks)
    assert len(_feed_all(handler.engine, stream, cuts)) == len(chunks)


def test_serial_lines_answer_a_lone_surrogate(handler):
    _feed_all(handler.engine, b'{"text":"\\ud800"}\n')


@given(lines.map(lambda chunks: chunks[0] if chunks else b""))
def test_answer_line_answers_any_line(handler, raw):
    from edge_slm.runtime.lines import answer_line

    answer = answer_line(handler.engine, raw, 1, plain_text=True)
    json.dumps(answer, ensure_ascii=False).encode("utf-8")


def test_answer_line_of_deep_json(handler):
    from edge_slm.runtime.lines import answer_line

    assert "error" in answer_line(handler.engine, b"[" * 100_000, 1)


def test_lone_surrogates_are_answered_with_errors(handler):
    """Found by fuzzing: the replies echoed the surrogate and could not be encoded."""
    out = handler.handle("hermes/nlu/query", b'{"input":"\\uda00","":""}')
    assert [o.topic for o in out] == ["hermes/error/nlu"]
    assert "surrogate" in json.loads(out[0].payload)["error"]
    out = handler.handle("edge-slm/kitchen/query", b'{"id": "\\udc00", "text": "\\ud800"}')
    reply = json.loads(out[0].payload)
    assert reply["id"] is None and "surrogate" in reply["error"]
