"""The daemon on a real mosquitto: Hermes, native and MQTT 5 request/response round trips,
bad payloads answered while serving goes on, status and last will, reconnection, the
duty-cycle step, and `edge-slm serve` as a process. Messages are awaited with timeouts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mqtt_fixtures import WAIT_S, Mosquitto, Probe, mosquitto_fixture  # noqa: F401

from edge_slm.daemon import DaemonConfig
from edge_slm.daemon.handlers import Handler
from edge_slm.daemon.mqtt import Backoff, MqttDaemon
from edge_slm.runtime.engine import IntentEngine, default_bundle_path

TEXT = "turn off the kitchen lights"
REPO = Path(__file__).resolve().parent.parent


# -- a daemon in a thread ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle():
    # the shipped bundle: these tests are about the protocol, and a model trained in the
    # session (the small profile) may answer a borderline sentence either way from run to run
    return default_bundle_path("int8")


#: The engines' threshold in these tests: a retrained model's calibrated threshold may land
#: close to the test sentence's confidence.
THRESHOLD = 0.5


def _engine(bundle):
    engine = IntentEngine.load(bundle)
    engine.threshold = THRESHOLD
    return engine


@pytest.fixture(scope="module")
def oracle(bundle):
    """An engine of the test's own (an interpreter is not shared across threads)."""
    return _engine(bundle)


class Running:
    """An MqttDaemon serving in a thread with its own engine."""

    def __init__(self, bundle: Path, broker: Mosquitto, **config) -> None:
        self.config = DaemonConfig(broker=broker.url, **config)
        self.engine = _engine(bundle)
        self.daemon = MqttDaemon(Handler(self.engine, self.config), self.config,
                                 backoff=Backoff(min_s=0.05, max_s=0.5))
        self.thread = threading.Thread(target=self.daemon.run_forever, daemon=True)
        self.thread.start()
        assert self.daemon.ready.wait(WAIT_S), "daemon did not subscribe: " + broker.log_text()

    def stop(self) -> None:
        self.daemon.stop()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def served(bundle, mosquitto):
    """The daemon (MQTT 5) for sites "kitchen" and "default"."""
    running = Running(bundle, mosquitto, site_ids=("kitchen", "default"),
                      site_areas={"kitchen": "Kitchen"}, client_id="edge-slm-test-main")
    yield running
    running.stop()


@pytest.fixture
def probe(mosquitto):
    """A client subscribed to every reply topic (not to the retained status)."""
    p = Probe(mosquitto, ["hermes/nlu/intentParsed", "hermes/intent/#",
                          "hermes/nlu/intentNotRecognized", "hermes/error/nlu",
                          "edge-slm/+/intent", "edge-slm/+/reply/#", "client/#"])
    yield p
    p.close()


def test_online_status_is_retained(served, mosquitto):
    # `ready` means the status is queued, not yet at the broker: a first subscriber may get
    # it live. Once that one has it, the broker holds it, and a later one must get it retained.
    first = Probe(mosquitto, ["edge-slm/kitchen/status"])
    try:
        first.expect("edge-slm/kitchen/status")
    finally:
        first.close()
    late = Probe(mosquitto, ["edge-slm/kitchen/status"])
    try:
        msg = late.expect("edge-slm/kitchen/status")
        assert msg.retain
        assert json.loads(msg.payload) == {"state": "online",
                                           "model_id": served.engine.bundle.model_id,
                                           "version": "0.1.0"}
    finally:
        late.close()


def test_hermes_round_trip_with_rhasspy_hermes(served, probe, oracle):
    pytest.importorskip("rhasspyhermes")
    from rhasspyhermes.nlu import NluIntent, NluIntentParsed, NluQuery

    query = NluQuery(input=TEXT, site_id="kitchen", id="h1", session_id="s1", custom_data="cd",
                     lang="en")
    probe.publish(NluQuery.topic(), query.payload())
    parsed = NluIntentParsed.from_json(probe.expect(NluIntentParsed.topic()).payload)
    full = NluIntent.from_json(probe.expect("hermes/intent/HassTurnOff").payload)
    want = oracle.parse(TEXT)
    for msg in (parsed, full):
        assert msg.intent.intent_name == want.intent
        assert msg.intent.confidence_score == pytest.approx(want.confidence, abs=1e-4)
        assert (msg.site_id, msg.id, msg.session_id) == ("kitchen", "h1", "s1")
        # an implied slot (a fixed slot such as domain) has its value as its raw value
        assert [s.raw_value for s in msg.slots] == [s.raw if s.said else str(s.value)
                                                    for s in want.slots]
    assert (full.custom_data, full.lang) == ("cd", "en")


