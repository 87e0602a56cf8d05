"""Which live sources are on (`edge_slm.daemon.home_sources`): Home Assistant's WebSocket URL
made from what the user gives, the access token read from its file or the environment (never
an option, masked in the log once read), topic prefixes checked, and the settings of `serve`
filling HomeSourcesConfig (the packet size raised for Zigbee2MQTT)."""

from __future__ import annotations

import logging

import pytest

from edge_slm.daemon import MAX_PAYLOAD_BYTES, PACKET_OVERHEAD_BYTES
from edge_slm.daemon.home_sources import (MAX_TOKEN_BYTES, TOKEN_ENV, HomeSourcesConfig,
                                          ha_websocket_url, read_ha_token)
from edge_slm.daemon.redact import redact
from edge_slm.daemon.settings import load_settings
from edge_slm.errors import ConfigError


@pytest.mark.parametrize("given,url", [
    ("http://hub:8123", "ws://hub:8123/api/websocket"),
    ("http://hub:8123/", "ws://hub:8123/api/websocket"),
    ("https://ha.example.org", "wss://ha.example.org/api/websocket"),
    ("https://example.org/ha/", "wss://example.org/ha/api/websocket"),
    ("http://[::1]:8123", "ws://[::1]:8123/api/websocket"),
    ("ws://hub:8123/api/websocket", "ws://hub:8123/api/websocket"),
    ("wss://hub/custom/path", "wss://hub/custom/path"),
])
def test_the_websocket_url_is_made_from_what_is_given(given, url):
    assert ha_websocket_url(given) == url
    assert HomeSourcesConfig(ha_url=given).ha_websocket_url == url


@pytest.mark.parametrize("given,words", [
    ("hub:8123", "expected http"), ("ftp://hub", "expected http"), ("http://", "expected"),
    ("http://hub:port", "port"), ("http://me:pw1234@hub:8123", "no credentials"),
    ("http://hub:8123/?token=x", "no query"), (3, "expected a URL"),
])
def test_bad_urls_are_config_errors(given, words):
    with pytest.raises(ConfigError, match=words) as info:
        ha_websocket_url(given)
    assert "pw1234" not in str(info.value)


def test_the_token_comes_from_its_file_and_is_masked_from_then_on(tmp_path, caplog):
    path = tmp_path / "ha.token"
    path.write_text("  eyJ0eXAiOiJKV1Qi.file-token.sig  \n")
    path.chmod(0o600)
    caplog.set_level(logging.WARNING)
    token = read_ha_token(path, {TOKEN_ENV: "ignored-when-a-file-is-given"})
    assert token == "eyJ0eXAiOiJKV1Qi.file-token.sig"
    assert redact(f"sent {token}") == "sent ***"
    assert not caplog.records  # mode 600: no warning
    path.chmod(0o644)
    read_ha_token(path, {})
    assert "others may read" in caplog.text and token not in caplog.text


def test_the_token_comes_from_the_environment_without_a_file():
    assert read_ha_token(None, {TOKEN_ENV: " env-token-1234 "}) == "env-token-1234"
    with pytest.raises(ConfigError, match="--ha-token-file FILE or set EDGE_SLM_HA_TOKEN"):
        read_ha_token(None, {TOKEN_ENV: "  "})


@pytest.mark.parametrize("content,words", [
    (b"", "empty"), (b"two words", "one line"), (b"line\nline", "one line"),
    (b"\xff\xfe", "not UTF-8"), (b"x" * (MAX_TOKEN_BYTES + 1), "larger than"),
])
def test_bad_token_files_are_config_errors(tmp_path, content, words):
    path = tmp_path / "token"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=words):
        read_ha_token(path, {})
    with pytest.raises(ConfigError, match="cannot read"):
        read_ha_token(tmp_path / "missing", {})


@pytest.mark.parametrize("field", ["discovery_prefix", "z2m_base_topic"])
@pytest.mark.parametrize("value", ["", "ha/#", "a/+/b", "/ha", "ha/", "a//b"])
def test_topic_prefixes_are_checked(field, value):
    with pytest.raises(ConfigError, match=field.replace("_", " ")):
        HomeSourcesConfig(**{field: value})


def test_sources_are_off_until_given_and_on_broker_says_which_read_the_broker():
    off = HomeSourcesConfig()
    assert not (off.discovery or off.z2m or off.on_broker) and off.ha_websocket_url is None
    assert HomeSourcesConfig(discovery_prefix="homeassistant").on_broker
    assert HomeSourcesConfig(z2m_base_topic="zigbee2mqtt").on_broker
    with pytest.raises(ConfigError, match="max payload"):
        HomeSourcesConfig(z2m_max_payload_bytes=0)


def test_serve_settings_fill_the_sources_and_raise_the_packet_limit_for_zigbee2mqtt(tmp_path):
    plain = load_settings({})
    assert plain.sources == HomeSourcesConfig()
    assert plain.daemon.max_packet_bytes == MAX_PAYLOAD_BYTES + PACKET_OVERHEAD_BYTES
    toml = tmp_path / "edge-slm.toml"
    toml.write_text('ha_url = "http://hub:8123"\nha_token_file = "ha.token"\n'
                    'discovery = "homeassistant"\nz2m = "z2m"\nz2m_max_payload = 1000000\n')
    settings = load_settings({}, {}, toml)
    assert settings.sources == HomeSourcesConfig(
        ha_url="http://hub:8123", ha_token_file=tmp_path / "ha.token",
        discovery_prefix="homeassistant", z2m_base_topic="z2m", z2m_max_payload_bytes=1000000)
    assert settings.daemon.max_packet_bytes == 1000000 + PACKET_OVERHEAD_BYTES
    with pytest.raises(ConfigError, match="ha_token"):  # the token itself is no key
        toml.write_text('ha_token = "secret"\n')
        load_settings({}, {}, toml)
    with pytest.raises(ConfigError, match="EDGE_SLM_HA_URL"):
        load_settings({}, {"EDGE_SLM_HA_URL": "gopher://hub"})
