"""Names from the broker (`edge_slm.daemon.mqtt_home`), without a broker: Home Assistant MQTT
discovery configs (full and abbreviated keys, device-based configs, removals) and
Zigbee2MQTT's `bridge/devices` list as Zigbee2MQTT publishes it; the feed's topics, its
settling on an injected clock, its size and count limits, and malformed payloads skipped with
one log line each, never raised."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mqtt_fixtures import WAIT_S, Probe, mosquitto_fixture  # noqa: F401

from edge_slm.daemon import mqtt_home as mh
from edge_slm.daemon.home_sources import MQTT_DISCOVERY, ZIGBEE2MQTT, HomeSourcesConfig
from edge_slm.daemon.live_home import LiveHome, key

REPO = Path(__file__).resolve().parent.parent

DESK_LAMP = {  # as Zigbee2MQTT's Home Assistant integration publishes a light
    "availability": [{"topic": "zigbee2mqtt/bridge/state", "value_template":
                      "{{ value_json.state }}"}],
    "brightness": True, "brightness_scale": 254, "command_topic": "zigbee2mqtt/Desk Lamp/set",
    "device": {"identifiers": ["zigbee2mqtt_0x00158d0001a2b3c4"], "manufacturer": "IKEA",
               "model": "TRADFRI bulb E27", "name": "Desk Lamp", "suggested_area": "Study",
               "sw_version": "2.3.093", "via_device": "zigbee2mqtt_bridge_0x00124b00"},
    "name": None, "object_id": "desk_lamp", "origin": {"name": "Zigbee2MQTT", "sw": "2.1.0"},
    "schema": "json", "state_topic": "zigbee2mqtt/Desk Lamp",
    "unique_id": "0x00158d0001a2b3c4_light_zigbee2mqtt",
}
TASMOTA_PLUG = {  # abbreviated keys, as Tasmota-style firmwares send them
    "name": "Plug", "uniq_id": "A1B2C3_RL_1", "stat_t": "stat/plug/POWER",
    "cmd_t": "cmnd/plug/POWER", "dev": {"ids": ["A1B2C3"], "name": "Coffee Maker",
                                        "sa": "Kitchen"}}
DEVICES = [  # zigbee2mqtt/bridge/devices, trimmed to the keys that matter, types as sent
    {"ieee_address": "0x00124b0024c1b2a3", "type": "Coordinator", "friendly_name":
     "Coordinator", "definition": None, "disabled": False, "supported": True},
    {"ieee_address": "0x00158d0001a2b3c4", "type": "Router", "friendly_name": "Desk Lamp",
     "network_address": 12345, "supported": True, "disabled": False, "interview_completed": True,
     "definition": {"model": "LED1836G9", "vendor": "IKEA", "description": "TRADFRI bulb E27",
                    "exposes": [{"type": "light", "features": [
                        {"type": "binary", "name": "state", "property": "state"},
                        {"type": "numeric", "name": "brightness", "property": "brightness"}]},
                        {"type": "numeric", "name": "linkquality", "access": 1}],
                    "options": []}},
    {"ieee_address": "0x00158d0002b3c4d5", "type": "EndDevice", "friendly_name": "hall_motion",
     "disabled": False, "definition": {"model": "RTCGQ11LM", "vendor": "Aqara", "exposes": [
         {"type": "binary", "name": "occupancy", "property": "occupancy"},
         {"type": "numeric", "name": "illuminance", "property": "illuminance"},
         {"type": "numeric", "name": "battery", "property": "battery"}]}},
    {"ieee_address": "0x00158d0003c4d5e6", "type": "EndDevice",
     "friendly_name": "bedroom/climate", "definition": {"model": "WSDCGQ11LM", "exposes": [
         {"type": "numeric", "name": "temperature"}, {"type": "numeric", "name": "humidity"}]}},
    {"ieee_address": "0x00158d0004d5e6f7", "type": "Router",
     "friendly_name": "0x00158d0004d5e6f7", "definition": {"exposes": [{"type": "switch"}]}},
    {"ieee_address": "0x00158d0005e6f7a8", "type": "EndDevice", "friendly_name": "Remote",
     "definition": {"exposes": [{"type": "enum", "name": "action"}]}},
    {"ieee_address": "0x00158d0006f7a8b9", "type": "Router", "friendly_name": "Garage",
     "disabled": True, "definition": {"exposes": [{"type": "cover"}]}},
    {"ieee_address": "0x00158d0007a8b9c0", "type": "EndDevice", "friendly_name": "New",
     "definition": None, "interviewing": True},
    {"ieee_address": 7, "friendly_name": "Broken"},
    "not a device",
]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _feed(discovery="homeassistant", z2m="zigbee2mqtt", **kw):
    live, clock = LiveHome(), Clock()
    sources = HomeSourcesConfig(discovery_prefix=discovery, z2m_base_topic=z2m, **kw)
    return mh.MqttHomeFeed(live, sources, clock=clock), live, clock


def _names(found):
    return [(e.name, e.domain, e.area, e.device_class) for e, _ in found]


def test_a_discovery_config_names_its_entity_after_its_device():
    found = mh.discovery_entities("light", DESK_LAMP, "homeassistant/light/x/light/config")
    assert _names(found) == [("Desk Lamp", "light", "Study", None)]
    assert found[0][1] == "0x00158d0001a2b3c4_light_zigbee2mqtt"  # the unique_id
    # abbreviated keys; an entity name after its device's
    assert _names(mh.discovery_entities("switch", TASMOTA_PLUG, "t")) == [
        ("Coffee Maker Plug", "switch", "Kitchen", None)]
    # an entity name already starting with the device's is kept as it is
    sensor = {"name": "Hall Motion occupancy", "device_class": "motion",
              "device": {"name": "Hall Motion"}}
    assert _names(mh.discovery_entities("binary_sensor", sensor, "t")) == [
        ("Hall Motion occupancy", "binary_sensor", None, "motion")]
    # no device: the name alone, the topic as its id
    assert mh.discovery_entities("lock", {"name": "Front Door"}, "the/topic")[0][1] == "the/topic"


def test_configs_that_are_no_names_give_none():
    assert mh.discovery_entities("number", {"name": "Volume"}, "t") == []  # no such domain
    diag = dict(DESK_LAMP, entity_category="diagnostic")
    assert mh.discovery_entities("light", diag, "t") == []  # not exposed to Assist


def test_a_device_based_config_gives_each_component():
    config = {"dev": {"ids": "ea334450945afc", "name": "Kitchen", "sa": "Kitchen"},
              "o": {"name": "bla2mqtt"},
              "cmps": {"light_1": {"p": "light", "name": "Ceiling", "unique_id": "k1"},
                       "fan_1": {"platform": "fan", "name": None, "unique_id": "k2"},
                       "temp": {"p": "sensor", "name": "Temperature", "entity_category":
                                "diagnostic"}}}
    assert _names(mh.discovery_entities("device", config, "t")) == [
        ("Kitchen Ceiling", "light", "Kitchen", None), ("Kitchen", "fan", "Kitchen", None)]


@pytest.mark.parametrize("component,config,match", [
    ("light", [1, 2], "not a JSON object"),
    ("light", {"name": 5}, "'name'"),
    ("light", {"name": "X", "device": "Desk"}, "'device'"),
    ("light", {"name": None}, "no name"),
    ("light", {"name": "X", "device": {"suggested_area": ["Study"]}}, "suggested_area"),
    ("light", {"name": "X", "device_class": 3}, "device_class"),
    ("device", {"cmps": [1]}, "components"),
    ("device", {"cmps": {"a": {"name": "no platform"}}}, "platform"),
])
def test_malformed_configs_say_what_is_wrong(component, config, match):
    with pytest.raises(ValueError, match=match):
        mh.discovery_entities(component, config, "t")


def test_zigbee2mqtt_devices_become_names(caplog):
    caplog.set_level(logging.WARNING)
    found, bad = mh.z2m_entities(DEVICES)
    assert _names(found) == [("Desk Lamp", "light", None, None),
                             ("hall_motion", "binary_sensor", None, "occupancy"),
                             ("bedroom/climate", "sensor", None, "temperature")]
    assert [f[1] for f in found][0] == "0x00158d0001a2b3c4"  # the IEEE address as its id
    assert found[1][0].aliases == ("hall motion",) and found[2][0].aliases == ("climate",)
    assert bad == 2 and len(caplog.records) == 2  # one line per malformed device
    with pytest.raises(ValueError):
        mh.z2m_entities({"devices": []})


def test_the_feed_subscribes_to_its_topics_only():
    feed, _, _ = _feed(discovery="ha/disc", z2m="z2m")
    assert feed.topics() == ["ha/disc/+/+/config", "ha/disc/+/+/+/config", "z2m/bridge/devices"]
    assert feed.wants("ha/disc/light/desk/config")
    assert feed.wants("ha/disc/light/node/desk/config")
    assert feed.wants("z2m/bridge/devices")
    for topic in ("ha/disc/light/config", "ha/disc/light/a/b/c/config", "ha/light/x/config",
                  "ha/disc/light/x/state", "z2m/bridge/info", "hermes/nlu/query"):
        assert not feed.wants(topic), topic
    assert _feed(discovery=None)[0].topics() == ["zigbee2mqtt/bridge/devices"]
    assert not _feed(z2m=None)[0].wants("zigbee2mqtt/bridge/devices")


def test_the_feed_hands_over_once_a_burst_settles_and_follows_removals():
    feed, live, clock = _feed()
    topic = "homeassistant/light/0x00158d0001a2b3c4/light/config"
    feed.receive(topic, json.dumps(DESK_LAMP).encode())
    feed.receive("homeassistant/switch/A1B2C3/relay/config", json.dumps(TASMOTA_PLUG).encode())
    assert not feed.flush() and live.generation == 0  # the burst may go on
    clock.now += mh.SETTLE_S + 0.01
    assert feed.flush() and live.generation == 1
    assert live.merged.origin("name", "Desk Lamp").source == MQTT_DISCOVERY
    assert {a.name for a in live.merged.inventory.areas} == {"Study", "Kitchen"}
    assert not feed.flush(force=True)  # nothing changed since
    feed.receive(topic, b"")  # an empty retained payload: the config is gone
    assert feed.flush(force=True)
    assert live.merged.origin("name", "Desk Lamp") is None
    feed.receive("homeassistant/light/never/seen/config", b"")  # removing nothing changes none
    assert not feed.flush(force=True)


def test_a_steady_trickle_is_handed_over_after_max_delay():
    feed, live, clock = _feed(z2m=None)
    handed = []
    for i in range(int(mh.MAX_DELAY_S / 0.1) + 3):
        feed.receive(f"homeassistant/lock/door{i}/config",
                     json.dumps({"name": f"Door {i}"}).encode())
        if feed.flush():
            handed.append(i)
        clock.now += 0.1
    # never quiet for SETTLE_S, so handed over once MAX_DELAY_S had passed, not before
    assert handed and handed[0] * 0.1 >= mh.MAX_DELAY_S - 0.11


def test_zigbee2mqtt_list_replaces_the_last_one_and_discovery_wins_a_shared_name():
    feed, live, _ = _feed()
    feed.receive("zigbee2mqtt/bridge/devices", json.dumps(DEVICES).encode())
    feed.receive("homeassistant/light/x/light/config", json.dumps(DESK_LAMP).encode())
    assert feed.flush(force=True)
    assert live.merged.origin("name", "Desk Lamp").source == MQTT_DISCOVERY
    assert live.merged.origin("name", "hall_motion").source == ZIGBEE2MQTT
    feed.receive("zigbee2mqtt/bridge/devices", json.dumps(DEVICES[:2]).encode())
    assert feed.flush(force=True)
    assert live.merged.origin("name", "hall_motion") is None


@pytest.mark.parametrize("payload", [b"{not json", b"[" * 100000, b'"a string"',
                                     json.dumps({"name": 3}).encode()])
def test_malformed_payloads_change_nothing_and_are_logged_once(payload, caplog):
    feed, live, _ = _feed()
    topic = "homeassistant/light/x/light/config"
    feed.receive(topic, json.dumps(DESK_LAMP).encode())
    feed.flush(force=True)
    caplog.clear()
    caplog.set_level(logging.WARNING)
    feed.receive(topic, payload)
    feed.receive("zigbee2mqtt/bridge/devices", payload)
    assert not feed.flush(force=True)
    assert live.merged.origin("name", "Desk Lamp") is not None  # the last good config stays
    assert len(caplog.records) == 2
    assert feed.skipped[MQTT_DISCOVERY] == 1 and feed.skipped[ZIGBEE2MQTT] == 1


def test_payloads_over_their_limit_are_skipped_before_reading(caplog):
    feed, live, _ = _feed(z2m_max_payload_bytes=1000)
    big = json.dumps(DEVICES).encode()
    assert len(big) > 1000
    feed.receive("zigbee2mqtt/bridge/devices", big)
    feed.receive("homeassistant/light/x/config", b"{}", oversized=10 ** 9)  # the client's size
    assert not feed.flush(force=True)
    assert feed.skipped == {MQTT_DISCOVERY: 1, ZIGBEE2MQTT: 1}
    assert "at most 1000" in caplog.text


def test_at_most_max_discovery_configs_are_kept(monkeypatch):
    monkeypatch.setattr(mh, "MAX_DISCOVERY_CONFIGS", 3)
    feed, live, _ = _feed()
    for i in range(5):
        feed.receive(f"homeassistant/lock/d{i}/config", json.dumps({"name": f"D{i}"}).encode())
    feed.flush(force=True)
    assert len(feed.configs) == 3 and feed.skipped[MQTT_DISCOVERY] == 2
    feed.receive("homeassistant/lock/d0/config", json.dumps({"name": "Renamed"}).encode())
    assert feed.flush(force=True)  # one already kept may still change
    assert live.merged.inventory.entity("Renamed") is not None


def test_source_home_ids_and_areas():
    found = mh.discovery_entities("light", DESK_LAMP, "t")
    home = mh.source_home(MQTT_DISCOVERY, found + found, 0)
    assert [e.name for e in home.inventory.entities] == ["Desk Lamp"] and home.skipped == 1
    assert home.ids[key("name", "desk lamp")] == DESK_LAMP["unique_id"]
    assert [a.name for a in home.inventory.areas] == ["Study"]


# -- on a real broker, through a real engine ---------------------------------------------------

DESK_TOPIC = "homeassistant/light/0x00158d0001a2b3c4/light/config"
CEILING = {"name": "Ceiling", "unique_id": "kitchen_ceiling_1",
           "device": {"name": "Kitchen", "identifiers": ["k1"], "suggested_area": "Kitchen"}}


class Served:
    """An MqttDaemon on the shipped bundle, following the broker's home, in a thread."""

    def __init__(self, broker, site: str) -> None:
        from edge_slm.daemon import DaemonConfig
        from edge_slm.daemon.discovery import DiagnosticsTracker
        from edge_slm.daemon.handlers import Handler
        from edge_slm.daemon.mqtt import Backoff, MqttDaemon
        from edge_slm.runtime.engine import IntentEngine

        self.live = LiveHome()
        self.engine = self.live.attach(IntentEngine.load())
        sources = HomeSourcesConfig(discovery_prefix="homeassistant",
                                    z2m_base_topic="zigbee2mqtt")
        self.feed = mh.MqttHomeFeed(self.live, sources)
        config = DaemonConfig(broker=broker.url, site_ids=(site,), client_id=f"test-{site}",
                              discovery_prefix="homeassistant")  # our own sensors too
        self.daemon = MqttDaemon(Handler(self.engine, config), config,
                                 backoff=Backoff(min_s=0.05, max_s=0.5), home_feed=self.feed,
                                 live_home=self.live)
        self.daemon.diagnostics = DiagnosticsTracker(started_at=0.0, min_interval_s=0.0)
        self.thread = threading.Thread(target=self.daemon.run_forever, daemon=True)
        self.thread.start()
        assert self.daemon.ready.wait(WAIT_S), broker.log_text()

    def wait_for(self, done) -> None:
        """Wait for home changes until `done()` holds (fail after WAIT_S)."""
        deadline = time.monotonic() + WAIT_S
        while not done():
            left = deadline - time.monotonic()
            assert left > 0, f"the home never got there: {self.live.merged.to_dict()}"
            self.live.wait_for_change(self.live.generation, left)

    def stop(self) -> None:
        self.daemon.stop()
        self.thread.join(WAIT_S)


