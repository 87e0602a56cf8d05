"""docs/security.md, run as written: its mosquitto ACL (with passwords) and its TLS listener
(client certificates as users) on a real mosquitto, with `edge-slm serve` as the daemon's
user. Each role may publish what its row of the topic table says and nothing else (MQTT 5
PUBACK "Not authorized" otherwise); the daemon answers through the ACL; a satellite does not
read the intents it may not read; a TLS client without a certificate is refused. The blocks
are taken from the page, so the page cannot drift from what was tested."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import pwd
import queue
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from mqtt_fixtures import MOSQUITTO, WAIT_S, Mosquitto

from edge_slm.runtime.engine import default_bundle_path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "security.md"
USERS = ("edge-slm", "kitchen", "hall", "homeassistant", "ota-admin", "ota-agent-kitchen")
SILENCE_S = 1.0
"""After a delivery that came: how long one that must not come has to show up."""

pytestmark = pytest.mark.skipif(not Path(MOSQUITTO).exists(), reason="needs mosquitto")


def _block(first_line: str) -> str:
    """The fenced block of docs/security.md that starts with `first_line`."""
    text = DOC.read_text()
    for part in text.split("```")[1::2]:
        body = part.split("\n", 1)[1] if "\n" in part else ""
        if body.startswith(first_line):
            return body
    raise AssertionError(f"no block starting with {first_line!r} in {DOC}")


class Client:
    """A paho MQTT 5 client of one user that records PUBACK reasons and what it receives."""

    def __init__(self, port: int, user: str, password: Optional[str] = None,
                 tls: Optional[Dict[str, str]] = None, topics: List[str] = ()) -> None:
        from paho.mqtt.client import CallbackAPIVersion
        from paho.mqtt.client import Client as Paho
        from paho.mqtt.client import MQTTv5

        self.got: "queue.Queue[Any]" = queue.Queue()
        self.reasons: Dict[int, Any] = {}
        self._acked = threading.Condition()
        ready = threading.Event()
        self.client = Paho(CallbackAPIVersion.VERSION2, client_id=f"test-{user}",
                           protocol=MQTTv5)
        if password is not None:
            self.client.username_pw_set(user, password)
        if tls is not None:
            self.client.tls_set(ca_certs=tls["ca"], certfile=tls["cert"], keyfile=tls["key"])
        self.client.on_connect = lambda c, *a: (c.subscribe([(t, 1) for t in topics])
                                                if topics else ready.set())
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = lambda c, u, m: self.got.put((m.topic, json.loads(m.payload)))
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(WAIT_S), f"{user} did not connect"

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        with self._acked:
            self.reasons[mid] = reason
            self._acked.notify_all()

    def may_publish(self, topic: str, payload: Any = "{}") -> bool:
        """Publish at QoS 1: True when the broker accepted it, False for "Not authorized"."""
        info = self.client.publish(topic, json.dumps(payload), qos=1)
        with self._acked:
            assert self._acked.wait_for(lambda: info.mid in self.reasons, WAIT_S), topic
            return not self.reasons[info.mid].is_failure

    def expect(self, topic: str, timeout: float = WAIT_S) -> Any:
        """The payload of the next message on `topic` (others are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            got_topic, payload = self.got.get(timeout=max(0.01, deadline - time.monotonic()))
            if got_topic == topic:
                return payload

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _serve(url: str, log: Path, *argv: str) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edge_slm", "serve", "--bundle",
             str(default_bundle_path("int8")), "--broker", url, "--site-id", "kitchen", *argv],
            stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO),
            env=dict(os.environ, PYTHONPATH=str(REPO)))


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


# -- the ACL, with passwords -------------------------------------------------------------------


class AclMosquitto(Mosquitto):
    """The tests' mosquitto with docs/security.md's ACL."""

    def __init__(self, folder: Path, users: Dict[str, str], acl: Path) -> None:
        super().__init__(folder, users=users)
        self.acl = acl

    def config_lines(self) -> List[str]:
        return super().config_lines() + [f"acl_file {self.acl}"]


ALLOWED = [  # (user, topic, may publish) from the topic table
    ("kitchen", "hermes/nlu/query", True), ("kitchen", "edge-slm/kitchen/query", True),
    ("kitchen", "hermes/intent/HassTurnOn", False), ("kitchen", "edge-slm/hall/query", False),
    ("kitchen", "edge-slm/kitchen/intent", False), ("kitchen", "edge-slm/kitchen/status", False),
    ("kitchen", "edge-slm/kitchen/ota/in", False), ("hall", "edge-slm/hall/query", True),
    ("homeassistant", "hermes/intent/HassTurnOn", False),
    ("homeassistant", "edge-slm/kitchen/status", False),
    ("homeassistant", "homeassistant/status", True),
    ("ota-admin", "edge-slm/kitchen/ota/in", True),
    ("ota-admin", "edge-slm/kitchen/ota/out", False),
    ("ota-admin", "edge-slm/kitchen/ota/status", False),
    ("ota-agent-kitchen", "edge-slm/kitchen/ota/out", True),
    ("ota-agent-kitchen", "edge-slm/kitchen/ota/status", True),
    ("ota-agent-kitchen", "edge-slm/hall/ota/out", False),
    ("ota-agent-kitchen", "edge-slm/kitchen/ota/in", False),
    ("edge-slm", "hermes/nlu/query", False), ("edge-slm", "edge-slm/kitchen/ota/in", False),
]


