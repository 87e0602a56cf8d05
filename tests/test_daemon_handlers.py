"""The pure handler: messages in, the list of messages to publish out, with a real engine on
the shipped int8 bundle. No broker, no sleeps: the clock is a fake."""

from __future__ import annotations

import json

import pytest

from edge_slm.daemon import BrokerAddress, DaemonConfig, parse_broker_url
from edge_slm.daemon.handlers import Handler, Outgoing, hermes_value
from edge_slm.protocols import hermes as h
from edge_slm.protocols import native as n
from edge_slm.runtime.engine import IntentEngine, default_bundle_path

QUERY = "hermes/nlu/query"
TEXT = "turn off the kitchen lights"


class FakeClock:
    """Each reading is 4 ms after the previous one."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        self.t += 0.004
        return self.t


@pytest.fixture(scope="module")
def bundle():
    # the shipped bundle: these tests are about the protocol, and a model trained in the
    # session (the small profile) may answer a borderline sentence either way from run to run
    return default_bundle_path("int8")


def _engine(bundle, threshold=None):
    engine = IntentEngine.load(bundle)
    if threshold is not None:
        engine.threshold = threshold
    return engine


@pytest.fixture(scope="module")
def engine(bundle):
    """The engine at threshold 0.5: a retrained model keeps its answers, and a runner-up
    (below 1 - top) can never pass, so intent filters are predictable."""
    return _engine(bundle, 0.5)


@pytest.fixture(scope="module")
def loose(bundle):
    """Every top intent is accepted (threshold 0)."""
    return _engine(bundle, 0.0)


@pytest.fixture(scope="module")
def deaf(bundle):
    """Nothing is ever sure enough (threshold above 1)."""
    return _engine(bundle, 1.01)


def handler(engine, **config):
    return Handler(engine, DaemonConfig(**config), clock=FakeClock())


def hermes_query(text=TEXT, **fields):
    return h.NluQuery(text, **fields).to_payload()


def decoded(out):
    return [(o.topic, json.loads(o.payload)) for o in out]


def expected_slots(result):
    """Hermes slots of a ParseResult, written out independently of the handler."""
    out = []
    for s in result.slots:
        number = isinstance(s.value, (int, float)) and not isinstance(s.value, bool)
        said = s.start is not None  # an implied slot (fixed, the satellite's area) has no range
        out.append({"entity": s.name, "slotName": s.name,
                    "rawValue": s.raw if said else str(s.value),
                    "value": {"kind": "Number" if number else "Unknown",
                              "value": s.value if number else str(s.value)},
                    "confidence": round(s.confidence, 4),
                    "range": {"start": s.start, "end": s.end, "rawStart": s.start,
                              "rawEnd": s.end} if said else None})
    return out


# -- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url,want", [
    ("mqtt://127.0.0.1:1883", BrokerAddress("127.0.0.1", 1883)),
    ("mqtt://hub", BrokerAddress("hub", 1883)),
    ("mqtts://hub", BrokerAddress("hub", 8883, tls=True)),
    ("mqtt://user:p%40ss@hub:1884", BrokerAddress("hub", 1884, False, "user", "p@ss")),
    ("mqtt://[::1]:1883/", BrokerAddress("::1", 1883)),
])
def test_parse_broker_url(url, want):
    assert parse_broker_url(url) == want


@pytest.mark.parametrize("url", ["127.0.0.1:1883", "http://hub", "mqtt://", "mqtt://hub:x",
                                 "mqtt://hub/topic", "mqtt://hub?x=1", "mqtt://hub:70000"])
def test_bad_broker_url(url):
    with pytest.raises(ValueError):
        parse_broker_url(url)


@pytest.mark.parametrize("kw", [
    {"mqtt_version": "4"}, {"qos": 3}, {"site_ids": ("a/b",)}, {"site_ids": ("",)},
    {"site_areas": {"kitchen": " "}}, {"max_text_chars": 0}, {"keepalive_s": -1},
    {"tls_ca": "ca.pem"}, {"broker": "mqtts://hub", "tls_key": "k.pem"},
    {"broker": "ftp://hub"}, {"max_packet_bytes": 100}, {"max_packet_bytes": True},
])
def test_config_refuses_bad_values(kw):
    with pytest.raises(ValueError):
        DaemonConfig(**kw)


def test_config_defaults():
    c = DaemonConfig()
    assert c.address == BrokerAddress("127.0.0.1", 1883)
    assert c.mqtt_version == "5" and c.qos == 1 and c.site_ids == ()
    assert c.status_topic_site == "default" and c.mqtt_client_id == "edge-slm-default"
    assert c.serves("anything")
    c = DaemonConfig(site_ids=("kitchen", "hall"))
    assert c.status_topic_site == "kitchen" and c.mqtt_client_id == "edge-slm-kitchen"
    assert c.serves("hall") and not c.serves("garage")


def test_subscriptions_and_status(engine):
    assert handler(engine).subscriptions() == [QUERY, "edge-slm/+/query"]
    hd = handler(engine, site_ids=("kitchen", "hall"), qos=0)
    assert hd.subscriptions() == [QUERY, "edge-slm/kitchen/query", "edge-slm/hall/query"]
    on, off = hd.status(online=True), hd.status(online=False)
    assert on.topic == off.topic == "edge-slm/kitchen/status"
    assert on.retain and off.retain and on.qos == 0
    import edge_slm

    assert json.loads(on.payload) == {"state": "online", "model_id": engine.bundle.model_id,
                                      "version": edge_slm.__version__}
    assert json.loads(off.payload)["state"] == "offline"


def test_hermes_value():
    assert hermes_value(50) == {"kind": "Number", "value": 50}
    assert hermes_value(-2.5) == {"kind": "Number", "value": -2.5}
    assert hermes_value("kitchen") == {"kind": "Unknown", "value": "kitchen"}
    assert hermes_value(True) == {"kind": "Unknown", "value": "True"}
    assert hermes_value(float("nan"))["kind"] == "Unknown"


# -- Hermes ------------------------------------------------------------------------------------


def test_hermes_recognized_echoes_the_query(engine):
    result = engine.parse(TEXT)
    assert result.intent == "HassTurnOff", "the shipped model knows this one"
    payload = hermes_query(site_id="kitchen", id="q1", session_id="s1", wakeword_id="hey",
                           lang="en", custom_data="cd", asr_confidence=0.8)
    out = handler(engine).handle(QUERY, payload, None)
    assert [o.topic for o in out] == ["hermes/nlu/intentParsed", "hermes/intent/HassTurnOff"]
    assert all(o.qos == 1 and not o.retain and not o.properties for o in out)
    intent = {"intentName": "HassTurnOff", "confidenceScore": round(result.confidence, 4)}
    parsed, full = (json.loads(o.payload) for o in out)
    assert parsed == {"input": TEXT, "intent": intent, "siteId": "kitchen", "id": "q1",
                      "slots": expected_slots(result), "sessionId": "s1"}
    assert full == {"input": TEXT, "intent": intent, "siteId": "kitchen", "id": "q1",
                    "slots": expected_slots(result), "sessionId": "s1", "customData": "cd",
                    "asrTokens": None, "asrConfidence": 0.8, "rawInput": TEXT,
                    "wakewordId": "hey", "lang": "en"}
    for slot in full["slots"]:
        if slot["range"] is None:  # implied (a fixed slot such as domain): no words
            assert slot["rawValue"] == str(slot["value"]["value"])
        else:
            assert TEXT[slot["range"]["start"]:slot["range"]["end"]] == slot["rawValue"]


def test_hermes_conformance_with_rhasspy_hermes(engine):
    pytest.importorskip("rhasspyhermes")
    from rhasspyhermes.nlu import NluIntent, NluIntentNotRecognized, NluIntentParsed, NluQuery

    query = NluQuery(input=TEXT, site_id="sat", id="r1", session_id="s", custom_data="x")
    out = handler(engine).handle(NluQuery.topic(), query.payload().encode("utf-8"), None)
    parsed = NluIntentParsed.from_json(out[0].payload)
    full = NluIntent.from_json(out[1].payload)
    assert out[1].topic == NluIntent.topic(intent_name=full.intent.intent_name)
    assert NluIntent.is_topic(out[1].topic) and out[0].topic == NluIntentParsed.topic()
    assert parsed.intent.intent_name == full.intent.intent_name == "HassTurnOff"
    assert 0 < full.intent.confidence_score <= 1
    assert (full.site_id, full.id, full.session_id, full.custom_data) == ("sat", "r1", "s", "x")
    for slot in full.slots:
        assert slot.slot_name == slot.entity
        if slot.range is not None:
            assert TEXT[slot.start:slot.end] == slot.raw_value
    none = NluQuery(input="turn off the kitchen lights", site_id="sat", id="r2",
                    intent_filter=["HassNevermind"])
    out = handler(engine).handle(NluQuery.topic(), none.payload().encode("utf-8"), None)
    msg = NluIntentNotRecognized.from_json(out[0].payload)
    assert out[0].topic == NluIntentNotRecognized.topic() and msg.id == "r2"


def test_hermes_not_recognized(deaf):
    out = handler(deaf).handle(QUERY, hermes_query(site_id="a", id="1", session_id="s",
                                                   custom_data="c"), None)
    assert decoded(out) == [("hermes/nlu/intentNotRecognized",
                             {"input": TEXT, "siteId": "a", "id": "1", "customData": "c",
                              "sessionId": "s"})]


def test_empty_transcript_is_not_recognized_not_an_error(engine):
    out = handler(engine).handle(QUERY, hermes_query("  "), None)
    assert [o.topic for o in out] == ["hermes/nlu/intentNotRecognized"]


def test_intent_filter_with_the_top_intent_answers_as_without(engine):
    plain = handler(engine).handle(QUERY, hermes_query(), None)
    both = handler(engine).handle(QUERY, hermes_query(intent_filter=("HassTurnOff", "X")), None)
    empty = handler(engine).handle(QUERY, hermes_query(intent_filter=()), None)
    assert plain == both == empty


def test_intent_filter_never_lowers_the_bar(engine):
    """The filter excludes the (sure) top intent: its runners-up are far below the threshold."""
    result = engine.parse(TEXT)
    runner_up = next(a.intent for a in result.alternatives if a.intent is not None)
    out = handler(engine).handle(QUERY, hermes_query(intent_filter=(runner_up,)), None)
    assert [o.topic for o in out] == ["hermes/nlu/intentNotRecognized"]


def test_intent_filter_takes_the_best_allowed_alternative(loose):
    result = loose.parse(TEXT)
    alt = [a for a in result.alternatives if a.intent is not None][1]
    out = handler(loose).handle(QUERY, hermes_query(intent_filter=(alt.intent, "Nope")), None)
    assert [o.topic for o in out] == ["hermes/nlu/intentParsed", f"hermes/intent/{alt.intent}"]
    full = json.loads(out[1].payload)
    assert full["intent"] == {"intentName": alt.intent,
                              "confidenceScore": round(alt.confidence, 4)}
    assert full["intent"]["confidenceScore"] < result.confidence
    assert full["slots"] == expected_slots(result)


def test_site_restriction(engine):
    hd = handler(engine, site_ids=("kitchen",))
    assert hd.handle(QUERY, hermes_query(site_id="garage"), None) == []
    assert hd.handle(QUERY, hermes_query(), None) == []  # no siteId: "default"
    assert len(hd.handle(QUERY, hermes_query(site_id="kitchen"), None)) == 2
    assert hd.handle(QUERY, b'{"input": 3, "siteId": "garage"}', None) == []
    assert hd.handle(QUERY, b"{", None) == []
    bad = hd.handle(QUERY, b'{"input": 3, "siteId": "kitchen"}', None)
    assert [o.topic for o in bad] == ["hermes/error/nlu"]
    native = n.NativeQuery("1", TEXT).to_payload()
    assert hd.handle("edge-slm/garage/query", native, None) == []
    assert len(hd.handle("edge-slm/kitchen/query", native, None)) == 1


def test_the_sites_area_is_the_area_heard_in(loose):
    """A satellite's configured area goes to the engine with its queries (Hermes and native),
    which answers with it where the command means the satellite's room."""
    text = "turn off the lights"
    hd = handler(loose, site_areas={"kitchen-sat": "Kitchen"})
    full = json.loads(hd.handle(QUERY, hermes_query(text, site_id="kitchen-sat"), None)[1]
                      .payload)
    assert full["slots"] == expected_slots(loose.parse(text, area="Kitchen"))
    other = json.loads(hd.handle(QUERY, hermes_query(text, site_id="hall"), None)[1].payload)
    assert other["slots"] == expected_slots(loose.parse(text))
    native = hd.handle("edge-slm/kitchen-sat/query", n.NativeQuery("1", text).to_payload(),
                       None)
    assert json.loads(native[0].payload)["slots"] == \
        loose.parse(text, area="Kitchen").to_dict()["slots"]
    said = n.NativeQuery("2", text, area="Hall").to_payload()  # the query's own wins
    native = hd.handle("edge-slm/kitchen-sat/query", said, None)
    assert json.loads(native[0].payload)["slots"] == \
        loose.parse(text, area="Hall").to_dict()["slots"]


