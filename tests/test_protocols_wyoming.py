"""Wyoming events and their framing: every event round-trips, the `wyoming` library's own
classes read what we write and we read what it writes, and the decoder answers hostile bytes
with frame errors (limits before memory is spent) and goes on where it can."""

from __future__ import annotations

import inspect
import io
import json

import pytest

from edge_slm.errors import ProtocolError
from edge_slm.protocols import wyoming as w
from edge_slm.protocols.wyoming_wire import (BAD_HEADER, BAD_JSON, LINE_TOO_LONG, TOO_LARGE,
                                             VERSION, Event, EventDecoder, FrameError,
                                             encode_event)

wyoming = pytest.importorskip("wyoming", reason="the dev extra installs the wyoming library")
from wyoming import asr as wy_asr  # noqa: E402
from wyoming import error as wy_error  # noqa: E402
from wyoming import event as wy_event  # noqa: E402
from wyoming import info as wy_info  # noqa: E402
from wyoming import intent as wy_intent  # noqa: E402

ATT = w.Attribution("edge-slm", "")
MODEL = w.IntentModel("en-int8-abc", ("en",), ATT, "int8 bundle", "en-int8-abc")
SAMPLES = {
    w.Describe: [w.Describe()],
    w.Info: [w.Info((w.IntentProgram("edge-slm", ATT, (MODEL,), "intents", "0.1.0"),)),
             w.Info()],
    w.Transcript: [w.Transcript("turn off the kitchen lights"),
                   w.Transcript("lights on", "en-US", {"conversation_id": "c1"})],
    w.Recognize: [w.Recognize("turn on the lamp"),
                  w.Recognize("lights on", {"area": "Kitchen"})],
    w.Intent: [w.Intent("HassTurnOff", (w.Entity("area", "kitchen"), w.Entity("domain", "light")),
                        0.999, context={"conversation_id": "c1"}),
               w.Intent("HassLightSet", (w.Entity("brightness", 50),), text="Done")],
    w.NotRecognized: [w.NotRecognized("not recognized: not a home command"),
                      w.NotRecognized(context={"area": "Hall"})],
    w.IntentsStart: [w.IntentsStart(), w.IntentsStart({"conversation_id": "c1"})],
    w.IntentsStop: [w.IntentsStop(), w.IntentsStop({"conversation_id": "c1"})],
    w.Error: [w.Error("bad JSON", "bad-json"), w.Error("oops")],
}


def _decode_all(data: bytes, **limits):
    return EventDecoder(**limits).feed(data)


def test_every_event_class_has_a_sample_and_is_listed():
    found = {obj for obj in vars(w).values()
             if inspect.isclass(obj) and issubclass(obj, w.WyomingEvent)
             and obj is not w.WyomingEvent and not obj.__name__.startswith("_")}
    assert found == set(SAMPLES) == set(w.EVENTS)
    assert len({cls.TYPE for cls in w.EVENTS}) == len(w.EVENTS)


@pytest.mark.parametrize("event", [e for es in SAMPLES.values() for e in es],
                         ids=lambda e: type(e).__name__)
def test_round_trip_through_the_wire(event):
    items = _decode_all(event.to_bytes())
    assert len(items) == 1 and isinstance(items[0], Event)
    assert type(event).is_type(items[0].type)
    assert type(event).from_event(items[0]) == event


@pytest.mark.parametrize("event", [e for es in SAMPLES.values() for e in es],
                         ids=lambda e: type(e).__name__)
def test_the_wyoming_library_reads_what_we_write(event):
    read = wy_event.read_event(io.BytesIO(event.to_bytes()))
    assert read is not None and read.type == event.TYPE
    assert read.data == event.to_data()


