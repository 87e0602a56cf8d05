"""The embedded broker: each backend starts on a free loopback port, a real paho client
connects, publishes and receives through it, and stop() frees the port. Without any backend
the error says what to install. No sleeps: messages are awaited with timeouts."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mqtt_fixtures import MOSQUITTO, WAIT_S

from edge_slm.daemon import broker as b

HAS_MOSQUITTO = b.find_mosquitto() is not None
needs_mosquitto = pytest.mark.skipif(not HAS_MOSQUITTO, reason="mosquitto is not installed")


def _round_trip(url: str, version: str) -> bytes:
    """Connect a paho client to `url`, subscribe, publish at QoS 1 and return what came back."""
    from paho.mqtt.client import CallbackAPIVersion, Client, MQTTv5, MQTTv311

    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    got: "queue.Queue[bytes]" = queue.Queue()
    subscribed = threading.Event()
    client = Client(CallbackAPIVersion.VERSION2, client_id="",
                    protocol=MQTTv5 if version == "5" else MQTTv311)
    client.on_connect = lambda c, *a: c.subscribe("test/echo", qos=1)
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_message = lambda c, u, msg: got.put(bytes(msg.payload))
    client.connect(host, int(port))
    client.loop_start()
    try:
        assert subscribed.wait(WAIT_S), "no SUBACK"
        client.publish("test/echo", b"hello broker", qos=1).wait_for_publish(WAIT_S)
        return got.get(timeout=WAIT_S)
    finally:
        client.disconnect()
        client.loop_stop()


def _port_is_free(port: int) -> bool:
    """Nobody answers on the port, and a server may listen on it again."""
    with socket.socket() as s:
        if s.connect_ex((b.LOOPBACK, port)) == 0:
            return False
    return b.port_free(b.LOOPBACK, port)


@needs_mosquitto
def test_mosquitto_backend_serves_mqtt5_and_stop_frees_the_port():
    broker = b.EmbeddedBroker(port=0, backends=(b.MOSQUITTO,))
    url = broker.start()
    try:
        assert broker.backend == b.MOSQUITTO and broker.mqtt_version == "5"
        assert url == f"mqtt://127.0.0.1:{broker.port}" and broker.alive()
        assert _round_trip(url, "5") == b"hello broker"
        assert _round_trip(url, "3.1.1") == b"hello broker"
        port = broker.port
    finally:
        broker.stop()
    assert not broker.alive() and broker.port is None
    assert _port_is_free(port)
    broker.stop()  # idempotent


@needs_mosquitto
def test_mosquitto_queues_for_an_absent_persistent_session():
    """What the duty-cycled daemon relies on: QoS 1 messages published while its persistent
    session is disconnected are delivered when it comes back."""
    from paho.mqtt.client import CallbackAPIVersion, Client, MQTTv5
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    with b.EmbeddedBroker(backends=(b.MOSQUITTO,)) as broker:
        assert broker.persistent_sessions
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 60
        got: "queue.Queue[bytes]" = queue.Queue()
        subscribed = threading.Event()
        sleeper = Client(CallbackAPIVersion.VERSION2, client_id="sleeper", protocol=MQTTv5)
        sleeper.on_connect = lambda c, u, flags, *a: (
            None if flags.session_present else c.subscribe("test/queued", qos=1))
        sleeper.on_subscribe = lambda *a: subscribed.set()
        sleeper.on_message = lambda c, u, msg: got.put(bytes(msg.payload))
        sleeper.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        sleeper.loop_start()
        assert subscribed.wait(WAIT_S)
        sleeper.disconnect()
        sleeper.loop_stop()
        sender = Client(CallbackAPIVersion.VERSION2, protocol=MQTTv5)
        sender.connect("127.0.0.1", broker.port)
        sender.loop_start()
        sender.publish("test/queued", b"while asleep", qos=1).wait_for_publish(WAIT_S)
        sender.disconnect()
        sender.loop_stop()
        sleeper.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        sleeper.loop_start()
        try:
            assert got.get(timeout=WAIT_S) == b"while asleep"
        finally:
            sleeper.disconnect()
            sleeper.loop_stop()


def _gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its new parent counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@needs_mosquitto
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_mosquitto_dies_with_a_killed_parent():
    code = ("import sys\nfrom edge_slm.daemon.broker import EmbeddedBroker, MOSQUITTO\n"
            "b = EmbeddedBroker(backends=(MOSQUITTO,)); b.start()\n"
            "print(b.pid, flush=True)\nsys.stdin.read()\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True,
                              cwd=str(Path(__file__).resolve().parent.parent))
    try:
        pid = int(parent.stdout.readline())
        assert not _gone(pid)
        os.kill(parent.pid, signal.SIGKILL)  # no chance to stop() its broker
        parent.wait(timeout=WAIT_S)
        deadline = time.monotonic() + WAIT_S
        while not _gone(pid) and time.monotonic() < deadline:
            threading.Event().wait(0.05)
        assert _gone(pid), "mosquitto outlived the process that started it"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@needs_mosquitto
def test_context_manager_and_a_chosen_port():
    port = b.free_port()
    with b.EmbeddedBroker(port=port, mosquitto_path=MOSQUITTO) as broker:
        assert broker.url == f"mqtt://127.0.0.1:{port}"
        assert _round_trip(broker.url, "5") == b"hello broker"
    assert _port_is_free(port)


@needs_mosquitto
def test_a_taken_port_is_a_clear_error():
    with b.EmbeddedBroker(port=0, backends=(b.MOSQUITTO,)) as first:
        second = b.EmbeddedBroker(port=first.port, backends=(b.MOSQUITTO,))
        with pytest.raises(b.EmbeddedBrokerError, match="already in use"):
            second.start()
        assert not second.alive()
        assert _round_trip(first.url, "5") == b"hello broker"  # the first one is unharmed


def test_amqtt_backend_serves_mqtt_3_1_1():
    pytest.importorskip("amqtt")
    with b.EmbeddedBroker(port=0, backends=(b.AMQTT,)) as broker:
        assert broker.backend == b.AMQTT and broker.mqtt_version == "3.1.1"
        assert not broker.persistent_sessions
        assert _round_trip(broker.url, "3.1.1") == b"hello broker"
        port = broker.port
    assert _port_is_free(port)


def test_no_backend_says_what_to_install(tmp_path):
    missing = str(tmp_path / "no-mosquitto")
    broker = b.EmbeddedBroker(backends=(b.MOSQUITTO,), mosquitto_path=missing)
    with pytest.raises(b.EmbeddedBrokerError) as err:
        broker.start()
    assert "apt-get install mosquitto" in str(err.value)
    assert "pip install amqtt" in str(err.value)
    assert b.MOSQUITTO not in b.available_backends(missing)
    with pytest.raises(b.EmbeddedBrokerError, match="not started"):
        broker.url


@pytest.mark.parametrize("kwargs", [{"port": -1}, {"port": 70000}, {"backends": ("rabbit",)},
                                    {"backends": ()}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        b.EmbeddedBroker(**kwargs)
