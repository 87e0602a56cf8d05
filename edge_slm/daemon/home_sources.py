"""Which live sources of the home are on, and how to reach them: `HomeSourcesConfig`, built once
at the command line (from `edge-slm serve`'s settings or `edge-slm home show`'s flags).

    sources = HomeSourcesConfig(ha_url="http://hub:8123", ha_token_file=Path("ha.token"),
                                discovery_prefix="homeassistant", z2m_base_topic="zigbee2mqtt")
    sources.ha_websocket_url          # 'ws://hub:8123/api/websocket'
    token = read_ha_token(sources.ha_token_file, os.environ)   # masked in every log line

The source names, in the order of their precedence (docs/home-assistant.md, "The home
edge-slm knows"): the home file (`--home`), Home Assistant (`--ha-url`), Home Assistant MQTT
discovery configs on the broker (`--discovery`), Zigbee2MQTT's device list (`--z2m`).

The access token is never an option's value: it comes from a file (`--ha-token-file`) or the
environment (`EDGE_SLM_HA_TOKEN`), and is remembered by the log filter (`redact.py`) as soon as
it is read. Stdlib only.
"""

from __future__ import annotations

import logging
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError
from .redact import redact_url, remember_secret

_LOGGER = logging.getLogger(__name__)

FILE, HOME_ASSISTANT, MQTT_DISCOVERY, ZIGBEE2MQTT = (
    "file", "home_assistant", "mqtt_discovery", "zigbee2mqtt")
SOURCES: Tuple[str, ...] = (FILE, HOME_ASSISTANT, MQTT_DISCOVERY, ZIGBEE2MQTT)
"""The sources of names, first the one whose word wins when two have the same name."""
SHIPPED = "shipped"
"""What the summary calls the bundle's own home, the fallback when no source gave a name."""
TOKEN_ENV = "EDGE_SLM_HA_TOKEN"
"""The environment variable holding Home Assistant's long-lived access token."""
HA_API_PATH = "/api/websocket"
"""Where Home Assistant serves its WebSocket API."""
DEFAULT_DISCOVERY_PREFIX = "homeassistant"
"""Home Assistant's default MQTT discovery prefix."""
DEFAULT_Z2M_BASE_TOPIC = "zigbee2mqtt"
"""Zigbee2MQTT's default base topic."""
Z2M_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
"""Default largest `<base>/bridge/devices` read: the list carries every device's definition
(about 2 to 10 KiB each), so a few hundred devices fit."""
MAX_TOKEN_BYTES = 8192
"""A token file larger than this is refused unread (Home Assistant's tokens are ~200 bytes)."""


@dataclass(frozen=True)
class HomeSourcesConfig:
    """The live sources of names besides the home file (`--home`, a setting of its own)."""

    ha_url: Optional[str] = None
    """Home Assistant: ws://host:8123/api/websocket, or http://host:8123 (the WebSocket URL is
    derived); None: not followed."""
    ha_token_file: Optional[Path] = None
    """A file holding the long-lived access token (else the EDGE_SLM_HA_TOKEN variable)."""
    discovery_prefix: Optional[str] = None
    """Learn names from the Home Assistant MQTT discovery configs under this prefix on the
    daemon's broker (`--discovery` alone: homeassistant); None: not followed."""
    z2m_base_topic: Optional[str] = None
    """Learn names from the device list of the Zigbee2MQTT under this base topic on the
    daemon's broker, `<base>/bridge/devices` (`--z2m` alone: zigbee2mqtt); None: not
    followed."""
    z2m_max_payload_bytes: int = Z2M_MAX_PAYLOAD_BYTES
    """Largest Zigbee2MQTT device list read; the daemon's MQTT packet size limit is raised to
    take it when --z2m is on."""

    def __post_init__(self) -> None:
        if self.ha_url is not None:
            ha_websocket_url(self.ha_url)  # ConfigError for a URL we cannot speak to
        for name in ("discovery_prefix", "z2m_base_topic"):
            if getattr(self, name) is not None:
                topic_prefix(getattr(self, name), name.replace("_", " "))
        size = self.z2m_max_payload_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ConfigError(f"z2m max payload must be a positive number of bytes, not "
                              f"{size!r}")

    @property
    def ha_websocket_url(self) -> Optional[str]:
        """Home Assistant's WebSocket URL (None when it is not followed)."""
        return ha_websocket_url(self.ha_url) if self.ha_url is not None else None

    @property
    def discovery(self) -> bool:
        """Whether MQTT discovery configs are followed."""
        return self.discovery_prefix is not None

    @property
    def z2m(self) -> bool:
        """Whether Zigbee2MQTT's device list is followed."""
        return self.z2m_base_topic is not None

    @property
    def on_broker(self) -> bool:
        """Whether a source reads the daemon's broker (discovery or Zigbee2MQTT)."""
        return self.discovery or self.z2m


