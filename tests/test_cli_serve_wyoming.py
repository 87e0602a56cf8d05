"""`edge-slm serve --wyoming tcp://HOST:PORT` as a process: alone with --no-mqtt (the
acceptance: "turn off the kitchen lights" -> intent HassTurnOff with area kitchen and domain
light, "what is the capital of france" -> not-recognized; SIGTERM and SIGINT stop it with
status 0) and beside MQTT on a real mosquitto, one process answering both; front ends that
cannot go together are refused with status 2."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mqtt_fixtures import WAIT_S, Probe, mosquitto_fixture  # noqa: F401 (fixture)
from test_daemon_resilience import _wait_log

from edge_slm.cli import main
from edge_slm.daemon.mosquitto import free_port

pytest.importorskip("wyoming", reason="the dev extra installs the wyoming library")
from wyoming.asr import Transcript  # noqa: E402
from wyoming.client import AsyncTcpClient  # noqa: E402
from wyoming.intent import Intent, NotRecognized  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120.0
"""Longest wait for the process to load the model and listen."""
KITCHEN = "turn off the kitchen lights"


def _serve(log_path: Path, *argv: str) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "edge_slm", "serve", *argv],
                                stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO),
                                env=dict(os.environ, PYTHONPATH=str(REPO)))


def _wait_listening(proc: subprocess.Popen, log_path: Path) -> None:
    """Until the process says it serves Wyoming (it listens before it says so)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while "Wyoming" not in log_path.read_text(errors="replace") \
            or "SIGTERM" not in log_path.read_text(errors="replace"):
        assert proc.poll() is None, "serve died: " + log_path.read_text(errors="replace")
        assert time.monotonic() < deadline, "not listening: " + log_path.read_text()
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass


async def _transcripts(port: int, *texts: str):
    answers = []
    async with AsyncTcpClient("127.0.0.1", port, connect_timeout=WAIT_S,
                              read_timeout=WAIT_S) as client:
        for text in texts:
            await client.write_event(Transcript(text).event())
            answers.append(await client.read_event())
    return answers


def _acceptance(port: int) -> None:
    intent_event, oos = asyncio.run(_transcripts(port, KITCHEN, "what is the capital of france"))
    intent = Intent.from_event(intent_event)
    entities = {e.name: e.value for e in intent.entities}
    assert intent.name == "HassTurnOff"
    assert entities["area"].lower() == "kitchen" and entities["domain"] == "light"
    assert NotRecognized.is_type(oos.type)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_wyoming_only_answers_and_stops_cleanly(tmp_path, stop_signal):
    port = free_port()
    log = tmp_path / "serve.log"
    proc = _serve(log, "--wyoming", f"tcp://127.0.0.1:{port}", "--no-mqtt")
    try:
        _wait_listening(proc, log)
        assert "(no MQTT)" in log.read_text()
        _acceptance(port)
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=WAIT_S * 3) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert "Traceback" not in log.read_text()


def test_sighup_reloads_and_a_bad_bundle_is_refused(tmp_path):
    from edge_slm.runtime.engine import default_bundle_path

    bundle = tmp_path / "model.slm"
    good = default_bundle_path().read_bytes()
    bundle.write_bytes(good)
    port = free_port()
    log = tmp_path / "serve.log"
    proc = _serve(log, "--bundle", str(bundle), "--wyoming", f"tcp://127.0.0.1:{port}",
                  "--no-mqtt")
    try:
        _wait_listening(proc, log)
        bundle.write_bytes(b"not a bundle")
        proc.send_signal(signal.SIGHUP)
        _wait_log(proc, log, "reload refused, still serving", START_TIMEOUT_S)
        _acceptance(port)  # the old model still answers
        bundle.write_bytes(good)
        proc.send_signal(signal.SIGHUP)
        _wait_log(proc, log, "reloaded: serving", START_TIMEOUT_S)
        _acceptance(port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT_S * 3) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_wyoming_beside_mqtt_in_one_process(mosquitto, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    probe = Probe(mosquitto, ["edge-slm/+/intent", "edge-slm/+/status"])
    proc = _serve(log, "--broker", mosquitto.url, "--site-id", "kitchen",
                  "--wyoming", f"tcp://127.0.0.1:{port}")
    try:
        _wait_listening(proc, log)
        _acceptance(port)
        probe.publish("edge-slm/kitchen/query", json.dumps({"id": "q1", "text": KITCHEN}))
        deadline = time.monotonic() + WAIT_S * 3
        while True:
            msg = probe.next(max(0.1, deadline - time.monotonic()))
            if msg.topic == "edge-slm/kitchen/intent":
                break
        reply = json.loads(msg.payload)
        assert reply["id"] == "q1" and reply["intent"] == "HassTurnOff"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT_S * 3) == 0, log.read_text()
    finally:
        probe.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    text = log.read_text()
    assert f"Wyoming on tcp://127.0.0.1:{port}" in text and "Traceback" not in text


@pytest.mark.parametrize("argv, words", [
    (["--no-mqtt"], "nothing left to serve"),
    (["--no-mqtt", "--wyoming", "tcp://127.0.0.1:1", "--embedded-broker"], "embedded broker"),
    (["--serial", "loop://", "--wyoming", "tcp://127.0.0.1:1"], "not served together"),
    (["--wyoming-zeroconf"], "nothing to announce"),
    (["--wyoming", "udp://127.0.0.1:10500"], "expected tcp://HOST:PORT"),
])
def test_front_ends_that_cannot_go_together_are_refused(capsys, argv, words):
    assert main(["serve", *argv]) == 2
    assert words in capsys.readouterr().err