def test_the_acl_lets_each_role_publish_its_own_topics_only(tmp_path):
    acl = tmp_path / "edge-slm.acl"
    acl.write_text(_block("# /etc/mosquitto/edge-slm.acl"))
    users = {u: f"pw-{u}" for u in USERS}
    broker = AclMosquitto(tmp_path / "broker", users, acl).start()
    clients: Dict[str, Client] = {}
    try:
        for user in USERS:
            clients[user] = Client(broker.port, user, users[user])
        refused = [(u, t) for u, t, ok in ALLOWED if clients[u].may_publish(t) != ok]
        assert not refused, f"the ACL disagrees with the topic table on {refused}"
    finally:
        for client in clients.values():
            client.close()
        broker.stop()


def test_the_daemon_answers_through_the_acl_and_satellites_do_not_read_intents(tmp_path):
    acl = tmp_path / "edge-slm.acl"
    acl.write_text(_block("# /etc/mosquitto/edge-slm.acl"))
    users = {u: f"pw-{u}" for u in USERS}
    broker = AclMosquitto(tmp_path / "broker", users, acl).start()
    ha = Client(broker.port, "homeassistant", users["homeassistant"],
                topics=["hermes/intent/#", "edge-slm/+/status"])
    kitchen = Client(broker.port, "kitchen", users["kitchen"],
                     topics=["edge-slm/kitchen/intent", "hermes/nlu/intentParsed",
                             "hermes/intent/#"])  # granted, but must stay silent
    log = tmp_path / "serve.log"
    proc = _serve(f"mqtt://edge-slm:{users['edge-slm']}@127.0.0.1:{broker.port}", log)
    try:
        while ha.expect("edge-slm/kitchen/status", 60)["state"] != "online":
            pass
        assert kitchen.may_publish("edge-slm/kitchen/query", {"id": 1, "text": "turn off the "
                                                              "kitchen lights"})
        assert kitchen.expect("edge-slm/kitchen/intent")["id"] == 1, log.read_text()
        assert kitchen.may_publish("hermes/nlu/query", {"input": "turn off the kitchen lights",
                                                        "siteId": "kitchen", "id": "h1"})
        name = kitchen.expect("hermes/nlu/intentParsed")["intent"]["intentName"]
        assert ha.expect(f"hermes/intent/{name}")["id"] == "h1"
        time.sleep(SILENCE_S)  # what the satellite may not read must not come
        assert all(t != f"hermes/intent/{name}" for t, _ in list(kitchen.got.queue))
    finally:
        _stop(proc)
        ha.close()
        kitchen.close()
        broker.stop()


# -- TLS with client certificates ------------------------------------------------------------


def _certificates(folder: Path, names: List[str]) -> None:
    """ca.crt, broker.crt/.key (for 127.0.0.1) and <name>.crt/.key signed by the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def make(cn: str, issuer: Any = None, ca_key: Any = None, san: Any = None) -> Any:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(issuer or subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None),
                                  critical=True))
        if san is not None:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key or key, hashes.SHA256())
        return key, cert

    def write(name: str, key: Any, cert: Any) -> None:
        (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        (folder / f"{name}.key").chmod(0o600)

    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = make("home MQTT CA")
    write("ca", ca_key, ca)
    write("broker", *make("localhost", ca.subject, ca_key,
                          [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]))
    for name in names:
        write(name, *make(name, ca.subject, ca_key))


class TlsMosquitto(Mosquitto):
    """mosquitto with docs/security.md's TLS listener (on our port and files) alone."""

    def __init__(self, folder: Path, certs: Path, acl: Path) -> None:
        super().__init__(folder)
        self.certs, self.acl = certs, acl

    def config_lines(self) -> List[str]:
        lines = [f"user {pwd.getpwuid(os.geteuid()).pw_name}", "persistence false",
                 "log_dest stderr"]
        for line in _block("listener 8883").splitlines():
            line = line.replace("listener 8883", f"listener {self.port} {self.host}")
            line = line.replace("/etc/mosquitto/certs/", f"{self.certs}/")
            lines.append(line.replace("/etc/mosquitto/edge-slm.acl", str(self.acl)))
        return lines


def test_tls_with_client_certificates_as_users(tmp_path):
    certs = tmp_path / "certs"
    _certificates(certs, ["edge-slm", "kitchen"])
    acl = tmp_path / "edge-slm.acl"
    acl.write_text(_block("# /etc/mosquitto/edge-slm.acl"))
    broker = TlsMosquitto(tmp_path / "broker", certs, acl).start()
    tls = {"ca": str(certs / "ca.crt"), "cert": str(certs / "kitchen.crt"),
           "key": str(certs / "kitchen.key")}
    kitchen = Client(broker.port, "kitchen", tls=tls, topics=["edge-slm/kitchen/intent"])
    log = tmp_path / "serve.log"
    proc = _serve(f"mqtts://127.0.0.1:{broker.port}", log, "--tls-ca", tls["ca"],
                  "--tls-cert", str(certs / "edge-slm.crt"), "--tls-key",
                  str(certs / "edge-slm.key"))
    try:
        assert not kitchen.may_publish("hermes/intent/HassTurnOn")  # the CN is the ACL user
        deadline = time.monotonic() + 60
        while True:  # until the daemon is up: then the query is answered
            assert kitchen.may_publish("edge-slm/kitchen/query", {"id": 7, "text": "lamp on"})
            try:
                assert kitchen.expect("edge-slm/kitchen/intent", 1.0)["id"] == 7
                break
            except queue.Empty:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        # no certificate: the handshake (or the first read after it, in TLS 1.3) fails
        context = ssl.create_default_context(cafile=tls["ca"])
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with socket.create_connection(("127.0.0.1", broker.port), timeout=WAIT_S) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                    conn.sendall(b"\x10\x00")  # the start of a CONNECT
                    if not conn.recv(1):
                        raise ConnectionError("closed without a word")
    finally:
        _stop(proc)
        kitchen.close()
        broker.stop()