def test_hermes_not_recognized_and_filter(served, probe):
    pytest.importorskip("rhasspyhermes")
    from rhasspyhermes.nlu import NluIntentNotRecognized, NluQuery

    query = NluQuery(input=TEXT, site_id="kitchen", id="h2", intent_filter=["HassNevermind"])
    probe.publish(NluQuery.topic(), query.payload())
    msg = NluIntentNotRecognized.from_json(probe.next().payload)
    assert (msg.input, msg.id, msg.site_id) == (TEXT, "h2", "kitchen")


def test_native_round_trip(served, probe, oracle):
    probe.publish("edge-slm/kitchen/query", json.dumps({"id": "n1", "text": TEXT}))
    msg = probe.expect("edge-slm/kitchen/intent")
    reply = json.loads(msg.payload)
    assert reply.pop("latency_ms") > 0
    assert reply == dict(oracle.parse(TEXT).to_dict(), id="n1",
                         model_id=oracle.bundle.model_id)


def test_native_batch_round_trip(served, probe, oracle):
    texts = ["turn on the kitchen light", "", TEXT]
    probe.publish("edge-slm/default/query", json.dumps({"id": 5, "texts": texts}))
    reply = json.loads(probe.expect("edge-slm/default/intent").payload)
    assert reply["id"] == 5 and len(reply["results"]) == 3
    assert reply["results"][0] == oracle.parse(texts[0]).to_dict()
    assert "error" in reply["results"][1]
    assert reply["results"][2] == oracle.parse(TEXT).to_dict()


def test_mqtt5_response_topic_and_correlation_data(served, probe):
    reply_to = "edge-slm/kitchen/reply/abc"
    probe.publish("edge-slm/kitchen/query", json.dumps({"id": "r1", "text": TEXT}),
                  ResponseTopic=reply_to, CorrelationData=b"\x01corr")
    msg = probe.next()
    assert msg.topic == reply_to
    assert msg.properties.get("CorrelationData") == b"\x01corr"
    assert json.loads(msg.payload)["id"] == "r1"
    # a bad query with a response topic is answered there too
    probe.publish("edge-slm/kitchen/query", b"{oops", ResponseTopic=reply_to,
                  CorrelationData=b"c2")
    msg = probe.next()
    assert msg.topic == reply_to and msg.properties.get("CorrelationData") == b"c2"
    assert "error" in json.loads(msg.payload)
    # and neither reply went to the default topic: the next one there is this sentinel's
    probe.publish("edge-slm/kitchen/query", json.dumps({"id": "sentinel", "text": TEXT}))
    assert json.loads(probe.expect("edge-slm/kitchen/intent").payload)["id"] == "sentinel"


def test_a_response_topic_outside_the_prefix_is_refused(served, probe, mosquitto, caplog):
    """The review's attack: a query whose MQTT 5 response topic is a lock's command topic must
    not make the daemon publish there (with its credentials); the requester gets an error on
    the site's own reply topic instead, and the refusal is logged."""
    lock = Probe(mosquitto, ["zigbee2mqtt/#", "edge-slm/hall/reply/#"])
    try:
        for target in ("zigbee2mqtt/front_door/set", "edge-slm/hall/reply/x",
                       "edge-slm/kitchen/replyx", "edge-slm/kitchen/reply"):
            probe.publish("edge-slm/kitchen/query", json.dumps({"id": "evil", "text": TEXT}),
                          ResponseTopic=target, CorrelationData=b"cd")
            msg = probe.expect("edge-slm/kitchen/intent")
            assert msg.properties.get("CorrelationData") == b"cd"
            reply = json.loads(msg.payload)
            assert reply["id"] == "evil" and "response topic" in reply["error"], reply
            assert target in caplog.text
        probe.publish("edge-slm/kitchen/query", json.dumps({"id": "ok", "text": TEXT}),
                      ResponseTopic="edge-slm/kitchen/reply/me")
        assert json.loads(probe.expect("edge-slm/kitchen/reply/me").payload)["id"] == "ok"
        assert lock.messages.empty(), lock.next()  # nothing reached the lock, or hall's replies
    finally:
        lock.close()


