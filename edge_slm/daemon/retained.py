"""Retained messages: the one place they are published and read.

    publish_retained(conn, [(topic, payload)], client_id)   # connect, publish, ack, disconnect
    read_retained(conn, ["edge-slm/+/status"])               # {topic: payload} the broker holds
    publish_retained_on(client, topic, payload)              # on a connection already open

`edge-slm serve` publishes its telemetry and the final status of a duty-cycled daemon with
`publish_retained` (a second, short connection: the daemon's own is closed while it sleeps),
`edge-slm status` reads them with `read_retained`, and the OTA link publishes its progress with
`publish_retained_on`. The short-lived clients use the TLS, credentials and protocol version of
the connection they are given, with a clean session, no last will and a client id of their own
(never the daemon's: that would take over its persistent session).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from paho.mqtt.client import MQTT_ERR_SUCCESS, Client, ConnectFlags, MQTTMessage, MQTTMessageInfo
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ..errors import EdgeSlmError
from .client import connect, make_client
from .connection import MqttConnection

_LOGGER = logging.getLogger(__name__)

RETAINED_QOS = 1
"""QoS of retained publishes: the broker acknowledges that it holds the message."""
READ_TIMEOUT_S = 5.0
"""Longest a whole read may take (connect, subscribe, retained messages)."""
RETAINED_QUIET_S = 0.5
"""After the subscription is acknowledged, this long without a message ends a read: the
broker sends retained messages at once, and MQTT has no "that was all" marker."""
PUBLISH_TIMEOUT_S = 5.0
"""Longest a one-shot publish may take (connect, publish, acknowledgement)."""
LOOP_TIMEOUT_S = 0.1
"""Longest wait for network traffic in one loop pass."""
KEEPALIVE_S = 30
"""MQTT keep-alive of the short-lived clients (they live a few seconds)."""
CLOSE_TIMEOUT_S = 1.0
"""Longest wait for our DISCONNECT to be written before the socket is left to close."""


def short_lived(conn: MqttConnection, client_id: str) -> MqttConnection:
    """`conn` (broker, TLS, credentials, version) for a client that lives a few seconds: its
    own client id ("": the broker's choice), a clean session, a short keep-alive."""
    return replace(conn, client_id=client_id, clean=True, keepalive_s=KEEPALIVE_S,
                   session_expiry_s=None)


def publish_retained_on(client: Client, topic: str, payload: bytes,
                        qos: int = RETAINED_QOS) -> MQTTMessageInfo:
    """Publish `payload` retained on `client`'s open connection (paho queues it when the
    connection is not up yet)."""
    return client.publish(topic, payload, qos=qos, retain=True)


def _loop_until(client: Client, done: Callable[[], bool], deadline: float,
                clock: Callable[[], float]) -> bool:
    """Run the client's network until `done()` or the deadline; True when done."""
    while not done():
        left = deadline - clock()
        if left <= 0:
            return False
        if client.loop(timeout=min(LOOP_TIMEOUT_S, left)) != MQTT_ERR_SUCCESS:
            return done()
    return True


@dataclass
class _Heard:
    """What the callbacks of a one-shot connection heard (they run inside the loop)."""

    refused: Optional[str] = None
    """The broker's reason for refusing the connection."""
    infos: Optional[List[MQTTMessageInfo]] = None
    """The publishes sent once connected (publish_retained)."""
    quiet_since: Optional[float] = None
    """When the subscription was acknowledged or the last message came (read_retained)."""


def _close(client: Client, clock: Callable[[], float]) -> None:
    """Disconnect cleanly (no last will is set) and let paho close the socket."""
    client.disconnect()
    _loop_until(client, lambda: client.socket() is None, clock() + CLOSE_TIMEOUT_S, clock)


def publish_retained(conn: MqttConnection, items: Sequence[Tuple[str, bytes]], client_id: str,
                     timeout_s: float = PUBLISH_TIMEOUT_S,
                     clock: Callable[[], float] = time.monotonic) -> bool:
    """Connect as `client_id`, publish each (topic, payload) retained at QoS 1, wait for the
    broker's acknowledgements, disconnect. False (and a warning) when that fails; never raises
    for network trouble."""
    publisher = short_lived(conn, client_id)
    client = make_client(publisher)
    state = _Heard()

    def on_connect(c: Client, userdata: object, flags: ConnectFlags, reason: ReasonCode,
                   properties: Optional[Properties]) -> None:
        if reason.is_failure:
            state.refused = str(reason)
            return
        state.infos = [publish_retained_on(c, topic, payload) for topic, payload in items]

    client.on_connect = on_connect
    deadline = clock() + timeout_s
    try:
        connect(client, publisher)
        done = _loop_until(
            client, lambda: state.refused is not None or (
                state.infos is not None and all(i.is_published() for i in state.infos)),
            deadline, clock)
    except OSError as err:  # refused, unreachable, TLS handshake failed
        _LOGGER.warning("publishing %s failed: %s", ", ".join(t for t, _ in items), err)
        return False
    _close(client, clock)
    if state.refused is not None or not done:
        _LOGGER.warning("publishing %s failed: %s", ", ".join(t for t, _ in items),
                        state.refused or "no acknowledgement in time")
        return False
    return True


def read_retained(conn: MqttConnection, topics: Sequence[str],
                  timeout_s: float = READ_TIMEOUT_S, quiet_s: float = RETAINED_QUIET_S,
                  clock: Callable[[], float] = time.monotonic) -> Dict[str, bytes]:
    """{topic: payload} of what the broker sends on subscribing to `topics` (its retained
    messages), read until `quiet_s` passes without one. EdgeSlmError when the broker cannot
    be reached or does not acknowledge the subscription within `timeout_s`."""
    reader = short_lived(conn, "")
    client = make_client(reader)
    got: Dict[str, bytes] = {}
    state = _Heard()

    def on_connect(c: Client, userdata: object, flags: ConnectFlags, reason: ReasonCode,
                   properties: Optional[Properties]) -> None:
        if reason.is_failure:
            state.refused = str(reason)
        else:
            c.subscribe([(t, RETAINED_QOS) for t in topics])

    def on_subscribe(c: Client, userdata: object, mid: int, reasons: List[ReasonCode],
                     properties: Optional[Properties]) -> None:
        state.quiet_since = clock()

    def on_message(c: Client, userdata: object, msg: MQTTMessage) -> None:
        got[msg.topic] = bytes(msg.payload)
        if state.quiet_since is not None:
            state.quiet_since = clock()

    client.on_connect, client.on_subscribe = on_connect, on_subscribe
    client.on_message = on_message
    deadline = clock() + timeout_s
    try:
        connect(client, reader)
    except OSError as err:
        raise EdgeSlmError(f"cannot reach broker {conn.where}: {err}") from None
    try:
        subscribed = _loop_until(
            client, lambda: state.refused is not None or state.quiet_since is not None,
            deadline, clock)
        if state.refused is not None:
            raise EdgeSlmError(f"broker {conn.where} refused us: {state.refused}")
        if not subscribed:
            raise EdgeSlmError(f"broker {conn.where} did not answer within {timeout_s:g} s")
        _loop_until(client, lambda: state.quiet_since is not None
                    and clock() - state.quiet_since >= quiet_s, deadline, clock)
    finally:
        _close(client, clock)
    return got
