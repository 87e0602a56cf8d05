"""The one place a paho-mqtt 2 client is made, from an `MqttConnection`: the daemon, the
retained publishes and reads (`edge-slm serve`'s telemetry, `edge-slm status`), the OTA link
(`firmware-tools ota`, `firmware-tools ota-agent`) and `edge-slm demo` all connect through here, so
TLS, credentials and the protocol version are honoured alike.

    client = make_client(conn)     # version, client id, session, TLS, credentials, packet size
    client.will_set(...)           # whatever else the caller needs, before connecting
    connect(client, conn)          # CONNECT: keep-alive, clean start, MQTT 5 session expiry
"""

from __future__ import annotations

from typing import Any, Dict

from paho.mqtt.client import CallbackAPIVersion, Client, MQTTv5, MQTTv311
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .connection import MqttConnection
from .packets import BoundedClient


def make_client(conn: MqttConnection) -> Client:
    """A paho client (callback API 2) for `conn`, not yet connected; with a packet size limit,
    one that skips larger messages unread (`packets.BoundedClient`)."""
    kwargs: Dict[str, Any] = {"client_id": conn.client_id}
    if conn.mqtt_version == "5":
        kwargs["protocol"] = MQTTv5  # a clean start is asked for on CONNECT (see connect)
    else:
        kwargs.update(clean_session=conn.clean, protocol=MQTTv311)
    if conn.max_packet_bytes is not None:
        client: Client = BoundedClient(CallbackAPIVersion.VERSION2,
                                       max_packet_bytes=conn.max_packet_bytes, **kwargs)
    else:
        client = Client(CallbackAPIVersion.VERSION2, **kwargs)
    if conn.tls:
        client.tls_set(ca_certs=conn.tls_ca, certfile=conn.tls_cert, keyfile=conn.tls_key)
    if conn.username is not None:
        client.username_pw_set(conn.username, conn.password)
    return client


def connect(client: Client, conn: MqttConnection) -> None:
    """Open the connection (the CONNACK arrives in a later loop pass); OSError when the broker
    cannot be reached (refused, unreachable, TLS handshake failed)."""
    if conn.mqtt_version == "5":
        props = Properties(PacketTypes.CONNECT)
        if conn.session_expiry_s is not None:
            props.SessionExpiryInterval = conn.session_expiry_s
        if conn.max_packet_bytes is not None:  # the broker drops larger ones for us
            props.MaximumPacketSize = conn.max_packet_bytes
        client.connect(conn.host, conn.port, conn.keepalive_s, clean_start=conn.clean,
                       properties=props)
    else:
        client.connect(conn.host, conn.port, conn.keepalive_s)
