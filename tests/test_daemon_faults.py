"""Faults while `edge-slm serve` is under load, on a real mosquitto: a steady stream of native
queries goes on while the broker is stopped and started again (with persistence), the daemon
is SIGKILLed and restarted again and again, and its network is cut or stalled and restored
through a TCP proxy written here. Each time every query must be answered, the daemon must
come back by itself, and queries answered twice must stay within the bounds of docs/daemon.md
("Failures and what survives them"): QoS 1 is at least once, so what was in flight on a hop
when it broke may be delivered again, at most that hop's in-flight window.

tests/test_daemon_resilience.py has the single SIGKILL and the idle broker restart; these
add the load. The shipped int8 bundle is served (no training needed). Nothing sleeps to wait
for something to happen: answers are awaited with deadlines; the pauses are the faults'
lengths."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, List, Optional, Tuple

import pytest
from mqtt_fixtures import MOSQUITTO, Mosquitto  # noqa: F401

from edge_slm.runtime.engine import default_bundle_path

REPO = Path(__file__).resolve().parent.parent
TEXT = "turn off the kitchen lights"
LOAD_TIMEOUT_S = 60.0
"""Longest wait for a daemon process to say it is online."""
ANSWER_TIMEOUT_S = 90.0
"""Longest wait for every answer of a stream."""
SETTLE_S = 1.5
"""After the last expected answer: how long a duplicate has to show up."""
QUERIES = 600
"""Queries of each stream."""
PACE_S = 0.01
"""Gap between two queries of a stream (100 per second, 6 s): the faults land mid-stream."""
INFLIGHT = 20
"""The in-flight window of one hop: mosquitto's max_inflight_messages and paho's
max_inflight_messages, both 20 by default. At most this many messages can be delivered twice
on a hop that breaks."""


# -- the stream, the answers, the daemon -------------------------------------------------------


def _client(port: int, client_id: str) -> Any:
    """A paho MQTT 5 client with a persistent session that reconnects by itself (every 0.2
    to 1 s) and resends, after a reconnect, what the broker had not acknowledged."""
    from paho.mqtt.client import CallbackAPIVersion, Client, MQTTv5
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTv5)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=0.2, max_delay=1)  # type: ignore[arg-type]
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    client.connect("127.0.0.1", port, keepalive=10, clean_start=False, properties=props)
    return client


class Answers:
    """Counts the answers on the site's reply topic by id, and the site's statuses, over a
    persistent session (what comes while it is cut off is queued for it)."""

    def __init__(self, port: int, site: str) -> None:
        self.counts: Counter = Counter()
        """Answers per id."""
        self.states: List[str] = []
        """The site's statuses, in order ("online", "offline")."""
        self.errors: List[Any] = []
        """Error answers (there should be none)."""
        self._cond = threading.Condition()
        self._topic, subscribed = f"edge-slm/{site}/intent", threading.Event()
        topics = [(self._topic, 1), (f"edge-slm/{site}/status", 1)]
        self.client = _client(port, f"faults-answers-{site}")
        self.client.on_connect = lambda c, *a: c.subscribe(topics)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.loop_start()
        assert subscribed.wait(10), "no SUBACK"

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        reply = json.loads(msg.payload)
        with self._cond:
            if msg.topic != self._topic:
                self.states.append(reply["state"])
            elif "error" in reply:
                self.errors.append(reply)
            else:
                self.counts[reply["id"]] += 1
            self._cond.notify_all()

    def wait(self, predicate: Any, timeout: float, what: str, logs: List[Path]) -> None:
        """Until predicate(self) holds; fails with the daemon's log when it does not."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout):
                pytest.fail(f"{what}: {len(self.counts)} answered, statuses {self.states[-5:]}"
                            "\n" + "\n".join(p.read_text(errors="replace")[-3000:]
                                             for p in logs if p.exists()))

    def all_of(self, count: int, logs: List[Path]) -> Counter:
        """Every id below `count` answered, then SETTLE_S for duplicates: the counts."""
        self.wait(lambda a: len(a.counts) >= count, ANSWER_TIMEOUT_S, "not all answered", logs)
        time.sleep(SETTLE_S)  # a duplicate would come now or not at all
        with self._cond:
            assert not self.errors, self.errors[:3]
            assert set(self.counts) == set(range(count))
            return Counter(self.counts)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Stream:
    """QUERIES native queries, one every PACE_S, from a thread, at QoS 1 on a client of its
    own (whose paho queue holds them while the broker is away)."""

    def __init__(self, port: int, site: str) -> None:
        self.client = _client(port, f"faults-stream-{site}")
        self.client.loop_start()
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(site,), daemon=True)
        self._thread.start()

    def _run(self, site: str) -> None:
        for i in range(QUERIES):
            if self._stop.is_set():
                return
            self.client.publish(f"edge-slm/{site}/query", json.dumps({"id": i, "text": TEXT}),
                                qos=1)
            self.sent = i + 1
            self._stop.wait(PACE_S)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.disconnect()
        self.client.loop_stop()


def _serve(url: str, site: str, log: Path, *argv: str) -> subprocess.Popen:
    """`edge-slm serve` on the shipped int8 bundle with a stable client id."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edge_slm", "serve", "--bundle",
             str(default_bundle_path("int8")), "--broker", url, "--site-id", site,
             "--client-id", f"edge-slm-faults-{site}",
             "--rate-limit", "0", *argv],  # one site sends the whole stream
            stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO),
            env=dict(os.environ, PYTHONPATH=str(REPO)))