def _ask(probe, site, text, qid):
    probe.publish(f"edge-slm/{site}/query", json.dumps({"id": qid, "text": text}))
    reply = json.loads(probe.expect(f"edge-slm/{site}/intent").payload)
    assert reply["id"] == qid and reply["intent"], reply
    return [s["value"] for s in reply["slots"] if s["name"] == "name"]


def test_retained_discovery_and_zigbee2mqtt_change_how_names_resolve(mosquitto):
    probe = Probe(mosquitto, ["edge-slm/home/intent", "edge-slm/home/diagnostics"])
    # retained before the daemon starts: they come on subscribing
    probe.publish_retained(DESK_TOPIC, json.dumps(DESK_LAMP))
    probe.publish_retained("homeassistant/light/kitchen/ceiling/config", json.dumps(CEILING))
    probe.publish_retained("homeassistant/light/broken/config", b"{oops")  # skipped
    probe.publish_retained("homeassistant/lock/x/config", b'{"name": 5}')  # skipped
    others = [d for d in DEVICES if not isinstance(d, dict) or d["friendly_name"] != "Desk Lamp"]
    probe.publish_retained("zigbee2mqtt/bridge/devices", json.dumps(others))
    served = Served(mosquitto, "home")
    try:
        served.wait_for(lambda: served.live.merged.origin("name", "Desk Lamp") is not None
                        and served.live.merged.origin("name", "hall_motion") is not None)
        assert _ask(probe, "home", "turn on the desk lamp", "q1") == ["Desk Lamp"]
        assert _ask(probe, "home", "turn off the kitchen ceiling", "q2") == ["Kitchen Ceiling"]
        origin = served.live.merged.origin("name", "Desk Lamp")
        assert (origin.source, origin.id) == (MQTT_DISCOVERY, DESK_LAMP["unique_id"])
        assert served.feed.skipped[MQTT_DISCOVERY] == 2  # the two malformed configs
        # our own diagnostic sensors (retained under the same prefix) are no names
        assert not any(e.name.startswith("edge-slm")
                       for e in served.live.merged.inventory.entities)
        # an empty retained payload removes the device: it stops resolving
        probe.publish_retained(DESK_TOPIC, b"")
        served.wait_for(lambda: served.live.merged.origin("name", "Desk Lamp") is None)
        assert "Desk Lamp" not in _ask(probe, "home", "turn on the desk lamp", "q3")
        assert _ask(probe, "home", "turn off the kitchen ceiling", "q4") == ["Kitchen Ceiling"]
        assert served.daemon.handled == 4  # the home's messages are no queries
        # the diagnostics report the home by source
        expected = served.live.summary()
        assert expected[MQTT_DISCOVERY]["names"] == 1  # Kitchen Ceiling
        assert expected[ZIGBEE2MQTT]["names"] == 2  # hall_motion, bedroom/climate
        while json.loads(probe.expect("edge-slm/home/diagnostics").payload)["home"] != expected:
            pass  # earlier snapshots; expect() fails the test when the right one never comes
    finally:
        served.stop()
        for topic in ("homeassistant/light/kitchen/ceiling/config",
                      "homeassistant/light/broken/config", "homeassistant/lock/x/config",
                      "zigbee2mqtt/bridge/devices"):
            probe.publish_retained(topic, b"")
        probe.close()


