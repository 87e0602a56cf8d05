"""OTA messages: the status round-trips with the wire form the agent has always published,
topics carry the site, bad payloads are ProtocolErrors."""

from __future__ import annotations

import inspect
import json

import pytest

from edge_slm.errors import ProtocolError
from edge_slm.protocols import Message
from edge_slm.protocols import ota as o

SAMPLES = {
    o.OtaStatus: [o.OtaStatus.progress(1024, 4096, 1.7e9 + 0.12345),
                  o.OtaStatus.progress(0, 0, 1.7e9),
                  o.OtaStatus.result(True, "installed and active", "slot b: en-int8-abc", 1.7e9),
                  o.OtaStatus.result(False, "signature not trusted", "no trusted key", 1.7e9)],
}


def test_every_message_class_has_a_sample_and_is_listed():
    found = {obj for obj in vars(o).values()
             if inspect.isclass(obj) and issubclass(obj, Message) and obj is not Message
             and not obj.__name__.startswith("_")}
    assert found == set(SAMPLES) == set(o.MESSAGES)


@pytest.mark.parametrize("msg", [m for ms in SAMPLES.values() for m in ms],
                         ids=lambda m: m.state)
def test_round_trip(msg):
    payload = msg.to_payload()
    assert isinstance(payload, bytes)
    assert type(msg).from_payload(payload) == msg
    assert type(msg).is_topic(msg.topic(site_id="kitchen"))


def test_wire_form_is_the_agents():
    progress = json.loads(SAMPLES[o.OtaStatus][0].to_payload())
    assert list(progress) == ["state", "received", "total", "at"]
    assert progress == {"state": "receiving", "received": 1024, "total": 4096,
                        "at": round(1.7e9 + 0.12345, 3)}
    result = json.loads(SAMPLES[o.OtaStatus][3].to_payload())
    assert result == {"state": "refused", "detail": "no trusted key",
                      "code": "signature not trusted", "at": 1.7e9}


def test_topics_carry_the_site():
    assert o.OtaStatus.topic(site_id="hall") == "edge-slm/hall/ota/status"
    assert o.OtaStatus.site_of("edge-slm/hall/ota/status") == "hall"
    assert not o.OtaStatus.is_topic("edge-slm/hall/status")
    assert o.frames_to_device("hall") == "edge-slm/hall/ota/in"
    assert o.frames_from_device("hall") == "edge-slm/hall/ota/out"
    assert o.OtaStatus.topic() == "edge-slm/+/ota/status"  # every site, to subscribe
    for bad in ("", "a/b", "+", "#", "a\x00"):
        with pytest.raises(ValueError, match="topic level"):
            o.frames_to_device(bad)
        with pytest.raises(ValueError, match="topic level"):
            o.frames_from_device(bad)
        if bad != "+":
            with pytest.raises(ValueError, match="topic level"):
                o.OtaStatus.topic(site_id=bad)


@pytest.mark.parametrize("payload", [
    b"", b"[]", b'{"state": "receiving", "at": 1}',
    b'{"state": "receiving", "received": 5, "total": 4, "at": 1}',
    b'{"state": "receiving", "received": 1, "total": 4, "at": 1, "code": "x"}',
    b'{"state": "installed", "detail": "d", "at": 1}',
    b'{"state": "installed", "code": "c", "detail": "d", "received": 1, "at": 1}',
    b'{"state": "lost", "code": "c", "at": 1}', b'{"state": "refused", "code": "c"}',
    b'{"state": "receiving", "received": "1", "total": 4, "at": 1}',
])
def test_bad_payloads_are_protocol_errors(payload):
    with pytest.raises(ProtocolError):
        o.OtaStatus.from_payload(payload)