BAD = [
    ("hermes/nlu/query", b""), ("hermes/nlu/query", b"{no json"),
    ("hermes/nlu/query", b'{"input": "\xff\xfe"}'), ("hermes/nlu/query", b'{"input": 42}'),
    ("hermes/nlu/query", b"[]"),
    # over max_payload_bytes (64 KiB) but within the packet size: read, answered with an error
    # (a larger one never reaches the daemon: tests/test_daemon_limits.py)
    ("hermes/nlu/query", json.dumps({"input": "x" * 70_000}).encode()),
    ("edge-slm/kitchen/query", b""), ("edge-slm/kitchen/query", b"not json"),
    ("edge-slm/kitchen/query", b'{"id": "b", "text": "\xc3\x28"}'),
    ("edge-slm/kitchen/query", b'{"id": "b", "text": ["a"]}'),
    ("edge-slm/kitchen/query", b'{"id": "b", "text": ""}'),
    ("edge-slm/kitchen/query", json.dumps({"id": "b", "text": "y" * 70_000}).encode()),
]


def test_bad_payloads_are_answered_and_serving_goes_on(served, probe):
    for topic, payload in BAD:
        probe.publish(topic, payload)
        msg = probe.next()
        if topic.startswith("hermes"):
            assert msg.topic == "hermes/error/nlu", (payload[:40], msg)
            assert json.loads(msg.payload)["error"]
        else:
            assert msg.topic == "edge-slm/kitchen/intent", (payload[:40], msg)
            assert set(json.loads(msg.payload)) == {"id", "error"}
    assert served.thread.is_alive()
    probe.publish("edge-slm/kitchen/query", json.dumps({"id": "after", "text": TEXT}))
    reply = json.loads(probe.expect("edge-slm/kitchen/intent").payload)
    assert reply["id"] == "after" and reply["intent"] == "HassTurnOff"


def test_mqtt311_daemon(bundle, mosquitto, oracle):
    legacy = Running(bundle, mosquitto, site_ids=("legacy",), mqtt_version="3.1.1")
    p = Probe(mosquitto, ["edge-slm/legacy/intent", "hermes/intent/#",
                          "hermes/nlu/intentParsed"], version=4)
    try:
        p.publish("edge-slm/legacy/query", json.dumps({"id": "l1", "text": TEXT}))
        reply = json.loads(p.expect("edge-slm/legacy/intent").payload)
        assert reply["id"] == "l1" and reply["intent"] == oracle.parse(TEXT).intent
        p.publish("hermes/nlu/query", json.dumps({"input": TEXT, "siteId": "legacy"}))
        assert json.loads(p.expect("hermes/nlu/intentParsed").payload)["siteId"] == "legacy"
    finally:
        p.close()
        legacy.stop()


def test_stop_publishes_offline(bundle, mosquitto):
    running = Running(bundle, mosquitto, site_ids=("stopper",))
    p = Probe(mosquitto, ["edge-slm/stopper/status"])
    try:
        assert json.loads(p.expect("edge-slm/stopper/status").payload)["state"] == "online"
        running.stop()
        msg = p.expect("edge-slm/stopper/status")
        assert json.loads(msg.payload) == {"state": "offline", "model_id": None,
                                           "version": None}
    finally:
        p.close()


def test_reconnects_after_the_broker_restarts(bundle, tmp_path):
    broker = Mosquitto(tmp_path).start()
    running = None
    try:
        running = Running(bundle, broker, site_ids=("phoenix",))
        broker.stop()
        broker.start()  # same port, empty broker: no retained status, no session
        p = Probe(broker, ["edge-slm/phoenix/status", "edge-slm/phoenix/intent"])
        try:
            status = json.loads(p.expect("edge-slm/phoenix/status").payload)
            assert status["state"] == "online"  # published again after reconnecting
            p.publish("edge-slm/phoenix/query", json.dumps({"id": "again", "text": TEXT}))
            assert json.loads(p.expect("edge-slm/phoenix/intent").payload)["id"] == "again"
        finally:
            p.close()
    finally:
        if running is not None:
            running.stop()
        broker.stop()