def test_the_shipped_model_fills_the_satellites_area_and_the_domain():
    shipped = IntentEngine.load()
    hd = handler(shipped, site_areas={"kitchen-sat": "Kitchen"})
    out = hd.handle(QUERY, hermes_query("turn off the lights", site_id="kitchen-sat"), None)
    slots = {s["slotName"]: s for s in json.loads(out[1].payload)["slots"]}
    # the satellite's area in the home's spelling: the shipped home writes "kitchen"
    assert slots["area"]["value"]["value"] == "kitchen" and slots["area"]["range"] is None
    assert slots["domain"]["value"]["value"] == "light" and slots["domain"]["range"] is None
    everywhere = hd.handle(QUERY, hermes_query("turn off all the lights in the house",
                                               site_id="kitchen-sat"), None)
    assert "area" not in {s["slotName"] for s in json.loads(everywhere[1].payload)["slots"]}


def test_site_area_does_not_override_a_said_area(engine):
    result = engine.parse(TEXT)
    assert "area" in {s.name for s in result.slots}, result
    hd = handler(engine, site_areas={"hall-sat": "Hall"})
    full = json.loads(hd.handle(QUERY, hermes_query(site_id="hall-sat"), None)[1].payload)
    assert full["slots"] == expected_slots(result)


def test_custom_entities_become_slots(engine):
    result = engine.parse(TEXT)
    out = handler(engine).handle(
        QUERY, hermes_query(custom_entities={"color": "red", "area": "ignored", "n": 2}), None)
    slots = json.loads(out[1].payload)["slots"]
    assert slots[:len(result.slots)] == expected_slots(result)
    extra = {s["slotName"]: s for s in slots[len(result.slots):]}
    assert set(extra) == {"color", "n"}  # "area" was said, so the custom one is dropped
    assert extra["color"]["value"] == {"kind": "Unknown", "value": "red"}
    assert extra["n"]["value"] == {"kind": "Number", "value": 2}
    assert extra["color"]["range"] is None and extra["color"]["confidence"] == 1.0


