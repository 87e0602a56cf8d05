"""Home Assistant MQTT discovery and the diagnostics state topic: config topics and payloads
carry what Home Assistant needs, every value template reads a field the Diagnostics message
has (and renders to the expected state with Jinja), removal empties the same topics, the
Diagnostics message round-trips, and the tracker follows a real Handler's replies."""

from __future__ import annotations

import inspect
import json
import re

import pytest

from edge_slm import __version__
from edge_slm.daemon import DaemonConfig
from edge_slm.daemon import discovery as d
from edge_slm.daemon.handlers import Handler, Outgoing
from edge_slm.errors import ProtocolError
from edge_slm.protocols import Message
from edge_slm.protocols import diagnostics as dg
from edge_slm.protocols import hermes as h
from edge_slm.protocols import native as n

SITE = "kitchen"
HA_ID = re.compile(r"^[A-Za-z0-9_-]+$")
TEMPLATE_FIELD = re.compile(r"value_json\.(\w+)")
SAMPLES = [
    dg.Diagnostics(commands_per_hour=12.5, duty_cycle=0.2, updated_at=1.7e9,
                   last_intent="HassTurnOff", last_latency_ms=0.85,
                   home={"file": {"names": 3, "areas": 2, "floors": 0},
                         "home_assistant": {"names": 41, "areas": 7, "floors": 2}}),
    dg.Diagnostics(commands_per_hour=0.0, duty_cycle=1.0, updated_at=1.7e9),
]


def _configs(site=SITE, **kw):
    return {m.topic: json.loads(m.payload) for m in d.discovery_messages(site, **kw)}


# -- the Diagnostics message -----------------------------------------------------------------


def test_every_diagnostics_class_is_listed():
    found = {obj for obj in vars(dg).values()
             if inspect.isclass(obj) and issubclass(obj, Message)
             and obj.__module__ == dg.__name__}
    assert found == {type(m) for m in SAMPLES} == set(dg.MESSAGES)


@pytest.mark.parametrize("msg", SAMPLES, ids=("busy, with a home", "fresh"))
def test_diagnostics_round_trip(msg):
    assert dg.Diagnostics.from_payload(msg.to_payload()) == msg
    assert set(json.loads(msg.to_payload())) == set(dg.FIELDS)
    topic = msg.topic(site_id=SITE)
    assert topic == "edge-slm/kitchen/diagnostics"
    assert dg.Diagnostics.is_topic(topic) and dg.Diagnostics.site_of(topic) == SITE
    assert not dg.Diagnostics.is_topic("edge-slm/kitchen/telemetry")
    assert not dg.Diagnostics.is_topic("edge-slm/a/b/diagnostics")


@pytest.mark.parametrize("payload", [
    b"", b"[]", b'{"duty_cycle": 1, "updated_at": 1}',
    b'{"commands_per_hour": "many", "duty_cycle": 1, "updated_at": 1}',
    b'{"commands_per_hour": 1, "duty_cycle": 1.5, "updated_at": 1}',
    b'{"commands_per_hour": 1, "duty_cycle": 1, "updated_at": 1, "last_intent": 3}',
    b'{"commands_per_hour": 1, "duty_cycle": 1, "updated_at": 1, "last_latency_ms": -2}',
    b'{"commands_per_hour": 1, "duty_cycle": 1, "updated_at": 1, "home": [1]}',
    b'{"commands_per_hour": 1, "duty_cycle": 1, "updated_at": 1, "home": {"file": 3}}',
    b'{"commands_per_hour": 1, "duty_cycle": 1, "updated_at": 1, "home": {"file": {"names": 3}}}',
    b'{"commands_per_hour": 1, "duty_cycle": 1, "updated_at": 1,'
    b' "home": {"file": {"names": -1, "areas": 0, "floors": 0}}}',
])
def test_bad_diagnostics_payloads_raise_protocol_error(payload):
    with pytest.raises(ProtocolError):
        dg.Diagnostics.from_payload(payload)


# -- discovery configs -----------------------------------------------------------------------


