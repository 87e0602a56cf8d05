"""`edge-slm serve` processes on a real mosquitto when things go wrong or scale out: three
daemons in one MQTT 5 share group (each query answered once, by more than one daemon), a
daemon SIGKILLed mid-stream and restarted under its client id (every query answered), a broker
restart with persistence (the session survives, the daemon reconnects), and SIGHUP reloading
the bundle (a new model switches the status; a corrupted file is refused). Messages are
awaited with timeouts; nothing sleeps to wait for something to happen."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from mqtt_fixtures import (  # noqa: F401 (fixture "mosquitto")
    MOSQUITTO,
    WAIT_S,
    Mosquitto,
    Probe,
    mosquitto_fixture,
)

from edge_slm.bundle import read_bundle

REPO = Path(__file__).resolve().parent.parent
TEXT = "turn off the kitchen lights"
LOAD_TIMEOUT_S = 120.0
"""Longest wait for a daemon process to load the model and say it is online."""
ANSWER_TIMEOUT_S = 60.0
"""Longest wait for every answer of a test's stream."""
SETTLE_S = 1.5
"""After the last expected answer: how long a duplicate has to show up."""
SHARED_QUERIES = 300
"""Queries published to the share group."""
STREAM_QUERIES = 300
"""Queries of the stream during which a daemon is killed."""
STREAM_PACE_S = 0.002
"""Gap between two queries of that stream, so that the kill lands in the middle of it."""
KILL_AFTER = 40
"""Answers seen before the daemon is killed."""
MOSQUITTO_MAX_INFLIGHT = 20
"""mosquitto's default max_inflight_messages: at most this many QoS 1 messages are delivered
and not yet acknowledged, so at most this many can be delivered twice after a crash."""


# -- helpers -----------------------------------------------------------------------------------


def _serve(bundle: Path, broker: Mosquitto, log_path: Path, *argv: str,
           debug: bool = False) -> subprocess.Popen:
    """`edge-slm serve` as a process, logging to `log_path` (at DEBUG level with `debug`)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "edge_slm", *(["--debug"] if debug else []), "serve",
             "--bundle", str(bundle), "--broker", broker.url, *argv],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(REPO)),
            cwd=str(REPO))


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def _wait_online(probe: Probe, site: str, log_path: Path, timeout: float = LOAD_TIMEOUT_S,
                 model_id: str = "") -> dict:
    """The next `online` status of `site` (with `model_id`, when given); what else the probe
    receives meanwhile is dropped."""
    return _wait_all_online(probe, {site: log_path}, timeout, model_id)[site]


def _wait_all_online(probe: Probe, logs: Dict[str, Path], timeout: float = LOAD_TIMEOUT_S,
                     model_id: str = "") -> Dict[str, dict]:
    """The `online` status of each site in `logs`, in whatever order they come."""
    online: Dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while len(online) < len(logs):
        left = deadline - time.monotonic()
        assert left > 0, f"not online: {set(logs) - set(online)}: " + "\n".join(
            logs[s].read_text(errors="replace")[-2000:] for s in logs if s not in online)
        msg = probe.next(left)
        site = msg.topic.split("/")[1]
        if site in logs and msg.topic == f"edge-slm/{site}/status":
            status = json.loads(msg.payload)
            if status["state"] == "online" and status["model_id"] == (model_id or
                                                                      status["model_id"]):
                online[site] = status
    return online


def _wait_log(proc: subprocess.Popen, log_path: Path, text: str,
              timeout: float = WAIT_S) -> None:
    """Wait until the daemon's log says `text` (waiting on the process between reads)."""
    deadline = time.monotonic() + timeout
    while text not in log_path.read_text(errors="replace"):
        assert proc.poll() is None, "daemon died: " + log_path.read_text(errors="replace")
        assert time.monotonic() < deadline, f"no {text!r} in: " + log_path.read_text()
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass


def _collect(probe: Probe, topic: str, ids: set, log_paths: List[Path],
             answers: Optional[Counter] = None) -> Counter:
    """Answers on `topic` by id (added to `answers`) until every id in `ids` came, then
    SETTLE_S more."""
    answers = Counter() if answers is None else answers
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while not ids <= set(answers):
        try:
            msg = probe.messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"{len(set(answers) & ids)} of {len(ids)} answered in "
                        f"{ANSWER_TIMEOUT_S} s: " + "\n".join(
                            p.read_text(errors="replace")[-3000:] for p in log_paths))
        if msg.topic == topic:
            reply = json.loads(msg.payload)
            assert "error" not in reply, reply
            answers[reply["id"]] += 1
    settle = time.monotonic() + SETTLE_S
    while True:  # a duplicate would come now or not at all
        try:
            msg = probe.messages.get(timeout=max(0.01, settle - time.monotonic()))
        except queue.Empty:
            return answers
        if msg.topic == topic:
            answers[json.loads(msg.payload)["id"]] += 1


@pytest.fixture(scope="module")
def bundles(small_bundles):
    """(int8 bundle, int4 bundle) of the session's small model."""
    return small_bundles[0] / "en-int8.slm", small_bundles[0] / "en-int4.slm"


# -- share group -------------------------------------------------------------------------------


def test_share_group_answers_each_query_once_across_daemons(bundles, mosquitto, tmp_path):
    workers = [f"worker{i}" for i in range(3)]
    probe = Probe(mosquitto, ["edge-slm/pool/intent", "edge-slm/+/status",
                              "edge-slm/+/telemetry"])
    logs = [tmp_path / f"{w}.log" for w in workers]
    procs = [_serve(bundles[0], mosquitto, log, "--site-id", "pool", "--status-site", w,
                    "--share-group", "edge-slm-test")  # no --client-id: each makes its own
             for w, log in zip(workers, logs)]
    try:
        _wait_all_online(probe, dict(zip(workers, logs)))
        ids = [line.split("client id ")[1].split(")")[0] for line in
               (log.read_text() for log in logs)]
        assert len(set(ids)) == 3, ids  # host and pid make them unique
        probe.drain()
        infos = [probe.client.publish("edge-slm/pool/query",
                                      json.dumps({"id": i, "text": TEXT}), qos=1)
                 for i in range(SHARED_QUERIES)]
        for info in infos:
            info.wait_for_publish(WAIT_S)
        answers = _collect(probe, "edge-slm/pool/intent", set(range(SHARED_QUERIES)), logs)
        assert set(answers) == set(range(SHARED_QUERIES))
        assert all(n == 1 for n in answers.values()), answers.most_common(3)

        # each daemon's telemetry, published when it stops, says how many it served
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        served: Dict[str, int] = {}
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while len(served) < len(workers):
            msg = probe.next(max(0.1, deadline - time.monotonic()))
            site = msg.topic.split("/")[1]
            if msg.topic.endswith("/telemetry") and site in workers:
                served[site] = json.loads(msg.payload)["messages"]
        for proc, log in zip(procs, logs):
            assert proc.wait(timeout=30) == 0, log.read_text()
        assert sum(served.values()) == SHARED_QUERIES, served
        assert sum(1 for n in served.values() if n > 0) > 1, served
    finally:
        for proc in procs:
            _stop(proc)
        probe.close()


# -- a daemon killed mid-stream ----------------------------------------------------------------


def test_daemon_killed_mid_stream_answers_every_query_after_restart(
        bundles, mosquitto, tmp_path):
    """QoS 1 with a persistent session is at-least-once: a query delivered but not yet
    acknowledged when the daemon dies is delivered again to the restarted daemon, so it may
    be answered twice; none is lost."""
    site, log = "phoenix", tmp_path / "phoenix.log"
    argv = ("--site-id", site, "--client-id", "edge-slm-test-phoenix")
    probe = Probe(mosquitto, [f"edge-slm/{site}/intent", f"edge-slm/{site}/status"])
    # the stream goes out on a client of its own, used by the stream's thread only
    sender = Probe(mosquitto, [f"edge-slm/{site}/unused"])
    proc = _serve(bundles[0], mosquitto, log, *argv, debug=True)
    done = threading.Event()
    publisher = None
    try:
        _wait_online(probe, site, log)
        probe.drain()

        def stream() -> None:
            for i in range(STREAM_QUERIES):
                sender.client.publish(f"edge-slm/{site}/query",
                                      json.dumps({"id": i, "text": TEXT}), qos=1)
                done.wait(STREAM_PACE_S)  # a steady stream, not a burst

        publisher = threading.Thread(target=stream, daemon=True)
        publisher.start()
        seen: Counter = Counter()  # answers before the kill
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while len(seen) < KILL_AFTER:
            msg = probe.next(max(0.1, deadline - time.monotonic()))
            if msg.topic.endswith("/intent"):
                seen[json.loads(msg.payload)["id"]] += 1
        proc.kill()  # mid-stream: the publisher goes on
        proc.wait(timeout=30)
        assert publisher.is_alive(), "the stream ended before the kill: raise STREAM_QUERIES"
        proc = _serve(bundles[0], mosquitto, log, *argv, debug=True)  # same session
        answers = _collect(probe, f"edge-slm/{site}/intent", set(range(STREAM_QUERIES)),
                           [log], answers=seen)
        assert set(answers) == set(range(STREAM_QUERIES))
        twice = sum(n - 1 for n in answers.values())
        assert twice <= MOSQUITTO_MAX_INFLIGHT, answers.most_common(5)
    finally:
        done.set()
        if publisher is not None:
            publisher.join(WAIT_S)
        _stop(proc)
        sender.close()
        probe.close()