def _kill(proc: Optional[subprocess.Popen]) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def _online(answers: Answers, log: Path, after: int = 0) -> None:
    """Until an `online` status beyond the first `after` statuses came."""
    answers.wait(lambda a: "online" in a.states[after:], LOAD_TIMEOUT_S, "not online", [log])


def _twice(counts: Counter) -> int:
    """Answers beyond the first, over every id (printed: `pytest -s` shows the figures)."""
    twice = sum(n - 1 for n in counts.values())
    print(f"answered twice: {twice}")
    return twice


@pytest.fixture
def broker(tmp_path):
    """A persistent mosquitto for one test (stopped at the end, whatever happened)."""
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    started = Mosquitto(tmp_path / "broker", persistence=True).start()
    yield started
    started.stop()


# -- the broker restarts -----------------------------------------------------------------------


def test_broker_stopped_and_started_mid_stream_loses_nothing(broker, tmp_path):
    site, log = "restart", tmp_path / "restart.log"
    answers = Answers(broker.port, site)
    proc = _serve(broker.url, site, log)
    stream = None
    try:
        _online(answers, log)
        stream = Stream(broker.port, site)
        answers.wait(lambda a: len(a.counts) >= 80, ANSWER_TIMEOUT_S, "stream", [log])
        broker.stop()  # SIGTERM: mosquitto saves sessions and queued messages
        time.sleep(1.0)  # the outage: the stream goes on into paho's queue
        assert stream.sent < QUERIES, "the stream ended before the outage: raise QUERIES"
        broker.start()
        counts = answers.all_of(QUERIES, [log, broker.log_path])
        # four hops each may redeliver their window: stream -> broker -> daemon -> broker ->
        # answers (docs/daemon.md)
        assert _twice(counts) <= 4 * INFLIGHT, counts.most_common(5)
        assert answers.states[-1] == "online" and proc.poll() is None
        assert "retrying in" in log.read_text()
    finally:
        if stream is not None:
            stream.close()
        _kill(proc)
        answers.close()


# -- the daemon is SIGKILLed -------------------------------------------------------------------


def test_daemon_sigkilled_three_times_under_load_answers_everything(broker, tmp_path):
    """Each restart takes its session back; each crash may double at most the broker's
    in-flight window (docs/daemon.md)."""
    site, log = "phoenix3", tmp_path / "phoenix3.log"
    answers = Answers(broker.port, site)
    proc = _serve(broker.url, site, log)
    stream = None
    kills = 0
    try:
        _online(answers, log)
        stream = Stream(broker.port, site)
        for at in (60, 160, 260):
            answers.wait(lambda a: len(a.counts) >= at, ANSWER_TIMEOUT_S, "stream", [log])
            seen = len(answers.states)
            proc.kill()
            proc.wait(timeout=30)
            kills += 1
            proc = _serve(broker.url, site, log)
            _online(answers, log, after=seen)  # the will said offline, the new one online
        counts = answers.all_of(QUERIES, [log])
        assert _twice(counts) <= kills * INFLIGHT, counts.most_common(5)
    finally:
        if stream is not None:
            stream.close()
        _kill(proc)
        answers.close()