def topic_prefix(value: object, what: str) -> str:
    """`value` as topic levels to subscribe under (no wildcards, no empty level)."""
    if not isinstance(value, str) or not value or any(c in value for c in "+#\x00") \
            or "" in value.split("/"):
        raise ConfigError(f"{what} {value!r}: expected topic levels such as homeassistant "
                          "(no + or #, no empty level)")
    return value


def ha_websocket_url(url: str) -> str:
    """The WebSocket URL of a Home Assistant: ws:// and wss:// URLs as given, http(s)://host
    with `/api/websocket` added (after any path, for a proxy that serves HA under one);
    ConfigError for anything else, and for credentials in the URL (the token has its file)."""
    shown = redact_url(url) if isinstance(url, str) else repr(url)
    if not isinstance(url, str):
        raise ConfigError(f"Home Assistant URL {shown}: expected a URL")
    try:
        parts = urlsplit(url)
        parts.port  # a port that is no number is a ValueError
    except ValueError as err:
        raise ConfigError(f"Home Assistant URL {shown!r}: {err}") from None
    if parts.scheme not in ("ws", "wss", "http", "https") or not parts.hostname:
        raise ConfigError(f"Home Assistant URL {shown!r}: expected http://host:8123 or "
                          "ws://host:8123/api/websocket")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"Home Assistant URL {shown!r}: no credentials in the URL; the "
                          f"access token goes in --ha-token-file or {TOKEN_ENV}")
    if parts.query or parts.fragment:
        raise ConfigError(f"Home Assistant URL {shown!r}: no query or fragment")
    if parts.scheme in ("ws", "wss"):
        return url
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + HA_API_PATH, "", ""))


def read_ha_token(token_file: Optional[Path], environ: Mapping[str, str]) -> str:
    """Home Assistant's long-lived access token, from `token_file` or else EDGE_SLM_HA_TOKEN
    in `environ`; ConfigError when neither gives one. The log filter masks it from now on."""
    if token_file is not None:
        where = str(token_file)
        try:
            with open(token_file, "rb") as f:
                mode = Path(token_file).stat().st_mode
                data = f.read(MAX_TOKEN_BYTES + 1)
        except OSError as err:
            raise ConfigError(f"--ha-token-file {where}: cannot read it ({err.strerror})") \
                from None
        if len(data) > MAX_TOKEN_BYTES:
            raise ConfigError(f"--ha-token-file {where}: larger than {MAX_TOKEN_BYTES} bytes; "
                              "it should hold the access token only")
        try:
            token = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ConfigError(f"--ha-token-file {where}: not UTF-8 text") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            _LOGGER.warning("%s: others may read this access token (chmod 600 it)", where)
    else:
        where = TOKEN_ENV
        token = environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise ConfigError(f"Home Assistant needs a long-lived access token: give "
                              f"--ha-token-file FILE or set {TOKEN_ENV} (make one on your "
                              "Home Assistant profile page, Security tab)")
    if not token:
        raise ConfigError(f"{where}: empty; put the long-lived access token in it")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise ConfigError(f"{where}: the token must be one line without spaces")
    remember_secret(token)
    return token