def test_wyoming_classes_rebuild_our_answers():
    intent = wy_intent.Intent.from_event(wy_event.read_event(io.BytesIO(
        SAMPLES[w.Intent][0].to_bytes())))
    assert intent.name == "HassTurnOff" and intent.context == {"conversation_id": "c1"}
    assert [(e.name, e.value) for e in intent.entities] == [("area", "kitchen"),
                                                            ("domain", "light")]
    info = wy_info.Info.from_event(wy_event.read_event(io.BytesIO(
        SAMPLES[w.Info][0].to_bytes())))
    program = info.intent[0]
    assert (program.name, program.version, program.installed) == ("edge-slm", "0.1.0", True)
    assert program.models[0].languages == ["en"] and program.attribution.name == "edge-slm"
    nr = wy_intent.NotRecognized.from_event(wy_event.read_event(io.BytesIO(
        SAMPLES[w.NotRecognized][0].to_bytes())))
    assert nr.text == "not recognized: not a home command"
    err = wy_error.Error.from_event(wy_event.read_event(io.BytesIO(
        SAMPLES[w.Error][0].to_bytes())))
    assert (err.text, err.code) == ("bad JSON", "bad-json")
    assert wy_intent.IntentsStart.is_type(w.IntentsStart.TYPE)
    assert wy_intent.IntentsStop.is_type(w.IntentsStop.TYPE)


def test_we_read_what_the_wyoming_library_writes():
    out = io.BytesIO()
    wy_event.write_event(wy_asr.Transcript("turn off the lights", language="en",
                                           context={"area": "Kitchen"}).event(), out)
    wy_event.write_event(wy_intent.Recognize("lock the door").event(), out)
    wy_event.write_event(wy_info.Describe().event(), out)
    items = _decode_all(out.getvalue())
    assert w.Transcript.from_event(items[0]) == w.Transcript("turn off the lights", "en",
                                                             {"area": "Kitchen"})
    assert w.Recognize.from_event(items[1]) == w.Recognize("lock the door")
    assert w.Describe.from_event(items[2]) == w.Describe()


def test_the_header_carries_version_and_data_length():
    frame = encode_event("intent", {"name": "HassTurnOn"})
    line, _, body = frame.partition(b"\n")
    header = json.loads(line)
    assert header == {"type": "intent", "version": VERSION, "data_length": len(body)}
    assert json.loads(body) == {"name": "HassTurnOn"}
    assert encode_event("describe") == b'{"type": "describe", "version": "%s"}\n' % (
        VERSION.encode())


def test_fed_a_byte_at_a_time_the_same_events_come_out():
    data = b"".join(e.to_bytes() for es in SAMPLES.values() for e in es)
    decoder = EventDecoder()
    items = [item for i in range(len(data)) for item in decoder.feed(data[i:i + 1])]
    assert items == _decode_all(data)
    assert len(items) == sum(len(es) for es in SAMPLES.values())


def test_inline_data_and_the_data_segment_are_merged():
    body = b'{"text": "lights on"}'
    line = json.dumps({"type": "transcript", "data": {"language": "en"},
                       "data_length": len(body)}).encode()
    items = _decode_all(line + b"\n" + body)
    assert items == [Event("transcript", {"language": "en", "text": "lights on"})]


def test_a_payload_is_skipped_and_the_stream_goes_on():
    line = json.dumps({"type": "audio-chunk", "payload_length": 5}).encode()
    items = _decode_all(line + b"\n" + b"\n\n{}\x00" + w.Describe().to_bytes())
    assert items == [Event("audio-chunk", {}), Event("describe", {})]


@pytest.mark.parametrize("garbage, code", [
    (b"this is not json", BAD_JSON),
    (b"[1, 2]", BAD_JSON),
    (b"\xff\xfe not utf-8", BAD_JSON),
    (b'{"type": "x\\ud800"}', BAD_JSON),
    (b"[" * 50_000, BAD_JSON),
    (b'{"type": "transcript", "data": {"text": "x", "context": {"n": 1e999}}}', BAD_JSON),
    (b'{"data": {}}', BAD_HEADER),
    (b'{"type": 7}', BAD_HEADER),
    (b'{"type": ""}', BAD_HEADER),
    (b'{"type": "' + b"x" * 101 + b'"}', BAD_HEADER),
    (b'{"type": "transcript", "data": [1]}', BAD_HEADER),
    (b'{"type": "transcript", "data_length": -1}', BAD_HEADER),
    (b'{"type": "transcript", "data_length": true}', BAD_HEADER),
    (b'{"type": "transcript", "payload_length": "9"}', BAD_HEADER),
])
def test_a_bad_header_line_is_an_error_and_the_next_event_is_read(garbage, code):
    items = _decode_all(garbage + b"\n" + w.Describe().to_bytes())
    assert len(items) == 2, items
    assert isinstance(items[0], FrameError) and items[0].code == code and not items[0].fatal
    assert items[1] == Event("describe", {})