def test_topics_are_one_per_entity_under_the_prefix():
    configs = _configs()
    assert len(configs) == 1 + len(d.SENSORS)
    assert "homeassistant/binary_sensor/edge_slm_kitchen/status/config" in configs
    for spec in d.SENSORS:
        assert f"homeassistant/sensor/edge_slm_kitchen/{spec.object_id}/config" in configs
    for topic in configs:
        prefix, component, node, object_id, last = topic.split("/")
        assert (prefix, last) == ("homeassistant", "config")
        assert component in ("sensor", "binary_sensor")
        assert HA_ID.match(node) and HA_ID.match(object_id)
    assert all(t.startswith("ha/") for t in _configs(prefix="ha"))


def test_messages_are_retained_json_with_what_home_assistant_needs():
    unique_ids = set()
    for msg in d.discovery_messages(SITE, version="9.9.9"):
        assert msg.retain and msg.qos == 1
        config = json.loads(msg.payload)
        for key in ("name", "unique_id", "state_topic", "value_template", "device",
                    "entity_category"):
            assert key in config, (msg.topic, key)
        assert config["entity_category"] == "diagnostic"
        assert config["device"] == {"identifiers": ["edge_slm_kitchen"],
                                    "name": "edge-slm kitchen", "model": "edge-slm",
                                    "manufacturer": d.MANUFACTURER, "sw_version": "9.9.9"}
        assert config["origin"]["name"] == "edge-slm"
        unique_ids.add(config["unique_id"])
    assert len(unique_ids) == 1 + len(d.SENSORS)


def test_sensors_read_the_diagnostics_topic_and_follow_the_status():
    for topic, config in _configs().items():
        if "/sensor/" not in topic:
            continue
        assert config["state_topic"] == dg.Diagnostics.topic(site_id=SITE)
        fields = TEMPLATE_FIELD.findall(config["value_template"])
        assert fields and set(fields) <= set(dg.FIELDS), config["value_template"]
        (availability,) = config["availability"]
        assert availability["topic"] == n.NativeStatus.topic(site_id=SITE)
        assert TEMPLATE_FIELD.findall(availability["value_template"]) == ["state"]
        assert (availability["payload_available"], availability["payload_not_available"]) == (
            n.ONLINE, n.OFFLINE)


def test_the_status_binary_sensor_reads_the_retained_status():
    config = _configs()["homeassistant/binary_sensor/edge_slm_kitchen/status/config"]
    assert config["state_topic"] == "edge-slm/kitchen/status"
    assert config["device_class"] == "connectivity"
    assert (config["payload_on"], config["payload_off"]) == ("online", "offline")
    assert "availability" not in config  # offline must read "off", not "unavailable"


def test_templates_render_the_expected_states():
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment()
    configs = _configs()
    status = json.loads(n.NativeStatus(n.ONLINE, "m", __version__).to_payload())
    expected = {
        "last_intent": ("HassTurnOff", "none"), "last_latency": ("0.85", "None"),
        "commands_per_hour": ("12.5", "0.0"), "duty_cycle": ("20.0", "100.0"),
    }
    for spec in d.SENSORS:
        config = configs[f"homeassistant/sensor/edge_slm_kitchen/{spec.object_id}/config"]
        template = env.from_string(config["value_template"])
        got = tuple(template.render(value_json=json.loads(m.to_payload())) for m in SAMPLES)
        assert got == expected[spec.object_id], spec.object_id
        assert env.from_string(config["availability"][0]["value_template"]).render(
            value_json=status) == "online"


def test_removal_empties_the_same_topics():
    removal = d.removal_messages(SITE)
    assert [m.topic for m in removal] == [m.topic for m in d.discovery_messages(SITE)]
    assert all(m.payload == b"" and m.retain for m in removal)


