"""The one place a paho-mqtt 2 client is made, from an `MqttConnection`: the daemon, the
retained publishes and reads (`edge-slm serve`'s telemetry, `edge-slm status`), the OTA link
(`firmware-tools ota`, `firmware-tools ota-agent`) and `edge-slm demo` all connect through here, so
TLS, credentials and the protocol version are honoured alike.

    client = make_client(conn)     # protocol version, client id, session, TLS, credentials
    client.will_set(...)           # whatever else the caller needs, before connecting
    connect(client, conn)          # CONNECT: keep-alive, clean start, MQTT 5 session expiry
"""

from __future__ import annotations

from paho.mqtt.client import CallbackAPIVersion, Client, MQTTv5, MQTTv311
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .connection import MqttConnection


def make_client(conn: MqttConnection) -> Client:
    """A paho client (callback API 2) for `conn`, not yet connected."""
    if conn.mqtt_version == "5":
        # MQTT 5 asks for a clean start on CONNECT (see connect), not here
        client = Client(CallbackAPIVersion.VERSION2, client_id=conn.client_id, protocol=MQTTv5)
    else:
        client = Client(CallbackAPIVersion.VERSION2, client_id=conn.client_id,
                        clean_session=conn.clean, protocol=MQTTv311)
    if conn.tls:
        client.tls_set(ca_certs=conn.tls_ca, certfile=conn.tls_cert, keyfile=conn.tls_key)
    if conn.username is not None:
        client.username_pw_set(conn.username, conn.password)
    return client


def connect(client: Client, conn: MqttConnection) -> None:
    """Open the connection (the CONNACK arrives in a later loop pass); OSError when the broker
    cannot be reached (refused, unreachable, TLS handshake failed)."""
    if conn.mqtt_version == "5":
        props = None
        if conn.session_expiry_s is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = conn.session_expiry_s
        client.connect(conn.host, conn.port, conn.keepalive_s, clean_start=conn.clean,
                       properties=props)
    else:
        client.connect(conn.host, conn.port, conn.keepalive_s)
