"""Over-the-air updates over MQTT: the serial flashing protocol carried on MQTT topics.

    sender (firmware-tools ota)  --frames-->  edge-slm/<site>/ota/in   --> device (ota agent)
    sender                       <--frames--  edge-slm/<site>/ota/out  <-- device

`MqttLink` makes a pair of topics look like a serial port (`read`, `write`, `timeout`,
`in_waiting`), so the very same `FlashSender` and `Agent` state machines, with their CRCs,
window, resume and A/B switch, run unchanged over MQTT (QoS 1, in order). Progress and the
result are also published, retained, on `edge-slm/<site>/ota/status` (`OtaStatus`; the topics
and the message are `edge_slm.protocols.ota`). The client is edge-slm's
(`edge_slm.daemon.client`): TLS, credentials and the MQTT version of the connection are
honoured.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from typing import Callable, Optional, Union

from paho.mqtt.client import Client, ConnectFlags, MQTTMessage
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_slm.daemon.connection import MqttConnection
from edge_slm.errors import ConfigError
from edge_slm.protocols.ota import OtaStatus, frames_from_device, frames_to_device

CONNECT_TIMEOUT_S = 10.0
"""Longest wait for the broker to accept the connection and the subscription."""
READ_TIMEOUT_S = 0.2
"""A read returns after this long without data (the protocol's timers run between reads)."""


class MqttLink:
    """A serial-like byte stream over two MQTT topics (one in, one out)."""

    def __init__(self, conn: MqttConnection, inbound: str, outbound: str,
                 timeout: float = READ_TIMEOUT_S) -> None:
        from edge_slm.daemon.client import connect, make_client

        self.timeout: Optional[float] = timeout
        """Seconds a read waits for data (None: until some comes, as pyserial's ports)."""
        self.outbound = outbound
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._refused: Optional[str] = None
        self._client = _tls_checked(make_client, conn)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *a: self._subscribed.set()

        def on_connect(c: Client, userdata: object, flags: ConnectFlags, reason: ReasonCode,
                       props: Optional[Properties]) -> None:
            if reason.is_failure:  # bad credentials, a client id refused: fail at once
                self._refused = str(reason)
                self._subscribed.set()
            else:
                c.subscribe(inbound, qos=1)

        self._client.on_connect = on_connect
        try:
            connect(self._client, conn)
        except OSError as err:
            raise OSError(f"cannot reach the broker at {conn.where}: {err}") from err
        self._client.loop_start()
        if not self._subscribed.wait(CONNECT_TIMEOUT_S) or self._refused is not None:
            self.close()
            raise OSError(f"the broker at {conn.where} " + (
                f"refused the connection: {self._refused}" if self._refused is not None
                else "did not accept the subscription"))

    def _on_message(self, client: Client, userdata: object, msg: MQTTMessage) -> None:
        with self._cond:
            self._buf.extend(msg.payload)
            self._cond.notify_all()

    @property
    def in_waiting(self) -> int:
        """Bytes ready to read."""
        with self._cond:
            return len(self._buf)

    def read(self, size: int = 1) -> bytes:
        """Up to `size` bytes, waiting at most `timeout` for the first."""
        with self._cond:
            if not self._buf:
                self._cond.wait(self.timeout)
            data = bytes(self._buf[:size])
            del self._buf[:size]
            return data

    def write(self, data: bytes) -> int:
        """Publish `data` (QoS 1, in order)."""
        self._client.publish(self.outbound, bytes(data), qos=1)
        return len(data)

    def publish_status(self, topic: str, status: OtaStatus) -> None:
        """The transfer's progress or result, retained (on `status.topic(site_id=...)`)."""
        from edge_slm.daemon.retained import publish_retained_on

        publish_retained_on(self._client, topic, status.to_payload())

    def close(self) -> None:
        """Disconnect (waiting briefly for what was published to leave)."""
        deadline = time.monotonic() + 2.0
        while self._client.want_write() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._client.disconnect()
        self._client.loop_stop()


def _tls_checked(make_client: Callable[[MqttConnection], Client], conn: MqttConnection
                 ) -> Client:
    """`make_client(conn)`, with a missing or unreadable TLS file a ConfigError that names it
    (not an OSError without a file name, nor an ssl traceback)."""
    files = [(flag, path) for flag, path in (("--tls-ca", conn.tls_ca),
                                             ("--tls-cert", conn.tls_cert),
                                             ("--tls-key", conn.tls_key)) if path]
    for flag, path in files:
        if not os.path.isfile(path):
            raise ConfigError(f"{flag} {path}: no such file")
    try:
        return make_client(conn)
    except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
        names = ", ".join(f"{flag} {path}" for flag, path in files) or "the system's CAs"
        raise ConfigError(f"TLS files ({names}): cannot load them: {err}") from err


def _link_connection(broker: Union[str, MqttConnection], client_id: Optional[str],
                     default_id: str) -> MqttConnection:
    """`broker` (a URL: MQTT 5, no TLS files) as a fresh session under the client id given,
    else the connection's own, else `default_id`."""
    conn = MqttConnection.from_url(broker) if isinstance(broker, str) else broker
    return replace(conn, client_id=client_id or conn.client_id or default_id, clean=True,
                   session_expiry_s=None)


def sender_link(broker: Union[str, MqttConnection], site: str,
                client_id: Optional[str] = None) -> MqttLink:
    """The link `firmware-tools ota` sends over (`broker`: a URL or the whole connection,
    TLS, credentials and MQTT version)."""
    conn = _link_connection(broker, client_id, f"edge-slm-ota-sender-{site}")
    return MqttLink(conn, frames_from_device(site), frames_to_device(site))


def device_link(broker: Union[str, MqttConnection], site: str,
                client_id: Optional[str] = None) -> MqttLink:
    """The link a device's OTA agent listens on."""
    conn = _link_connection(broker, client_id, f"edge-slm-ota-agent-{site}")
    return MqttLink(conn, frames_to_device(site), frames_from_device(site))
