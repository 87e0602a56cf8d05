"""A real mosquitto broker on a free loopback port, and a small paho client that records what
it receives, for the daemon's integration tests.

    from mqtt_fixtures import Probe, mosquitto_fixture  # noqa: F401 (fixture "mosquitto")

The broker is the Debian `mosquitto` package (/usr/sbin/mosquitto); tests that need it are
skipped when it is not installed. Nothing here sleeps for timing: readiness is a successful
TCP connection, and messages are waited for on a queue with a timeout.
"""

from __future__ import annotations

import queue
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
BROKER_START_TIMEOUT_S = 10.0
"""Longest wait for mosquitto to accept connections."""
WAIT_S = 10.0
"""Longest wait for an expected message (generous: CI machines are busy)."""


def free_port() -> int:
    """A TCP port nobody listens on (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """A mosquitto process with a generated config: loopback listener, anonymous, no
    persistence."""

    def __init__(self, folder: Path, port: Optional[int] = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "Mosquitto":
        """Start it and wait until it accepts connections."""
        conf = self.folder / f"mosquitto-{self.port}.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                        "persistence false\nlog_dest stderr\n")
        log = open(self.folder / f"mosquitto-{self.port}.log", "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + BROKER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: "
                                   + self.log_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                # not listening yet: wait on the process instead of sleeping blindly
                try:
                    self.proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
        self.stop()
        raise RuntimeError("mosquitto did not start listening: " + self.log_text())

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log_text(self) -> str:
        """What mosquitto logged (for failure messages)."""
        path = self.folder / f"mosquitto-{self.port}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="module", name="mosquitto")
def mosquitto_fixture(tmp_path_factory) -> Iterator[Mosquitto]:
    """A mosquitto broker for the test module."""
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield broker
    broker.stop()


@dataclass
class Received:
    """One message a Probe received."""

    topic: str
    payload: bytes
    retain: bool
    properties: Dict[str, Any]


class Probe:
    """A paho client (MQTT 5 by default) that queues every message it receives."""

    def __init__(self, broker: Mosquitto, topics: List[str], version: int = 5,
                 client_id: str = "") -> None:
        from paho.mqtt.client import CallbackAPIVersion, Client, MQTTv5, MQTTv311

        self.messages: "queue.Queue[Received]" = queue.Queue()
        self._subscribed = threading.Event()
        self._topics = topics
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=MQTTv5 if version == 5 else MQTTv311)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        if not self._subscribed.wait(WAIT_S):
            raise RuntimeError("probe did not get its SUBACK")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        client.subscribe([(t, 1) for t in self._topics])

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        props: Dict[str, Any] = {}
        if getattr(msg, "properties", None) is not None:
            for name in ("CorrelationData", "ResponseTopic"):
                value = getattr(msg.properties, name, None)
                if value is not None:
                    props[name] = value
        self.messages.put(Received(msg.topic, bytes(msg.payload), bool(msg.retain), props))

    def publish(self, topic: str, payload: Any, **properties: Any) -> None:
        """Publish at QoS 1 (with MQTT 5 properties such as ResponseTopic) and wait for the
        broker's acknowledgement."""
        props = None
        if properties:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.PUBLISH)
            for name, value in properties.items():
                setattr(props, name, value)
        info = self.client.publish(topic, payload, qos=1, properties=props)
        info.wait_for_publish(WAIT_S)

    def next(self, timeout: float = WAIT_S) -> Received:
        """The next message; fails the test when none comes within `timeout`."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no message within {timeout} s on {self._topics}")
            raise  # unreachable: pytest.fail raises

    def expect(self, topic: str, timeout: float = WAIT_S) -> Received:
        """The next message on `topic`, skipping others; fails when none comes."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no message on {topic} within {timeout} s")
            msg = self.next(left)
            if msg.topic == topic:
                return msg

    def drain(self) -> None:
        """Forget what was received so far."""
        while not self.messages.empty():
            self.messages.get_nowait()

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()
