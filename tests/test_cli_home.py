"""`edge-slm home show` as a process: a home file; a real mosquitto holding retained discovery
configs and a Zigbee2MQTT device list; Home Assistant's WebSocket API on loopback (the token
from the environment, never printed); the shipped fallback; bad input an error with exit
status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ha_fixtures import HomeAssistantServer
from mqtt_fixtures import Probe, mosquitto_fixture  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
TOKEN = "ha-token-for-the-cli-test"
HOME = """
floors: [{name: Upstairs}]
areas: [{name: Study, floor: Upstairs, aliases: [office]}]
entities:
  - {name: Desk Lamp, domain: light, area: Study, aliases: [reading light]}
"""


def home_show(*args, env=None, timeout=120):
    """(exit status, stdout, stderr) of `edge-slm home show ARGS`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_SLM_")}
    environ.update(PYTHONPATH=str(REPO), **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "edge_slm", "home", "show", *args],
                          capture_output=True, text=True, env=environ, cwd=str(REPO),
                          timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def home_file(tmp_path):
    path = tmp_path / "home.yaml"
    path.write_text(HOME)
    return path


def test_a_home_file_is_shown_with_where_each_name_came_from(home_file):
    rc, out, err = home_show("--home", str(home_file))
    assert rc == 0, err
    assert "sources: file 1 names" in out
    assert "  Desk Lamp  light  in Study  aliases: reading light  [file entities[0]]" in out
    assert "  Study  on Upstairs  aliases: office  [file areas[0]]" in out
    rc, out, err = home_show("--home", str(home_file), "--json")
    data = json.loads(out)
    assert data["fallback"] is False
    assert data["entities"] == [{"name": "Desk Lamp", "domain": "light", "area": "Study",
                                 "device_class": None, "aliases": ["reading light"],
                                 "source": "file", "id": "entities[0]"}]


def test_without_a_source_the_shipped_home_is_shown():
    rc, out, err = home_show("--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["fallback"] is True and data["sources"] == {}
    assert data["entities"] and {e["source"] for e in data["entities"]} == {"shipped"}


def test_retained_discovery_and_zigbee2mqtt_on_a_broker(mosquitto, home_file):
    probe = Probe(mosquitto, ["edge-slm/cli-home-test/unused"])
    lamp = {"name": None, "unique_id": "lamp-1",
            "device": {"name": "Desk Lamp", "suggested_area": "Attic"}}
    fan = {"name": "Fan", "uniq_id": "fan-1", "dev": {"name": "Ceiling", "sa": "Bedroom"}}
    devices = [{"ieee_address": "0x01", "type": "Coordinator", "friendly_name": "Coordinator",
                "definition": None},
               {"ieee_address": "0x02", "type": "Router", "friendly_name": "Hall Plug",
                "definition": {"exposes": [{"type": "switch", "features": []}]}}]
    retained = {"homeassistant/light/lamp/light/config": json.dumps(lamp),
                "homeassistant/fan/ceiling/config": json.dumps(fan),
                "homeassistant/light/bad/config": "{not json",
                "zigbee2mqtt/bridge/devices": json.dumps(devices)}
    for topic, payload in retained.items():
        probe.publish_retained(topic, payload)
    try:
        rc, out, err = home_show("--broker", mosquitto.url, "--discovery", "--z2m", "--json")
        assert rc == 0, err
        data = json.loads(out)
        by_name = {e["name"]: e for e in data["entities"]}
        assert by_name["Desk Lamp"]["source"] == "mqtt_discovery"
        assert by_name["Desk Lamp"]["area"] == "Attic" and by_name["Desk Lamp"]["id"] == "lamp-1"
        assert by_name["Ceiling Fan"]["domain"] == "fan"
        assert by_name["Hall Plug"] == {"name": "Hall Plug", "domain": "switch", "area": None,
                                        "device_class": None, "aliases": [],
                                        "source": "zigbee2mqtt", "id": "0x02"}
        assert data["sources"]["mqtt_discovery"]["skipped"] == 1  # the malformed config
        assert "not JSON" in err  # ...said once on stderr
        # the home file wins a name both have: its area, its id
        rc, out, err = home_show("--broker", mosquitto.url, "--discovery", "--home",
                                 str(home_file))
        assert "  Desk Lamp  light  in Study  aliases: reading light  [file entities[0]]" in out
        assert "  Ceiling Fan  fan  in Bedroom  [mqtt_discovery fan-1]" in out
    finally:
        for topic in retained:
            probe.publish_retained(topic, b"")
        probe.close()


def test_home_assistant_is_read_with_the_token_from_the_environment():
    with HomeAssistantServer(TOKEN) as ha:
        rc, out, err = home_show("--ha-url", ha.url, env={"EDGE_SLM_HA_TOKEN": TOKEN})
        assert rc == 0, err
        assert "  Desk Lamp  light  in Study  aliases: reading light  " \
               "[home_assistant light.desk_lamp]" in out
        assert "  Living Room  on Ground Floor  aliases: lounge  [home_assistant living_room]" \
            in out
        rc, out, err = home_show("--ha-url", ha.url, env={"EDGE_SLM_HA_TOKEN": "wrong-token"})
        assert rc == 2 and "refused the access token" in err
        assert "wrong-token" not in err + out and TOKEN not in err + out


def test_bad_options_are_errors_with_status_2(tmp_path):
    rc, _, err = home_show("--ha-url", "http://127.0.0.1:1")  # no token anywhere
    assert rc == 2 and "EDGE_SLM_HA_TOKEN" in err
    rc, _, err = home_show("--ha-url", "ftp://hub")
    assert rc == 2 and "Home Assistant URL" in err
    rc, _, err = home_show("--ha-url", "http://user:secretpw@hub:8123",
                           env={"EDGE_SLM_HA_TOKEN": TOKEN})
    assert rc == 2 and "no credentials in the URL" in err and "secretpw" not in err
    (tmp_path / "token").write_text("")
    rc, _, err = home_show("--ha-url", "http://hub:8123", "--ha-token-file",
                           str(tmp_path / "token"))
    assert rc == 2 and "empty" in err
    (tmp_path / "bad.yaml").write_text("entities: [{name: X, domain: toaster}]\n")
    rc, _, err = home_show("--home", str(tmp_path / "bad.yaml"))
    assert rc == 2 and "toaster" in err
    rc, _, err = home_show("--discovery", "ha/#")
    assert rc == 2 and "discovery prefix" in err