def test_serve_follows_discovery_and_keeps_the_live_home_across_a_reload(mosquitto, tmp_path):
    """`edge-slm serve --discovery --home FILE` as a process: the file's and the broker's
    names both resolve; after SIGHUP the reloaded engine answers for the same merged home."""
    home = tmp_path / "home.yaml"
    home.write_text("areas: [{name: Study}]\n"
                    "entities: [{name: Desk Lamp, domain: light, area: Study}]\n")
    probe = Probe(mosquitto, ["edge-slm/proc/intent", "edge-slm/proc/status"])
    probe.publish_retained("homeassistant/light/kitchen/ceiling/config", json.dumps(CEILING))
    probe.publish_retained(DESK_TOPIC, json.dumps(DESK_LAMP))  # also in the file
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_slm", "--debug", "serve", "--broker", mosquitto.url,
         "--site-id", "proc", "--discovery", "--home", str(home)],
        stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO),
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    log.close()
    try:
        assert json.loads(probe.expect("edge-slm/proc/status", timeout=120).payload)[
            "state"] == "online"
        deadline = time.monotonic() + WAIT_S  # the retained configs settle after SETTLE_S
        while _ask(probe, "proc", "turn off the kitchen ceiling", "p1") != ["Kitchen Ceiling"]:
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
        assert _ask(probe, "proc", "turn on the desk lamp", "p2") == ["Desk Lamp"]
        proc.send_signal(signal.SIGHUP)
        assert json.loads(probe.expect("edge-slm/proc/status").payload)["state"] == "online"
        assert _ask(probe, "proc", "turn off the kitchen ceiling", "p3") == ["Kitchen Ceiling"]
        assert _ask(probe, "proc", "turn on the desk lamp", "p4") == ["Desk Lamp"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        for topic in ("homeassistant/light/kitchen/ceiling/config", DESK_TOPIC):
            probe.publish_retained(topic, b"")
        probe.close()
    text = (tmp_path / "serve.log").read_text()
    assert "home from the file + MQTT discovery" in text and "reloaded" in text