def test_language(engine):
    hd = handler(engine)
    assert len(hd.handle(QUERY, hermes_query(lang="en-US"), None)) == 2
    (err,) = decoded(hd.handle(QUERY, hermes_query(lang="de", site_id="x", session_id="s"),
                               None))
    assert err[0] == "hermes/error/nlu" and "de" in err[1]["error"]
    assert err[1]["siteId"] == "x" and err[1]["sessionId"] == "s"


BAD_HERMES = {
    "empty": b"",
    "blank": b"   ",
    "not-json": b"{not json",
    "not-utf8": b'{"input": "\xff\xfe"}',
    "array": b"[1]",
    "string": b'"turn on the light"',
    "null": b"null",
    "nan": b'{"input": NaN}',
    "deep": b"[" * 200000,
    "no-input": b'{"siteId": "default"}',
    "input-number": b'{"input": 42}',
    "filter-string": b'{"input": "x", "intentFilter": "HassTurnOn"}',
    "confidence-string": b'{"input": "x", "asrConfidence": "high"}',
    "long-text": json.dumps({"input": "lights " * 800}).encode(),
    "megabyte": json.dumps({"input": "x" * 1_000_000}).encode(),
    "lone-surrogate": b'{"input": "on \\ud800", "siteId": "\\udfff", "sessionId": "\\udfff"}',
}