# -- the broker restarts -----------------------------------------------------------------------


class PersistentMosquitto(Mosquitto):
    """A mosquitto that saves its sessions and retained messages when it stops and loads them
    when it starts again (on the same port)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, persistence=True)


def test_broker_restart_keeps_the_session_and_the_daemon_comes_back(bundles, tmp_path):
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    broker = PersistentMosquitto(tmp_path).start()
    site, log = "survivor", tmp_path / "survivor.log"
    proc = None
    try:
        before = Probe(broker, [f"edge-slm/{site}/status"])
        proc = _serve(bundles[0], broker, log, "--site-id", site, "--client-id",
                      "edge-slm-test-survivor", debug=True)
        try:
            _wait_online(before, site, log)
        finally:
            before.close()
        broker.stop()  # saves the daemon's session (its subscriptions) to mosquitto.db
        assert (tmp_path / "mosquitto.db").exists(), broker.log_text()
        broker.start()
        probe = Probe(broker, [f"edge-slm/{site}/intent"])
        try:
            # most likely the daemon is still waiting out its backoff: the restored session
            # queues these for it; either way each must be answered
            for i in range(20):
                probe.publish(f"edge-slm/{site}/query", json.dumps({"id": i, "text": TEXT}))
            answers = _collect(probe, f"edge-slm/{site}/intent", set(range(20)), [log])
            assert all(n == 1 for n in answers.values()), answers
        finally:
            probe.close()
        text = log.read_text(errors="replace")
        assert "connection lost" in text and "retrying in" in text  # backoff, logged
        assert "session present: True" in text  # the persisted session was resumed
        assert proc.poll() is None
    finally:
        if proc is not None:
            _stop(proc)
        broker.stop()


# -- SIGHUP ------------------------------------------------------------------------------------


def _replace(path: Path, data: bytes) -> None:
    """Put `data` at `path` the way an update should: a new file renamed over the old one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_sighup_swaps_in_a_new_bundle_and_refuses_a_corrupted_one(
        bundles, mosquitto, tmp_path):
    int8, int4 = bundles
    old_id, new_id = read_bundle(int8).model_id, read_bundle(int4).model_id
    assert old_id != new_id
    served = tmp_path / "served.slm"
    shutil.copyfile(int8, served)
    site, log = "reloader", tmp_path / "reloader.log"
    probe = Probe(mosquitto, [f"edge-slm/{site}/status", f"edge-slm/{site}/intent"])
    proc = _serve(served, mosquitto, log, "--site-id", site)
    try:
        assert _wait_online(probe, site, log)["model_id"] == old_id

        _replace(served, int4.read_bytes())
        proc.send_signal(signal.SIGHUP)
        _wait_online(probe, site, log, timeout=WAIT_S * 3, model_id=new_id)
        probe.publish(f"edge-slm/{site}/query", json.dumps({"id": "after", "text": TEXT}))
        assert json.loads(probe.expect(f"edge-slm/{site}/intent").payload)["model_id"] == new_id

        data = bytearray(int8.read_bytes())
        data[len(data) // 2:len(data) // 2 + 64] = bytes(64)  # damage the payload
        _replace(served, bytes(data))
        probe.drain()
        proc.send_signal(signal.SIGHUP)
        _wait_log(proc, log, "reload refused")
        probe.publish(f"edge-slm/{site}/query", json.dumps({"id": "still", "text": TEXT}))
        reply = probe.expect(f"edge-slm/{site}/intent")
        assert json.loads(reply.payload)["model_id"] == new_id
        assert probe.messages.empty()  # and no new status came before that reply
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
        assert f"still serving {new_id}" in log.read_text()
    finally:
        _stop(proc)
        probe.close()


# -- in process: the MqttDaemon parts ----------------------------------------------------------


def test_shared_topics_and_their_limits(bundles):
    from edge_slm.daemon import DaemonConfig
    from edge_slm.daemon.handlers import Handler
    from edge_slm.daemon.mqtt import MqttDaemon, shared_topic
    from edge_slm.runtime.engine import IntentEngine

    assert shared_topic(None, "hermes/nlu/query") == "hermes/nlu/query"
    assert shared_topic("g", "edge-slm/+/query") == "$share/g/edge-slm/+/query"
    for bad in ("", "a/b", "+", "#"):
        with pytest.raises(ValueError):
            shared_topic(bad, "t")
    config = DaemonConfig(site_ids=("kitchen",))
    handler = Handler(IntentEngine.load(bundles[0]), config)
    assert MqttDaemon(handler, config, share_group="g").subscriptions() == [
        "$share/g/hermes/nlu/query", "$share/g/edge-slm/kitchen/query"]
    legacy = DaemonConfig(mqtt_version="3.1.1")
    with pytest.raises(ValueError, match="MQTT 5"):
        MqttDaemon(Handler(handler.engine, legacy), legacy, share_group="g")


def test_reload_now_swaps_or_keeps_the_old_engine(bundles):
    from edge_slm.bundle import BundleError
    from edge_slm.daemon import DaemonConfig
    from edge_slm.daemon.handlers import Handler
    from edge_slm.daemon.mqtt import MqttDaemon
    from edge_slm.runtime.engine import IntentEngine

    config = DaemonConfig()
    old, new = IntentEngine.load(bundles[0]), IntentEngine.load(bundles[1])
    handler = Handler(old, config)
    engines = [new]

    def loader():
        if not engines:
            raise BundleError("broken.slm: bad checksum")
        return engines.pop()

    daemon = MqttDaemon(handler, config, reload=loader)
    daemon.request_reload()
    assert daemon.reload_requested and daemon.reload_now()
    assert not daemon.reload_requested
    assert handler.engine is new and handler.model_id == new.bundle.model_id
    assert json.loads(handler.status(online=True).payload)["model_id"] == new.bundle.model_id
    assert not daemon.reload_now()  # the loader fails: the new engine stays
    assert handler.engine is new
    assert not MqttDaemon(handler, config).reload_now()  # no loader: refused


def test_a_share_group_member_that_stops_cleanly_leaves_no_session_behind(
        bundles, mosquitto):
    """mosquitto gives a disconnected member with a live session its share of the queries;
    a member that stops cleanly ends its session, so the others get all of them."""
    from edge_slm.daemon import DaemonConfig
    from edge_slm.daemon.handlers import Handler
    from edge_slm.daemon.mqtt import Backoff, MqttDaemon
    from edge_slm.runtime.engine import IntentEngine

    def member(name: str) -> tuple:
        config = DaemonConfig(broker=mosquitto.url, site_ids=("leaver",), status_site=name,
                              client_id=f"edge-slm-test-{name}")
        daemon = MqttDaemon(Handler(IntentEngine.load(bundles[0]), config), config,
                            backoff=Backoff(min_s=0.05, max_s=0.5), share_group="leavers")
        thread = threading.Thread(target=daemon.run_forever, daemon=True)
        thread.start()
        assert daemon.ready.wait(WAIT_S)
        return daemon, thread

    (going, going_thread), (staying, staying_thread) = member("going"), member("staying")
    probe = Probe(mosquitto, ["edge-slm/leaver/intent"])
    try:
        going.stop()
        going_thread.join(WAIT_S)
        assert not going_thread.is_alive()
        for i in range(20):
            probe.publish("edge-slm/leaver/query", json.dumps({"id": i, "text": TEXT}))
        answers = _collect(probe, "edge-slm/leaver/intent", set(range(20)), [])
        assert all(n == 1 for n in answers.values()), answers
        assert staying.handled >= 20
    finally:
        staying.stop()
        staying_thread.join(WAIT_S)
        probe.close()
