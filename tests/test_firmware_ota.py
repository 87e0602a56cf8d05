"""Updates over MQTT: `firmware-tools ota` to `firmware-tools ota-agent` through a real mosquitto,
the same protocol, checks and A/B switch as the serial link; an interrupted transfer resumes."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mqtt_fixtures import WAIT_S, Probe, mosquitto_fixture  # noqa: F401

from edge_slm.runtime.engine import default_bundle_path
from firmware_tools import serial_protocol as sp
from firmware_tools.flash import FlashConfig, flash_bundle
from firmware_tools.mqtt_link import sender_link
from firmware_tools.slots import SlotStore

BUNDLE = default_bundle_path("int4")


def _agent(broker, site, slots, *options):
    return subprocess.Popen([sys.executable, "-m", "firmware_tools", "ota-agent", "--broker",
                             broker.url, "--site", site, "--slots", str(slots), "--once",
                             *(options or ["--insecure-unsigned"])],
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
         "--once", "--insecure-unsigned"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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


# -- answers the sender can trust ------------------------------------------------------------

#: Fast timers: a sender that gets no answer of its own gives up within seconds.
FAST = FlashConfig(ack_timeout_s=0.2, handshake_timeout_s=0.3, max_retries=6,
                   status_timeout_s=30.0)


def _frame(msg):
    """A frame under a nonce of its own (a stranger on the broker)."""
    return sp.encode_frame(msg, 1, os.urandom(sp.NONCE_BYTES))


def test_replayed_device_answers_do_not_make_an_offline_device_installed(mosquitto, tmp_path):
    """Record a real device's answers, take the device offline, replay them to the next
    transfer: the sender must not report "installed"."""
    data = BUNDLE.read_bytes()
    recorder = Probe(mosquitto, ["edge-slm/ota4/ota/out"])
    agent = _agent(mosquitto, "ota4", tmp_path / "slots")
    try:
        link = sender_link(mosquitto.url, "ota4", client_id="sender-real")
        try:
            flash_bundle(link, data, None, FAST)
        finally:
            link.close()
        assert agent.wait(timeout=120) == 0, agent.stderr.read()
    finally:
        if agent.poll() is None:
            agent.kill()
    recorded = []
    while not recorder.messages.empty():
        recorded.append(recorder.messages.get().payload)
    recorder.close()
    assert recorded

    fake = Probe(mosquitto, ["edge-slm/ota4/ota/in"])  # the device is gone; this replays
    replays = []

    def replay_on_hello():
        decoder = sp.FrameDecoder()
        while len(replays) < 20:
            try:
                msg = fake.messages.get(timeout=30)
            except queue.Empty:
                return
            if any(isinstance(m, sp.Hello) for *_, m in decoder.feed(msg.payload)):
                replays.append(1)
                for payload in recorded:
                    fake.client.publish("edge-slm/ota4/ota/out", payload, qos=1)

    t = threading.Thread(target=replay_on_hello, daemon=True)
    t.start()
    link = sender_link(mosquitto.url, "ota4", client_id="sender-after")
    try:
        with pytest.raises(sp.FlashTimeout, match="handshake"):
            flash_bundle(link, data, None, FAST)
    finally:
        link.close()
        fake.close()
    assert replays  # the replay happened, and was not taken for the device


def test_strangers_on_the_broker_cannot_abort_a_transfer(mosquitto, tmp_path):
    """While a transfer runs, another client publishes an error status to the sender, a
    HELLO of another transfer and a DONE of this one to the device: the transfer goes on."""
    data = BUNDLE.read_bytes()
    tid = hashlib.sha256(data).digest()
    watcher = Probe(mosquitto, ["edge-slm/ota5/ota/out"])
    agent = _agent(mosquitto, "ota5", tmp_path / "slots")
    injected = threading.Event()

    def intrude():
        decoder = sp.FrameDecoder()
        while True:  # wait for the device's first ACK: the transfer is under way
            msg = watcher.messages.get(timeout=60)
            if any(isinstance(m, sp.Ack) for *_, m in decoder.feed(msg.payload)):
                break
        for topic, frame in (("out", sp.Status(sp.STATUS_PROTOCOL, "aborted by a stranger")),
                             ("in", sp.Hello(sp.PROTOCOL_VERSION, 1024, 5000, os.urandom(32))),
                             ("in", sp.Done(len(data), tid))):
            watcher.client.publish(f"edge-slm/ota5/ota/{topic}", _frame(frame), qos=1)
        injected.set()

    t = threading.Thread(target=intrude, daemon=True)
    t.start()
    try:
        link = sender_link(mosquitto.url, "ota5", client_id="sender-owner")
        try:
            result = flash_bundle(link, data, None, FAST)
        finally:
            link.close()
        assert injected.is_set()
        assert "active in slot a" in result.detail
        assert agent.wait(timeout=120) == 0, agent.stderr.read()
        assert _active_bytes(tmp_path / "slots") == data
    finally:
        if agent.poll() is None:
            agent.kill()
        watcher.close()