@pytest.mark.parametrize("name", list(BAD_HERMES))
def test_bad_hermes_payload_is_answered_with_an_error(engine, name):
    out = handler(engine).handle(QUERY, BAD_HERMES[name], None)
    assert len(out) == 1 and out[0].topic == "hermes/error/nlu"
    err = h.NluError.from_payload(out[0].payload)
    assert err.error and err.site_id == "default"


def test_error_keeps_site_and_session_of_a_readable_query(engine):
    out = handler(engine).handle(
        QUERY, b'{"input": 5, "siteId": "sat", "sessionId": "s9"}', None)
    err = h.NluError.from_payload(out[0].payload)
    assert (err.site_id, err.session_id) == ("sat", "s9") and "'input'" in err.error


# -- native ------------------------------------------------------------------------------------


def native(site="kitchen", **fields):
    return f"edge-slm/{site}/query", n.NativeQuery(**fields).to_payload()


def test_native_reply_is_the_parse_object(engine):
    out = handler(engine).handle(*native(id="a1", text=TEXT, lang="en"), None)
    assert len(out) == 1 and out[0].topic == "edge-slm/kitchen/intent"
    assert json.loads(out[0].payload) == dict(engine.parse(TEXT).to_dict(), id="a1",
                                              latency_ms=4.0, model_id=engine.bundle.model_id)