def test_a_header_without_a_type_has_its_segments_skipped():
    line = json.dumps({"data_length": 7, "payload_length": 3}).encode()
    items = _decode_all(line + b"\n" + b'{"a":1}xyz' + w.Describe().to_bytes())
    assert [type(i) for i in items] == [FrameError, Event] and items[0].code == BAD_HEADER
    assert items[1].type == "describe"


def test_a_data_segment_that_is_no_object_is_an_error_and_the_stream_goes_on():
    line = json.dumps({"type": "transcript", "data_length": 4, "payload_length": 2}).encode()
    items = _decode_all(line + b"\n" + b"[1]!ab" + w.Describe().to_bytes())
    assert isinstance(items[0], FrameError) and items[0].code == BAD_JSON
    assert items[1:] == [Event("describe", {})]


@pytest.mark.parametrize("key", ["data_length", "payload_length"])
def test_a_huge_declared_length_is_refused_at_once_and_the_decoder_stops(key):
    decoder = EventDecoder(max_data=1024, max_payload=1024)
    line = json.dumps({"type": "transcript", key: 10 ** 12}).encode() + b"\n"
    items = decoder.feed(line)  # no byte of the segment was sent: refused from the header
    assert len(items) == 1 and items[0].code == TOO_LARGE and items[0].fatal
    assert "10000" in items[0].text and decoder.failed
    assert decoder.feed(w.Describe().to_bytes()) == []


def test_limits_are_inclusive():
    body = json.dumps({"text": "x" * 80}).encode()
    line = json.dumps({"type": "recognize", "data_length": len(body)}).encode()
    items = _decode_all(line + b"\n" + body, max_data=len(body), max_line=len(line))
    assert items == [Event("recognize", {"text": "x" * 80})]


def test_an_over_long_line_is_dropped_to_its_newline_once_and_the_stream_goes_on():
    decoder = EventDecoder(max_line=100)
    items = decoder.feed(b"{" + b"x" * 150)
    items += decoder.feed(b"y" * 10_000)  # still the same line: no second error, no buffer
    items += decoder.feed(b"\n" + w.Describe().to_bytes())
    assert [type(i) for i in items] == [FrameError, Event]
    assert items[0].code == LINE_TOO_LONG and not items[0].fatal
    assert len(decoder._line) == 0


def test_blank_lines_are_passed_over():
    assert _decode_all(b"\n\r\n  \n" + w.Describe().to_bytes()) == [Event("describe", {})]


@pytest.mark.parametrize("cls, data, words", [
    (w.Transcript, {}, "'text' is missing"),
    (w.Transcript, {"text": 5}, "'text' must be a string"),
    (w.Transcript, {"text": "x", "context": "kitchen"}, "'context' must be an object"),
    (w.Transcript, {"text": "x", "language": ["en"]}, "'language'"),
    (w.Recognize, {"text": None}, "'text' must be a string"),
    (w.Intent, {"name": "X", "entities": [{"value": 1}]}, "'entities'"),
    (w.Intent, {"name": "X", "confidence": "high"}, "'confidence'"),
    (w.Info, {"intent": [{"name": "p", "attribution": {"name": "a", "url": ""},
                          "installed": "yes"}]}, "'installed'"),
    (w.Info, {"intent": {}}, "'intent' must be an array"),
    (w.Error, {"code": "x"}, "'text' is missing"),
])
def test_bad_event_data_is_a_protocol_error(cls, data, words):
    with pytest.raises(ProtocolError, match=words):
        cls.from_event(Event(cls.TYPE, data))


def test_an_event_of_another_type_is_refused():
    assert not w.Transcript.is_type("recognize")
    with pytest.raises(ProtocolError, match="not 'transcript'"):
        w.Transcript.from_event(Event("recognize", {"text": "x"}))
