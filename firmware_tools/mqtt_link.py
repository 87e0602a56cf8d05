"""Over-the-air updates over MQTT: the serial flashing protocol carried on MQTT topics.

    sender (firmware-tools ota)  --frames-->  edge-slm/<site>/ota/in   --> device (ota agent)
    sender                       <--frames--  edge-slm/<site>/ota/out  <-- device

`MqttLink` makes a pair of topics look like a serial port (`read`, `write`, `timeout`,
`in_waiting`), so the very same `FlashSender` and `Agent` state machines, with their CRCs,
window, resume and A/B switch, run unchanged over MQTT (QoS 1, in order). Progress and the
result are also published, retained, on `edge-slm/<site>/ota/status`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Optional

OTA_IN = "edge-slm/{site}/ota/in"
"""Frames to the device."""
OTA_OUT = "edge-slm/{site}/ota/out"
"""Frames from the device."""
OTA_STATUS = "edge-slm/{site}/ota/status"
"""Retained progress and result of the latest transfer."""
CONNECT_TIMEOUT_S = 10.0
"""Longest wait for the broker to accept the connection and the subscription."""
READ_TIMEOUT_S = 0.2
"""A read returns after this long without data (the protocol's timers run between reads)."""


class MqttLink:
    """A serial-like byte stream over two MQTT topics (one in, one out)."""

    def __init__(self, broker: str, inbound: str, outbound: str, client_id: str,
                 timeout: float = READ_TIMEOUT_S) -> None:
        import paho.mqtt.client as mqtt

        from edge_slm.daemon import parse_broker_url

        addr = parse_broker_url(broker)
        self.timeout = timeout
        """Seconds a read waits for data."""
        self.outbound = outbound
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=mqtt.MQTTv5)
        if addr.username:
            self._client.username_pw_set(addr.username, addr.password)
        if addr.tls:
            self._client.tls_set()
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(inbound, qos=1)
        try:
            self._client.connect(addr.host, addr.port)
        except OSError as err:
            raise OSError(f"cannot reach the broker at {broker}: {err}") from err
        self._client.loop_start()
        if not self._subscribed.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise OSError(f"the broker at {broker} did not accept the subscription")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
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

    def publish_status(self, topic: str, status: dict) -> None:
        """A retained JSON status message."""
        self._client.publish(topic, json.dumps(status), qos=1, retain=True)

    def close(self) -> None:
        """Disconnect (waiting briefly for what was published to leave)."""
        deadline = time.monotonic() + 2.0
        while self._client.want_write() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._client.disconnect()
        self._client.loop_stop()


def sender_link(broker: str, site: str, client_id: Optional[str] = None) -> MqttLink:
    """The link `firmware-tools ota` sends over."""
    return MqttLink(broker, OTA_OUT.format(site=site), OTA_IN.format(site=site),
                    client_id or f"edge-slm-ota-sender-{site}")


def device_link(broker: str, site: str, client_id: Optional[str] = None) -> MqttLink:
    """The link a device's OTA agent listens on."""
    return MqttLink(broker, OTA_IN.format(site=site), OTA_OUT.format(site=site),
                    client_id or f"edge-slm-ota-agent-{site}")