def test_native_batch_keeps_order_and_reports_bad_items(engine):
    texts = ("turn on the kitchen light", "", TEXT, "x" * 1001)
    (out,) = handler(engine).handle(*native(id=9, texts=texts), None)
    reply = json.loads(out.payload)
    assert reply["id"] == 9 and reply["model_id"] == engine.bundle.model_id
    assert reply["latency_ms"] == 4.0
    results = reply["results"]
    assert len(results) == 4
    assert results[0] == engine.parse(texts[0]).to_dict()
    assert results[2] == engine.parse(TEXT).to_dict()
    assert "empty" in results[1]["error"] and "too long" in results[3]["error"]


def test_native_batch_limit(engine):
    (out,) = handler(engine, max_batch=2).handle(*native(id="b", texts=("a", "b", "c")), None)
    assert json.loads(out.payload) == {"id": "b", "error": "too many texts (3; at most 2)"}


BAD_NATIVE = {
    "empty": (b"", None),
    "not-json": (b"{", None),
    "not-utf8": (b'{"id": "a", "text": "\xc3\x28"}', None),
    "array": (b"[]", None),
    "no-text": (b'{"id": "a"}', "a"),
    "text-and-texts": (b'{"id": "a", "text": "x", "texts": ["y"]}', "a"),
    "text-number": (b'{"id": 4, "text": 5}', 4),
    "texts-not-list": (b'{"id": "a", "texts": "abc"}', "a"),
    "texts-number": (b'{"id": "a", "texts": ["x", 2]}', "a"),
    "id-bool": (b'{"id": true, "text": "x"}', None),
    "empty-text": (b'{"id": "a", "text": ""}', "a"),
    "long-text": (json.dumps({"id": "a", "text": "x" * 5000}).encode(), "a"),
    "megabyte": (json.dumps({"id": "a", "text": "x" * 1_000_000}).encode(), None),
    "other-language": (b'{"id": "a", "text": "licht aus", "lang": "de"}', "a"),
    "lone-surrogate": (b'{"id": "a", "text": "on \\ud800"}', "a"),
    "surrogate-id": (b'{"id": "\\ud800", "text": "x"}', None),
}


@pytest.mark.parametrize("name", list(BAD_NATIVE))
def test_bad_native_payload_is_answered_with_an_error(engine, name):
    payload, want_id = BAD_NATIVE[name]
    out = handler(engine).handle("edge-slm/kitchen/query", payload, None)
    assert len(out) == 1 and out[0].topic == "edge-slm/kitchen/intent"
    obj = json.loads(out[0].payload)
    assert set(obj) == {"id", "error"} and obj["id"] == want_id and obj["error"]
    assert n.NativeError.from_payload(out[0].payload) == n.NativeError(want_id, obj["error"])


def test_response_topic_and_correlation_data(engine):
    props = {"ResponseTopic": "edge-slm/kitchen/reply/7", "CorrelationData": b"\x00\x01"}
    (out,) = handler(engine).handle(*native(id="c", text=TEXT), props)
    assert out.topic == "edge-slm/kitchen/reply/7"
    assert out.properties == {"CorrelationData": b"\x00\x01"}
    (err,) = handler(engine).handle("edge-slm/kitchen/query", b"{", props)
    assert err.topic == "edge-slm/kitchen/reply/7"
    assert err.properties == {"CorrelationData": b"\x00\x01"}
    (only_cd,) = handler(engine).handle(*native(id="c", text=TEXT), {"CorrelationData": b"k"})
    assert only_cd.topic == "edge-slm/kitchen/intent" and only_cd.properties == {
        "CorrelationData": b"k"}
    (out,) = handler(engine).handle(*native(id="c", text=TEXT), {"ResponseTopic": ""})
    assert out.topic == "edge-slm/kitchen/intent" and "intent" in json.loads(out.payload)


