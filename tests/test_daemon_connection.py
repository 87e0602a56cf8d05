"""The one MQTT connection settings object: what it takes from a URL and a DaemonConfig, what
it refuses, and the OTA commands' options that make one (named as `edge-slm serve` names
them). The clients made from it are tested on a real broker (test_daemon_mqtt,
test_firmware_ota)."""

from __future__ import annotations

import pytest

from edge_slm.cli import build_parser as edge_slm_parser
from edge_slm.daemon.options import link_connection
from edge_slm.daemon import DaemonConfig
from edge_slm.daemon.connection import MqttConnection
from edge_slm.daemon.retained import KEEPALIVE_S, short_lived
from firmware_tools.__main__ import build_parser as firmware_parser

CONNECTION_FLAGS = {"--broker", "--mqtt-version", "--client-id", "--tls-ca", "--tls-cert",
                    "--tls-key"}


def test_from_url_takes_host_port_tls_and_credentials():
    conn = MqttConnection.from_url("mqtts://ota%40hub:p%3Aw@hub.local", tls_ca="ca.pem",
                                   mqtt_version="3.1.1", client_id="x")
    assert conn == MqttConnection(host="hub.local", port=8883, tls=True, tls_ca="ca.pem",
                                  username="ota@hub", password="p:w", mqtt_version="3.1.1",
                                  client_id="x", clean=True, keepalive_s=60)
    assert conn.where == "hub.local:8883"


@pytest.mark.parametrize("url, kw", [
    ("mqtt://hub", {"tls_ca": "ca.pem"}), ("mqtts://hub", {"tls_key": "k.pem"}),
    ("mqtt://hub", {"mqtt_version": "4"}), ("mqtt://hub", {"clean": False}),
    ("mqtt://hub", {"keepalive_s": 0}), ("mqtt://hub", {"session_expiry_s": -1}),
    ("mqtt://hub", {"max_packet_bytes": 0}), ("ftp://hub", {}),
])
def test_bad_connections_are_value_errors(url, kw):
    with pytest.raises(ValueError):
        MqttConnection.from_url(url, **kw)


def test_the_daemons_connection_keeps_its_session():
    config = DaemonConfig(broker="mqtts://u:p@hub:8884", site_ids=("kitchen",),
                          mqtt_version="3.1.1", tls_ca="ca.pem", keepalive_s=20,
                          session_expiry_s=600)
    conn = config.connection()
    assert conn == MqttConnection(host="hub", port=8884, tls=True, tls_ca="ca.pem",
                                  username="u", password="p", mqtt_version="3.1.1",
                                  client_id="edge-slm-kitchen", clean=False, keepalive_s=20,
                                  session_expiry_s=600, max_packet_bytes=73728)
    brief = short_lived(conn, "edge-slm-kitchen-telemetry")
    assert (brief.client_id, brief.clean, brief.keepalive_s, brief.session_expiry_s) == (
        "edge-slm-kitchen-telemetry", True, KEEPALIVE_S, None)
    assert (brief.tls_ca, brief.username, brief.mqtt_version) == ("ca.pem", "u", "3.1.1")


def _flags(parser, command):
    sub = next(a for a in parser._actions if a.dest == "command")
    return {s for a in sub.choices[command]._actions for s in a.option_strings}


def test_ota_commands_take_the_connection_options_serve_takes():
    serve = _flags(edge_slm_parser(), "serve")
    assert CONNECTION_FLAGS <= serve
    assert CONNECTION_FLAGS <= _flags(firmware_parser(), "ota-agent")
    assert CONNECTION_FLAGS <= _flags(firmware_parser(), "ota")


def test_ota_options_make_the_connection():
    args = firmware_parser().parse_args(
        ["ota", "b.slm", "--broker", "mqtts://hub:pw@hub.local", "--site", "hall",
         "--mqtt-version", "3.1.1", "--tls-ca", "ca.pem", "--tls-cert", "c.pem",
         "--tls-key", "k.pem"])
    assert link_connection(args) == MqttConnection(
        host="hub.local", port=8883, tls=True, tls_ca="ca.pem", tls_cert="c.pem",
        tls_key="k.pem", username="hub", password="pw", mqtt_version="3.1.1")
    args = firmware_parser().parse_args(
        ["ota-agent", "--broker", "mqtt://hub.local", "--site", "hall", "--slots", "s",
         "--client-id", "hall-agent"])
    conn = link_connection(args)
    assert (conn.mqtt_version, conn.client_id, conn.tls) == ("5", "hall-agent", False)
    args = firmware_parser().parse_args(
        ["ota-agent", "--broker", "mqtt://hub.local", "--site", "hall", "--slots", "s",
         "--tls-ca", "ca.pem"])
    with pytest.raises(ValueError, match="mqtts"):
        link_connection(args)
