"""Fuzzing the flashing wire format and its two ends with hypothesis (serial and OTA carry the
same frames, docs/serial-protocol.md): COBS, `decode_frame` and every message's `decode`
(only FrameError), valid messages round-trip, `FrameDecoder.feed` on any bytes in any chunks
(never raises, keeps every intact frame), the receiving `Agent` fed hostile frame sequences
(never raises, answers only well-formed frames, never activates a bundle that does not
read), and the sender fed hostile answers (never raises; fails only with a FlashError).

Examples per target: the hypothesis profile (tests/conftest.py)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from fuzz_strategies import mutated  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edge_slm.bundle import REQUIRED_MEMBERS, read_bundle, write_bundle  # noqa: E402
from firmware_tools import serial_protocol as sp  # noqa: E402

u8, u16, u32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
ids = st.one_of(st.binary(min_size=32, max_size=32), st.just(bytes(32)))
messages = st.one_of(
    st.builds(sp.Hello, u8, u16, u32, ids), st.builds(sp.HelloAck, u8, u16, u8, u32, ids),
    st.builds(sp.Data, u32, st.binary(max_size=64)), st.builds(sp.Ack, u32),
    st.builds(sp.Nak, u32), st.builds(sp.Done, u32, ids),
    st.builds(sp.Status, u8, st.text(max_size=20), ids))
"""Every message type with any field values its layout can hold."""
NONCE = bytes(range(1, 1 + sp.NONCE_BYTES))
"""The transfer every generated frame belongs to."""


def _frame(msg, seq=1, nonce=NONCE):
    return sp.encode_frame(msg, seq, nonce)


@given(st.binary(max_size=600))
def test_cobs_round_trips_and_decodes_garbage_with_frame_errors_only(data):
    encoded = sp.cobs_encode(data)
    assert 0 not in encoded and sp.cobs_decode(encoded) == data
    for candidate in (data, encoded[:-1], bytes(reversed(encoded))):
        try:
            sp.cobs_decode(candidate)
        except sp.FrameError:
            pass


@given(msg=messages, seq=u16)
def test_every_valid_message_round_trips(msg, seq):
    frame = _frame(msg, seq)
    assert frame.endswith(sp.DELIMITER) and frame.count(0) == 1
    assert sp.decode_frame(frame[:-1]) == (seq, NONCE, msg)


@given(st.one_of(st.binary(max_size=80), messages.map(lambda m: _frame(m)[:-1]).flatmap(mutated)))
def test_decode_frame_raises_frame_error_only(data):
    try:
        sp.decode_frame(data)
    except sp.FrameError:
        pass


@given(code=st.sampled_from(sorted(sp.Message._REGISTRY)), payload=st.binary(max_size=80))
def test_every_message_decode_raises_frame_error_only(code, payload):
    try:
        msg = sp.Message.type_for(code).decode(payload)
    except sp.FrameError:
        return
    assert type(msg).decode(msg.encode()) == msg


pieces = st.lists(st.one_of(messages.map(lambda m: ("ok", _frame(m))),
                            st.binary(max_size=40).map(lambda b: ("junk", b)),
                            messages.map(lambda m: _frame(m)).flatmap(mutated)
                            .map(lambda b: ("junk", b))), max_size=12)


@given(parts=pieces, cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_frame_decoder_never_raises_and_keeps_every_intact_frame(parts, cuts):
    stream = bytearray()
    wanted = []
    for kind, data in parts:
        if kind == "ok":
            wanted.append(sp.decode_frame(data[:-1])[2])
        stream += data if kind == "ok" else data + sp.DELIMITER  # junk ends at a delimiter
    decoder, got, at = sp.FrameDecoder(), [], 0
    for cut in sorted(cuts) + [len(stream)]:
        got += [m for _, _, m in decoder.feed(bytes(stream[at:max(at, cut)]))]
        at = max(at, cut)
    # junk may decode to a frame by chance (a mutation that keeps the CRC): the intact ones
    # come out in order among whatever else did
    it = iter(got)
    assert all(any(w == g for g in it) for w in wanted), (wanted, got)


# -- the receiving agent -------------------------------------------------------------------


def _tiny_bundle() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        members = {name: name.encode() * 3 for name in REQUIRED_MEMBERS}
        return write_bundle(Path(d) / "t.slm", members, {"model_id": "tiny"}).read_bytes()


TINY = _tiny_bundle()
TINY_ID = hashlib.sha256(TINY).digest()


@st.composite
def _sessions(draw):
    """Frames a hostile or broken sender might write: handshakes for the tiny bundle or
    anything, data at any offset (pieces of the bundle, mutated or not), DONE, garbage."""
    total = draw(st.one_of(st.just(len(TINY)), u32))
    tid = draw(st.one_of(st.just(TINY_ID), ids))
    steps = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["hello", "data", "data", "data", "done", "junk", "any"]))
        if kind == "hello":
            version = draw(st.sampled_from([sp.PROTOCOL_VERSION] * 2 + [0, 1, 3]))
            steps.append(_frame(sp.Hello(version, draw(u16), total, tid)))
        elif kind == "data":
            at = draw(st.integers(0, len(TINY) + 8))
            chunk = TINY[at:at + draw(st.integers(0, 300))]
            if draw(st.booleans()):
                chunk = draw(mutated(chunk or b"x"))
            steps.append(_frame(sp.Data(draw(st.one_of(st.just(at), u32)), chunk)))
        elif kind == "done":
            steps.append(_frame(sp.Done(draw(st.one_of(st.just(total), u32)), tid)))
        elif kind == "junk":
            steps.append(draw(st.binary(max_size=30)) + draw(st.sampled_from([b"", b"\0"])))
        else:
            steps.append(_frame(draw(messages)))
    if draw(st.booleans()):  # a whole, good transfer with all that mixed in
        size = draw(st.integers(1, 256))
        good = [_frame(sp.Hello(sp.PROTOCOL_VERSION, size, len(TINY), TINY_ID))]
        good += [_frame(sp.Data(at, TINY[at:at + size])) for at in range(0, len(TINY), size)]
        good.append(_frame(sp.Done(len(TINY), TINY_ID)))
        for step in steps:
            good.insert(draw(st.integers(0, len(good))), step)
        steps = good
    return steps


@given(steps=_sessions())
def test_agent_survives_any_frames_and_activates_only_a_bundle_that_reads(steps):
    from firmware_tools.agent import Agent
    from firmware_tools.slots import SlotStore

    with tempfile.TemporaryDirectory() as d:
        store = SlotStore(Path(d))
        agent = Agent(store, self_test=read_bundle, max_frame=256, window=4,
                      insecure_unsigned=True)  # what it installs is the test's subject
        answers = sp.FrameDecoder()
        try:
            for step in steps:
                out = agent.receive(step)
                answers.feed(out)
            assert answers.dropped == 0  # every answer is a well-formed frame
            active = store.active_path()
            if active is not None:
                assert active.read_bytes() == TINY
            hypothesis.event("installed" if active is not None else "not installed")
        finally:
            agent.close()


@given(answers=st.lists(st.one_of(messages.map(_frame), st.binary(max_size=30)), max_size=20),
       ticks=st.lists(st.floats(0, 200), max_size=20))
def test_sender_survives_any_answers(answers, ticks):
    from firmware_tools.flash import FlashConfig, FlashSender

    sender = FlashSender(TINY, FlashConfig(max_frame=64, window=4), nonce=NONCE)
    sender.start(0.0)
    now = 0.0
    for i, data in enumerate(answers):
        now += ticks[i] if i < len(ticks) else 0.1
        sender.receive(data, now)
        sender.poll(now)
    assert sender.error is None or isinstance(sender.error, sp.FlashError)
