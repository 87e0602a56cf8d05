"""`edge-slm demo` and `edge-slm serve --embedded-broker`: a broker, the daemon with the
shipped model and commands over MQTT, on one machine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None
                                and not os.path.exists("/usr/sbin/mosquitto"),
                                reason="needs mosquitto")
WAIT_S = 60.0


def test_demo_prints_the_intents_of_commands_sent_over_mqtt():
    r = subprocess.run([sys.executable, "-m", "edge_slm", "demo"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any("'turn off the kitchen lights'" in x and "HassTurnOff area='kitchen'" in x
               for x in lines), r.stdout
    assert any("capital of france" in x and "not a home command" in x for x in lines)
    assert "hermes/intent/HassTurnOff" in r.stdout


def test_serve_with_an_embedded_broker_answers_and_stops_it():
    import paho.mqtt.client as mqtt

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "edge_slm", "serve", "--embedded-broker",
                             "--broker", f"mqtt://127.0.0.1:{port}"],
                            stderr=subprocess.PIPE, text=True)
    got: dict = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.setdefault(m.topic, []).append(
        json.loads(m.payload))
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                client.connect("127.0.0.1", port)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.1)
        client.loop_start()
        client.subscribe("edge-slm/#", qos=1)
        while not any(t.endswith("/status") and m[-1].get("state") == "online"
                      for t, m in list(got.items())):
            assert time.monotonic() < deadline, got
            time.sleep(0.05)
        client.publish("edge-slm/kitchen/query",
                       json.dumps({"id": 7, "text": "turn off the kitchen lights"}), qos=1)
        while "edge-slm/kitchen/intent" not in got:
            assert time.monotonic() < deadline, got
            time.sleep(0.05)
        reply = got["edge-slm/kitchen/intent"][0]
        assert reply["id"] == 7 and reply["intent"] == "HassTurnOff"
    finally:
        client.loop_stop()
        client.disconnect()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0
    with socket.socket() as s:  # the broker went with the daemon
        assert s.connect_ex(("127.0.0.1", port)) != 0
