"""A real mosquitto broker on a free loopback port, and a small paho client that records what
it receives, for the daemon's integration tests.

    from mqtt_fixtures import Probe, mosquitto_fixture  # noqa: F401 (fixture "mosquitto")

The broker is the Debian `mosquitto` package (/usr/sbin/mosquitto) started by the project's
one launcher, `edge_slm.daemon.mosquitto.MosquittoProcess`; tests that need it are skipped
when it is not installed. Nothing here sleeps for timing: readiness is a successful TCP
connection, and messages are waited for on a queue with a timeout.
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional

import pytest

from edge_slm.daemon.mosquitto import MOSQUITTO_PATHS, MosquittoProcess, find_mosquitto

MOSQUITTO = find_mosquitto() or MOSQUITTO_PATHS[0]
WAIT_S = 10.0
"""Longest wait for an expected message (generous: CI machines are busy)."""


class Mosquitto(MosquittoProcess):
    """The shared launcher (`edge_slm.daemon.mosquitto`) with the tests' defaults: a loopback
    listener on a free port, anonymous clients (or only the `users` given), no persistence
    (unless asked for), everything logged."""

    def __init__(self, folder: Path, port: Optional[int] = None, persistence: bool = False,
                 users: Optional[Mapping[str, str]] = None) -> None:
        password_file = None
        if users:
            folder.mkdir(parents=True, exist_ok=True)
            password_file = folder / "passwords"
            write_password_file(password_file, users)
        super().__init__(folder, port=port or 0, binary=MOSQUITTO, persistence=persistence,
                         password_file=password_file)

    def start(self) -> "Mosquitto":
        """Start it and wait until it accepts connections."""
        super().start()
        return self


def write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """A mosquitto password file: `user:$6$<salt>$<SHA-512 of password + salt>`, base64 (the
    format mosquitto_passwd wrote before PBKDF2, which mosquitto 2 still reads)."""
    lines = []
    for user, password in users.items():
        salt = os.urandom(12)
        digest = hashlib.sha512(password.encode("utf-8") + salt).digest()
        lines.append(f"{user}:$6${base64.b64encode(salt).decode()}$"
                     f"{base64.b64encode(digest).decode()}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


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

    def publish_retained(self, topic: str, payload: Any) -> None:
        """Publish retained at QoS 1 (an empty payload clears the topic) and wait for the
        broker's acknowledgement."""
        self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(WAIT_S)

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
