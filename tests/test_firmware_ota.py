"""Updates over MQTT: `firmware-tools ota` to `firmware-tools ota-agent` through a real mosquitto,
the same protocol, checks and A/B switch as the serial link; an interrupted transfer resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mqtt_fixtures import WAIT_S, Probe, mosquitto_fixture  # noqa: F401

from edge_slm.runtime.engine import default_bundle_path
from firmware_tools.flash import FlashConfig, flash_bundle
from firmware_tools.mqtt_link import sender_link
from firmware_tools.slots import SlotStore

BUNDLE = default_bundle_path("int4")


def _agent(broker, site, slots):
    return subprocess.Popen([sys.executable, "-m", "firmware_tools", "ota-agent", "--broker",
                             broker.url, "--site", site, "--slots", str(slots), "--once"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _active_bytes(slots):
    return SlotStore(slots).active_path().read_bytes()


class Interrupt(Exception):
    pass


def test_ota_installs_and_reports_on_the_status_topic(mosquitto, tmp_path):
    probe = Probe(mosquitto, ["edge-slm/ota1/ota/status"])
    agent = _agent(mosquitto, "ota1", tmp_path / "slots")
    try:
        r = subprocess.run([sys.executable, "-m", "firmware_tools", "ota", str(BUNDLE),
                            "--broker", mosquitto.url, "--site", "ota1", "--no-progress"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert agent.wait(timeout=120) == 0, agent.stderr.read()
        assert _active_bytes(tmp_path / "slots") == BUNDLE.read_bytes()
        states = []
        while not states or states[-1]["state"] == "receiving":  # progress, then the result
            states.append(json.loads(probe.expect("edge-slm/ota1/ota/status",
                                                  timeout=WAIT_S).payload))
        assert states[-1]["state"] == "installed", states
        assert len(states) >= 2, f"no progress was published before the result: {states}"
        for s in states[:-1]:
            assert s["state"] == "receiving"
            assert 0 <= s["received"] <= s["total"] == len(BUNDLE.read_bytes())
    finally:
        if agent.poll() is None:
            agent.kill()
        probe.close()


def test_an_interrupted_ota_resumes(mosquitto, tmp_path):
    data = BUNDLE.read_bytes()
    agent = _agent(mosquitto, "ota2", tmp_path / "slots")
    try:
        def stop_midway(done, total):
            if done > total // 3:
                raise Interrupt()

        link = sender_link(mosquitto.url, "ota2", client_id="sender-a")
        with pytest.raises(Interrupt):
            flash_bundle(link, data, stop_midway, FlashConfig())
        link.close()
        link = sender_link(mosquitto.url, "ota2", client_id="sender-b")
        try:
            result = flash_bundle(link, data, None, FlashConfig())
        finally:
            link.close()
        assert result.resumed_from > 0 and result.resumed_from < len(data)
        assert agent.wait(timeout=120) == 0, agent.stderr.read()
        assert _active_bytes(tmp_path / "slots") == data
    finally:
        if agent.poll() is None:
            agent.kill()


def test_ota_honours_credentials_and_mqtt_3_1_1(tmp_path):
    """Both OTA commands on a broker that refuses anonymous clients, over MQTT 3.1.1: the
    link's client is the project's one (TLS, credentials, protocol version)."""
    from mqtt_fixtures import MOSQUITTO, Mosquitto

    from edge_slm.daemon.connection import MqttConnection
    from edge_slm.daemon.retained import read_retained
    from edge_slm.protocols.ota import OtaStatus

    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    broker = Mosquitto(tmp_path / "broker", users={"device": "d-pw", "hub": "h-pw"}).start()
    url = f"mqtt://{{}}@127.0.0.1:{broker.port}"
    agent = subprocess.Popen(
        [sys.executable, "-m", "firmware_tools", "ota-agent", "--broker", url.format("device:d-pw"),
         "--mqtt-version", "3.1.1", "--site", "ota3", "--slots", str(tmp_path / "slots"),
         "--once"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with pytest.raises(OSError, match="refused the connection"):
            sender_link(url.format("hub:wrong"), "ota3", client_id="sender-wrong")
        r = subprocess.run([sys.executable, "-m", "firmware_tools", "ota", str(BUNDLE),
                            "--broker", url.format("hub:h-pw"), "--mqtt-version", "3.1.1",
                            "--site", "ota3", "--no-progress"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert agent.wait(timeout=120) == 0, agent.stderr.read()
        assert _active_bytes(tmp_path / "slots") == BUNDLE.read_bytes()
        hub = MqttConnection.from_url(url.format("hub:h-pw"), mqtt_version="3.1.1")
        topic = OtaStatus.topic(site_id="ota3")
        status = OtaStatus.from_payload(read_retained(hub, [topic])[topic])
        assert status.state == "installed", status
        log = broker.log_text()
        for client_id in ("edge-slm-ota-agent-ota3", "edge-slm-ota-sender-ota3"):
            # mosquitto logs the protocol of each client: p2 is MQTT 3.1.1 (p5 would be 5)
            assert f"as {client_id} (p2, c1, k60, u'" in log, log
    finally:
        if agent.poll() is None:
            agent.kill()
        broker.stop()