def test_sites_that_are_no_home_assistant_id_get_distinct_nodes():
    assert d.node_id("kitchen") == "edge_slm_kitchen"
    a, b = d.node_id("living.room"), d.node_id("living_room")
    assert HA_ID.match(a) and a != b
    assert HA_ID.match(d.node_id("salle à manger"))
    with pytest.raises(ValueError):
        d.node_id("a/b")
    with pytest.raises(ValueError):
        d.config_topic("sensor", SITE, "bad id")


# -- the tracker -----------------------------------------------------------------------------


def test_last_intent_from_each_kind_of_reply():
    parsed = h.NluIntentParsed("turn on the lamp", h.HermesIntent("HassTurnOn", 0.9))
    assert d.last_intent([Outgoing(parsed.TOPIC, parsed.to_payload())]) == "HassTurnOn"
    missed = h.NluIntentNotRecognized("blah")
    assert d.last_intent([Outgoing(missed.TOPIC, missed.to_payload())]) is None
    batch = ({"text": "a", "intent": "HassTurnOff"}, {"text": "b", "intent": "HassGetState"})
    reply = n.NativeReply("1", "m", 1.0, results=batch)
    assert d.last_intent([Outgoing("me/reply", reply.to_payload())]) == "HassGetState"
    error = n.NativeError("1", "not JSON")
    assert d.last_intent([Outgoing("edge-slm/x/intent", error.to_payload())]) is None
    assert d.last_intent([]) is None


def test_tracker_rate_limits_and_counts():
    tracker = d.DiagnosticsTracker(started_at=1000.0, min_interval_s=10.0)
    assert tracker.due(1000.0)  # the first snapshot says "nothing yet"
    first = dg.Diagnostics.from_payload(tracker.message(SITE, 1000.0).payload)
    assert (first.last_intent, first.last_latency_ms, first.commands_per_hour) == (
        None, None, 0.0)
    assert not tracker.due(1001.0)  # nothing changed
    reply = n.NativeReply("1", "m", 1.0, result={"text": "a", "intent": "HassTurnOff"})
    tracker.record([Outgoing("edge-slm/x/intent", reply.to_payload())], latency_ms=0.9)
    assert not tracker.due(1005.0)  # changed, but too soon
    assert tracker.due(1010.0)
    msg = tracker.message(SITE, 1010.0, duty_cycle=0.25)
    assert msg.retain and msg.topic == "edge-slm/kitchen/diagnostics"
    snap = dg.Diagnostics.from_payload(msg.payload)
    assert snap.last_intent == "HassTurnOff" and snap.last_latency_ms == 0.9
    assert snap.duty_cycle == 0.25
    assert snap.commands_per_hour == 60.0  # one command over the 60 s minimum window
    assert tracker.snapshot(1000.0 + 3600.0).commands_per_hour == 1.0


def test_tracker_reports_the_home_when_it_changes():
    tracker = d.DiagnosticsTracker(started_at=1000.0, min_interval_s=10.0)
    tracker.message(SITE, 1000.0)
    counts = {"mqtt_discovery": {"names": 2, "areas": 1, "floors": 0}}
    tracker.set_home(counts)
    assert tracker.due(1010.0)
    snap = dg.Diagnostics.from_payload(tracker.message(SITE, 1010.0).payload)
    assert snap.home == counts
    tracker.set_home(dict(counts))  # the same counts: nothing to publish
    assert not tracker.due(1100.0)


def test_tracker_follows_a_real_handler():
    from edge_slm.runtime.engine import IntentEngine

    handler = Handler(IntentEngine.load(), DaemonConfig())
    tracker = d.DiagnosticsTracker(started_at=0.0)
    out = handler.handle("hermes/nlu/query", b'{"input": "turn off the kitchen lights"}')
    tracker.record(out, latency_ms=1.5)
    assert tracker.last_intent == "HassTurnOff"
    out = handler.handle("edge-slm/default/query", b'{"id": 1, "text": "turn on the lamp"}')
    tracker.record(out, latency_ms=1.0)
    assert tracker.last_intent == "HassTurnOn"
    tracker.record(handler.handle("edge-slm/default/query", b"not json"), latency_ms=0.1)
    assert tracker.last_intent is None and tracker.messages == 3