@pytest.mark.parametrize("bad", [
    "client/7/reply", "zigbee2mqtt/front_door/set", "edge-slm/kitchen/reply",
    "edge-slm/kitchen/replyx/1", "edge-slm/hall/reply/1", "edge-slm/kitchen/reply/+",
    "edge-slm/kitchen/reply/#", "edge-slm/kitchen/query", "hermes/nlu/query",
    "edge-slm/kitchen/reply/a\x00b",
])
def test_a_response_topic_outside_the_prefix_is_refused(engine, bad, caplog):
    """Replies go only under the response prefix (default edge-slm/<site>/reply/); any other
    response topic is refused: an error on the site's own reply topic, and a warning."""
    props = {"ResponseTopic": bad, "CorrelationData": b"k"}
    (out,) = handler(engine).handle(*native(id="c", text=TEXT), props)
    assert out.topic == "edge-slm/kitchen/intent" and out.properties == {"CorrelationData": b"k"}
    reply = json.loads(out.payload)
    assert reply["id"] == "c" and "response topic" in reply["error"]
    assert repr(bad) in caplog.text
    (err,) = handler(engine).error_reply("edge-slm/kitchen/query", b"{", props, "boom")
    assert err.topic == "edge-slm/kitchen/intent" and json.loads(err.payload)["error"] == "boom"


def test_the_response_prefix_is_a_setting(engine):
    hd = handler(engine, response_prefix="replies/")
    (out,) = hd.handle(*native(id="c", text=TEXT), {"ResponseTopic": "replies/me/1"})
    assert out.topic == "replies/me/1" and "intent" in json.loads(out.payload)
    (out,) = hd.handle(*native(id="c", text=TEXT),
                       {"ResponseTopic": "edge-slm/kitchen/reply/1"})
    assert out.topic == "edge-slm/kitchen/intent" and "error" in json.loads(out.payload)
    for bad in ("", "a/+/", "#", "x\x00/", "{area}/"):
        with pytest.raises(ValueError):
            DaemonConfig(response_prefix=bad)


def test_hermes_ignores_response_topic(engine):
    out = handler(engine).handle(QUERY, hermes_query(), {"ResponseTopic": "client/reply"})
    assert [o.topic for o in out] == ["hermes/nlu/intentParsed", "hermes/intent/HassTurnOff"]


def test_error_reply_and_unknown_topics(engine):
    hd = handler(engine, site_ids=("kitchen",))
    (err,) = hd.error_reply(QUERY, b'{"siteId": "kitchen", "input": "x"}', None, "boom")
    assert err.topic == "hermes/error/nlu" and h.NluError.from_payload(err.payload).error == "boom"
    assert hd.error_reply(QUERY, b'{"siteId": "garage"}', None, "boom") == []
    (err,) = hd.error_reply("edge-slm/kitchen/query", b'{"id": 3}',
                            {"ResponseTopic": "edge-slm/kitchen/reply/1"}, "boom")
    assert err == Outgoing("edge-slm/kitchen/reply/1", b'{"id": 3, "error": "boom"}', 1, False,
                           {})
    assert hd.error_reply("edge-slm/garage/query", b"{}", None, "boom") == []
    assert hd.error_reply("some/topic", b"{}", None, "boom") == []
    assert hd.handle("some/topic", b"{}", None) == []
    assert hd.handle("edge-slm/kitchen/intent", b"{}", None) == []


def test_hermes_publishes_one_intent_per_command_of_a_compound_sentence():
    shipped = IntentEngine.load()
    text = "turn off the kitchen lights and what time is it"
    result = shipped.parse(text)
    assert [c.intent for c in result.commands] == ["HassTurnOff", "HassGetCurrentTime"]
    out = handler(shipped).handle(QUERY, hermes_query(text, id="q7"), None)
    assert [o.topic for o in out] == ["hermes/nlu/intentParsed", "hermes/intent/HassTurnOff",
                                      "hermes/nlu/intentParsed",
                                      "hermes/intent/HassGetCurrentTime"]
    first, second = json.loads(out[1].payload), json.loads(out[3].payload)
    assert first["id"] == second["id"] == "q7" and first["input"] == text
    assert {s["slotName"]: s["value"]["value"] for s in first["slots"]} == \
        {"area": "kitchen", "domain": "light"}
    assert second["slots"] == []
    # an intent filter keeps the commands it allows
    only = handler(shipped).handle(
        QUERY, hermes_query(text, intent_filter=["HassGetCurrentTime"]), None)
    assert [o.topic for o in only] == ["hermes/nlu/intentParsed",
                                       "hermes/intent/HassGetCurrentTime"]