def test_step_drains_queries_queued_while_away(bundle, mosquitto):
    config = DaemonConfig(broker=mosquitto.url, site_ids=("sleeper",),
                          client_id="edge-slm-test-sleeper")
    daemon = MqttDaemon(Handler(_engine(bundle), config), config)
    p = Probe(mosquitto, ["edge-slm/sleeper/intent", "edge-slm/sleeper/status"])
    try:
        daemon.step(1.0)  # first wake-up: the broker learns our session and subscriptions
        assert json.loads(p.expect("edge-slm/sleeper/status").payload)["state"] == "online"
        assert not daemon.ready.is_set()
        for i in range(3):  # while the daemon is away
            p.publish("edge-slm/sleeper/query", json.dumps({"id": i, "text": TEXT}))
        assert daemon.step(2.0) >= 3
        ids = set()
        while len(ids) < 3:
            msg = p.next()
            if msg.topic == "edge-slm/sleeper/intent":
                ids.add(json.loads(msg.payload)["id"])
        assert ids == {0, 1, 2}
    finally:
        p.close()


# -- `edge-slm serve` as a process ---------------------------------------------------------


def _serve(bundle, broker, tmp_path, site):
    log = open(tmp_path / f"serve-{site}.log", "wb")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_slm", "serve", "--bundle", str(bundle), "--broker",
         broker.url, "--site-id", site, "--site-area", f"{site}=Kitchen"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
    log.close()
    return proc


def test_serve_command_answers_and_stops_cleanly_on_sigterm(bundle, mosquitto, tmp_path):
    p = Probe(mosquitto, ["edge-slm/cli/status", "edge-slm/cli/intent", "hermes/intent/#",
                          "hermes/nlu/intentNotRecognized"])
    proc = _serve(bundle, mosquitto, tmp_path, "cli")
    try:
        status = p.expect("edge-slm/cli/status", timeout=120)
        assert json.loads(status.payload)["state"] == "online"
        p.publish("edge-slm/cli/query", json.dumps({"id": "c1", "text": TEXT}))
        assert json.loads(p.expect("edge-slm/cli/intent").payload)["id"] == "c1"
        p.publish("hermes/nlu/query", json.dumps({"input": TEXT, "siteId": "cli", "id": "c2"}))
        msg = p.next()  # the calibrated threshold decides which of the two it is
        assert msg.topic.startswith("hermes/intent/") or "NotRecognized" in msg.topic
        assert json.loads(msg.payload)["id"] == "c2"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "serve-cli.log").read_text()
        assert json.loads(p.expect("edge-slm/cli/status").payload)["state"] == "offline"
    finally:
        if proc.poll() is None:
            proc.kill()
        p.close()


def test_last_will_says_offline_when_the_daemon_dies(bundle, mosquitto, tmp_path):
    p = Probe(mosquitto, ["edge-slm/doomed/status"])
    proc = _serve(bundle, mosquitto, tmp_path, "doomed")
    try:
        status = p.expect("edge-slm/doomed/status", timeout=120)
        assert json.loads(status.payload)["state"] == "online"
        proc.kill()  # no clean disconnect: the broker publishes our last will
        proc.wait(timeout=30)
        msg = p.expect("edge-slm/doomed/status")
        assert json.loads(msg.payload)["state"] == "offline"
    finally:
        if proc.poll() is None:
            proc.kill()
        p.close()


def test_home_assistant_discovery_and_diagnostics(bundle, mosquitto):
    """With discovery on, the daemon announces its sensors (retained) and publishes their
    state: the last intent it answered and its latency."""
    from edge_slm.protocols.diagnostics import Diagnostics

    running = Running(bundle, mosquitto, site_ids=("attic",), client_id="edge-slm-test-ha",
                      discovery_prefix="homeassistant")
    probe = Probe(mosquitto, ["homeassistant/#", "edge-slm/attic/diagnostics"])
    try:
        configs = {}
        while len(configs) < 5:  # retained: they arrive even though we subscribed late
            msg = probe.next()
            if msg.topic.startswith("homeassistant/") and msg.topic.endswith("/config"):
                configs[msg.topic] = json.loads(msg.payload)
        assert all(c["device"]["model"] == "edge-slm" for c in configs.values())
        assert any(c.get("state_topic") == "edge-slm/attic/diagnostics"
                   for c in configs.values())
        probe.publish("edge-slm/attic/query",
                      json.dumps({"id": 1, "text": "turn off the kitchen lights"}))
        while True:  # at most one publication per DIAGNOSTICS_MIN_INTERVAL_S (10 s)
            msg = probe.next(timeout=3 * WAIT_S)
            if msg.topic == "edge-slm/attic/diagnostics":
                diag = Diagnostics.from_payload(msg.payload)
                if diag.last_intent is not None:
                    break
        assert diag.last_intent == "HassTurnOff" and diag.last_latency_ms > 0
    finally:
        probe.close()
        running.stop()
