"""`edge-slm serve --mode periodic` as a process on a real mosquitto: queries published while
it sleeps are queued by the broker for its persistent session and each is answered exactly
once after it wakes; telemetry is published retained after each wake; `edge-slm status`
prints it; SIGTERM publishes the offline status. Messages are awaited with timeouts."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mqtt_fixtures import WAIT_S, Probe, mosquitto_fixture  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
SITE = "sleepy"
PERIOD_S = 3.0
"""Wake-to-wake seconds of the daemon under test."""
WINDOW_S = 0.5
"""Seconds it stays connected per wake: it sleeps 2.5 s of every 3."""
QUERIES = 200
"""Queries published while it sleeps."""
LOAD_TIMEOUT_S = 120.0
"""Longest wait for the process to load the model and make its first wake."""
ANSWER_TIMEOUT_S = 60.0
"""Longest wait for all the answers (many wakes, even on a busy machine)."""
TEXT = "turn off the kitchen lights"


def _edge_slm(*argv: str) -> list:
    return [sys.executable, "-m", "edge_slm", *argv]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO))


def _telemetry(probe: Probe, timeout: float = WAIT_S) -> dict:
    return json.loads(probe.expect(f"edge-slm/{SITE}/telemetry", timeout=timeout).payload)


@pytest.fixture(scope="module")
def bundle(small_bundles):
    return small_bundles[0] / "en-int8.slm"


@pytest.fixture(scope="module")
def served(bundle, mosquitto, tmp_path_factory):
    """`edge-slm serve --mode periodic` for site SITE, and a probe that saw its first wake."""
    log_path = tmp_path_factory.mktemp("periodic") / "serve.log"
    probe = Probe(mosquitto, [f"edge-slm/{SITE}/intent", f"edge-slm/{SITE}/telemetry",
                              f"edge-slm/{SITE}/status"])
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            _edge_slm("serve", "--bundle", str(bundle), "--broker", mosquitto.url,
                      "--site-id", SITE, "--mode", "periodic", "--period", str(PERIOD_S),
                      "--window", str(WINDOW_S), "--board", "pi-zero-2w"),
            stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=str(REPO))
    try:
        status = probe.expect(f"edge-slm/{SITE}/status", timeout=LOAD_TIMEOUT_S)
        assert json.loads(status.payload)["state"] == "online", log_path.read_text()
        first = _telemetry(probe)  # published after the first wake has disconnected
        assert first["mode"] == "periodic" and first["wakes"] >= 1, first
        yield proc, probe, first, log_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        probe.close()


def test_queries_sent_while_asleep_are_each_answered_once(served):
    proc, probe, first, log_path = served
    probe.drain()
    asleep_until = first["updated_at"] + first["next_wake_s"]
    infos = [probe.client.publish(f"edge-slm/{SITE}/query",
                                  json.dumps({"id": i, "text": TEXT}), qos=1)
             for i in range(QUERIES)]
    for info in infos:
        info.wait_for_publish(WAIT_S)
        assert info.is_published()
    # every query reached the broker before the daemon's next wake: they were queued
    assert time.time() < asleep_until, "the publishes took longer than the daemon's sleep"

    answers: Counter = Counter()
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while len(answers) < QUERIES:
        left = deadline - time.monotonic()
        assert left > 0, f"{len(answers)} of {QUERIES} answered: " + log_path.read_text()
        msg = probe.next(left)
        if msg.topic == f"edge-slm/{SITE}/intent":
            reply = json.loads(msg.payload)
            assert "error" not in reply, reply
            answers[reply["id"]] += 1
    # a duplicate would come within the next wake or two: wait two periods for one
    settle = time.monotonic() + 2 * PERIOD_S
    while time.monotonic() < settle:
        try:
            msg = probe.messages.get(timeout=max(0.01, settle - time.monotonic()))
        except queue.Empty:  # nothing more
            break
        if msg.topic == f"edge-slm/{SITE}/intent":
            answers[json.loads(msg.payload)["id"]] += 1
    assert set(answers) == set(range(QUERIES))
    assert all(count == 1 for count in answers.values()), answers.most_common(3)
    assert proc.poll() is None


def test_telemetry_counts_the_wakes_and_messages(served):
    proc, probe, first, log_path = served
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while True:  # the retained telemetry after the wakes that served the queries
        t = _telemetry(probe, timeout=max(0.1, deadline - time.monotonic()))
        if t["messages"] >= QUERIES:
            break
    assert t["wakes"] > first["wakes"] and t["board"] == "pi-zero-2w"
    assert t["period_s"] == PERIOD_S and 0 <= t["next_wake_s"] <= PERIOD_S
    assert 0 < t["duty_cycle"] < 1 and t["cpu_s"] > 0
    assert t["joules"] > 0 and t["joules_per_command"] > 0
    assert t["messages_per_wake"] == pytest.approx(t["messages"] / t["wakes"], rel=1e-3)


def test_status_command_prints_status_and_telemetry(served, mosquitto):
    out = subprocess.run(_edge_slm("status", "--broker", mosquitto.url, "--site-id", SITE,
                                   "--json"),
                         capture_output=True, text=True, env=_env(), cwd=str(REPO), timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report) == {SITE}
    assert report[SITE]["status"]["state"] == "online"
    assert report[SITE]["telemetry"]["mode"] == "periodic"
    text = subprocess.run(_edge_slm("status", "--broker", mosquitto.url), capture_output=True,
                          text=True, env=_env(), cwd=str(REPO), timeout=60)
    assert text.returncode == 0 and f"{SITE}: online" in text.stdout
    assert "wake-ups" in text.stdout


def test_status_command_with_no_daemon_exits_1(mosquitto):
    out = subprocess.run(_edge_slm("status", "--broker", mosquitto.url, "--site-id", "nobody"),
                         capture_output=True, text=True, env=_env(), cwd=str(REPO), timeout=60)
    assert out.returncode == 1 and "no edge-slm daemon" in out.stdout


def test_sigterm_publishes_offline_and_exits_0(served):
    proc, probe, first, log_path = served
    probe.drain()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, log_path.read_text()
    deadline = time.monotonic() + WAIT_S
    while True:
        msg = probe.expect(f"edge-slm/{SITE}/status",
                           timeout=max(0.1, deadline - time.monotonic()))
        if json.loads(msg.payload)["state"] == "offline":
            break
