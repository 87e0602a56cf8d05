"""Fuzzing the Wyoming entry points with hypothesis: the event decoder (any bytes, cut
anywhere: only events and frame errors come out, nothing after a fatal one, it never raises)
and the handler on the real bundle (any event the decoder lets through: it never raises, and
every answer is a frame the decoder reads back as one event).

Examples per target: the hypothesis profile (tests/conftest.py)."""

from __future__ import annotations

import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
from fuzz_strategies import DEEP, json_values, mutated, objects_with, texts  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edge_slm.protocols import wyoming as w  # noqa: E402
from edge_slm.protocols.wyoming_wire import Event, EventDecoder, FrameError  # noqa: E402

VALID = [w.Transcript("turn off the kitchen lights", "en", {"area": "Kitchen"}).to_bytes(),
         w.Recognize("lock the front door").to_bytes(), w.Describe().to_bytes(),
         json.dumps({"type": "audio-chunk", "payload_length": 4}).encode() + b"\n\x00\x01\n{",
         w.Info().to_bytes()]
KEYS = ("text", "language", "context", "name", "entities", "area", "conversation_id")
streams = st.lists(st.one_of(st.binary(max_size=80), st.sampled_from(VALID + DEEP),
                             *[mutated(v) for v in VALID]), max_size=6).map(b"\n".join)


@given(stream=streams, cuts=st.lists(st.integers(0, 400), max_size=5))
def test_the_decoder_never_raises_and_stops_after_a_fatal_error(stream, cuts):
    decoder = EventDecoder(max_line=2048, max_data=1024, max_payload=1024)
    at, items = 0, []
    for cut in sorted(cuts) + [len(stream)]:
        items += decoder.feed(stream[at:cut])
        at = max(at, cut)
    for i, item in enumerate(items):
        assert isinstance(item, (Event, FrameError))
        if isinstance(item, Event):
            assert isinstance(item.type, str) and item.type and isinstance(item.data, dict)
        elif item.fatal:
            assert i == len(items) - 1 and decoder.failed


@pytest.fixture(scope="module")
def handler():
    from edge_slm.daemon import DaemonConfig
    from edge_slm.daemon.served import ServedEngine
    from edge_slm.daemon.wyoming_handler import WyomingHandler
    from edge_slm.runtime.engine import IntentEngine

    return WyomingHandler(ServedEngine(IntentEngine.load()),
                          DaemonConfig(max_text_chars=200, rate_limit=0))


data = st.one_of(
    objects_with(KEYS),
    st.fixed_dictionaries({"text": texts}, optional={
        "language": st.one_of(st.sampled_from(["en", "de", "en-US"]), json_values),
        "context": st.one_of(st.fixed_dictionaries({"area": st.one_of(texts, json_values)}),
                             json_values)}))


@given(kind=st.sampled_from(["transcript", "recognize", "describe", "intent", "x"]), data=data)
def test_the_handler_never_raises_and_every_answer_reads_back(handler, kind, data):
    frame = json.dumps({"type": kind, "data": data}).encode() + b"\n"
    events = [e for e in EventDecoder().feed(frame) if isinstance(e, Event)]
    for event in events:
        for answer in handler.handle(event, "10.0.0.1"):
            assert isinstance(answer, w.WyomingEvent)
            back = EventDecoder().feed(answer.to_bytes())
            assert len(back) == 1 and isinstance(back[0], Event), back
            assert type(answer).from_event(back[0]) == answer