# -- the network is cut or stalled -------------------------------------------------------------


class Proxy:
    """A TCP proxy from a port of its own to `upstream`. `cut()` closes every connection and
    refuses new ones, `stall()` stops forwarding (connections stay open, bytes wait),
    `restore()` goes back to forwarding."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.refusing = False
        self.accepted = 0
        self._pairs: List[Tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            if not select.select([self.server], [], [], 0.1)[0]:
                continue
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            if self.refusing:
                conn.close()
                continue
            up = socket.create_connection(("127.0.0.1", self.upstream))
            with self._lock:
                self._pairs.append((conn, up))
                self.accepted += 1
            threading.Thread(target=self._pump, args=(conn, up), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        try:
            while not self._closed.is_set():
                if not self.flowing.wait(0.1):
                    continue
                for sock in select.select([a, b], [], [], 0.1)[0]:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peer[sock].sendall(data)
        except (OSError, ValueError):  # cut() closed them under us (ValueError: fd -1)
            pass
        finally:
            self._drop(a, b)

    def _drop(self, a: socket.socket, b: socket.socket) -> None:
        with self._lock:
            if (a, b) in self._pairs:
                self._pairs.remove((a, b))
        for sock in (a, b):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def cut(self) -> None:
        self.refusing = True
        with self._lock:
            pairs = list(self._pairs)
        for a, b in pairs:
            self._drop(a, b)

    def stall(self) -> None:
        self.flowing.clear()

    def restore(self) -> None:
        self.refusing = False
        self.flowing.set()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self.server.close()


@pytest.mark.parametrize("fault, outage_s", [("cut", 2.0), ("stall", 1.0), ("stall", 5.0)],
                         ids=["cut-2s", "stall-1s", "stall-5s-past-keepalive"])
def test_network_cut_or_stalled_then_restored_loses_nothing(broker, tmp_path, fault, outage_s):
    """The daemon reaches the broker through the proxy (keep-alive 2 s, so a 5 s stall is a
    dead connection on both sides); the stream and the answers go to the broker directly, so
    queries queue for the daemon's session meanwhile."""
    site, log = f"{fault}{outage_s:g}".replace(".", "-"), tmp_path / "net.log"
    proxy = Proxy(broker.port)
    answers = Answers(broker.port, site)
    proc = _serve(f"mqtt://127.0.0.1:{proxy.port}", site, log, "--keepalive", "2")
    stream = None
    try:
        _online(answers, log)
        stream = Stream(broker.port, site)
        answers.wait(lambda a: len(a.counts) >= 80, ANSWER_TIMEOUT_S, "stream", [log])
        if fault == "cut":
            proxy.cut()
        else:
            proxy.stall()
        time.sleep(outage_s)
        assert stream.sent < QUERIES, "the stream ended before the outage: raise QUERIES"
        proxy.restore()
        counts = answers.all_of(QUERIES, [log, broker.log_path])
        # two hops cross the proxy: broker -> daemon and daemon -> broker (docs/daemon.md)
        assert _twice(counts) <= 2 * INFLIGHT, counts.most_common(5)
        assert answers.states[-1] == "online" and proc.poll() is None, answers.states
        if fault == "cut" or outage_s > 3:  # the connection died: a reconnect, by itself
            assert proxy.accepted >= 2 and "retrying in" in log.read_text()
        else:  # shorter than the keep-alive: the same connection carried on
            assert proxy.accepted == 1, log.read_text()
    finally:
        if stream is not None:
            stream.close()
        _kill(proc)
        answers.close()
        proxy.close()
