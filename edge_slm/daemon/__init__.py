"""The daemon: the engine served over MQTT and Wyoming (`edge-slm serve`).

    handlers.py         pure: (topic, payload, MQTT 5 properties) in -> list of Outgoing out
    mqtt.py             the paho-mqtt 2 I/O layer: connect, subscribe, publish what handlers
                        return
    client.py           the one paho client factory (the `MqttConnection` of connection.py)
    retained.py         one-shot retained publishes and reads (telemetry, `edge-slm status`)
    served.py           the one engine of a process, parsed under one lock, swapped on reload
    wyoming_handler.py  pure: one Wyoming event in -> the events to send back
    wyoming_server.py   the Wyoming TCP layer (a thread per connection)
    live_home.py        the home names resolve against, merged from the file, Home Assistant
                        (ha_client.py), MQTT discovery and Zigbee2MQTT (mqtt_home.py), kept
                        current

This module holds `DaemonConfig`, built once at the CLI boundary, and the broker and Wyoming
URL parsers. Stdlib only, so the config can be built and checked without paho or the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Mapping, Optional, Tuple
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError
from ..protocols.base import topic_level
from .connection import MqttConnection
from .redact import redact_url, remember_secret

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
MQTT_PORT = 1883
MQTTS_PORT = 8883
DEFAULT_SITE = "default"
MAX_PAYLOAD_BYTES = 64 * 1024
"""Default largest query payload read (a query is a sentence or a few)."""
PACKET_OVERHEAD_BYTES = 8 * 1024
"""Room for a query's topic and MQTT 5 properties (response topic, correlation data, user
properties) on top of its payload, in the default packet size limit."""
MIN_PACKET_BYTES = 1024
"""Smallest packet size limit allowed: the broker's acknowledgements must still fit."""
DEFAULT_WYOMING_PORT = 10500
"""The port Wyoming intent services use by convention."""
RESPONSE_PREFIX = "edge-slm/{site}/reply/"
"""Default of `DaemonConfig.response_prefix` ({site}: the query's site)."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is, from an `mqtt://` or `mqtts://` URL."""

    host: str
    """Host name or address (IPv6 without brackets)."""
    port: int
    """TCP port (1883 for mqtt://, 8883 for mqtts:// when the URL names none)."""
    tls: bool = False
    """True for mqtts://."""
    username: Optional[str] = None
    """User name from the URL, percent-decoded."""
    password: Optional[str] = field(default=None, repr=False)
    """Password from the URL, percent-decoded (never in the repr)."""


def parse_broker_url(url: str) -> BrokerAddress:
    """`mqtt://[user[:password]@]host[:port]` or `mqtts://...`; ConfigError when it is not
    (naming the URL with its password masked). The password is remembered for the log
    filter (`redact.py`)."""
    shown = repr(redact_url(url)) if isinstance(url, str) else repr(url)
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"broker {shown}: expected mqtt://host:port or mqtts://host:port")
    try:
        parts = urlsplit(url)
    except ValueError as err:  # an unclosed IPv6 bracket
        raise ConfigError(f"broker {shown}: {err}") from None
    if parts.password:
        remember_secret(unquote(parts.password))
        remember_secret(parts.password)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"broker {shown}: scheme must be mqtt or mqtts, not {parts.scheme!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"broker {shown}: a broker URL has no path, query or fragment")
    try:
        port = parts.port
    except ValueError as err:
        raise ConfigError(f"broker {shown}: bad port ({err})") from None
    if not parts.hostname:
        raise ConfigError(f"broker {shown}: no host")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname, port=port or (MQTTS_PORT if tls else MQTT_PORT), tls=tls,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None)


def parse_wyoming_url(url: str) -> Tuple[str, int]:
    """(host, port) of `tcp://HOST:PORT` (IPv6 in brackets; port 0: any free one);
    ConfigError when it is not one."""
    shown = repr(url)[:200]
    if not isinstance(url, str) or not url.startswith("tcp://"):
        raise ConfigError(f"Wyoming address {shown}: expected tcp://HOST:PORT, such as "
                          f"tcp://0.0.0.0:{DEFAULT_WYOMING_PORT}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise ConfigError(f"Wyoming address {shown}: bad port or host ({err})") from None
    if not parts.hostname or port is None or parts.username is not None \
            or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"Wyoming address {shown}: expected tcp://HOST:PORT with nothing "
                          f"else, such as tcp://0.0.0.0:{DEFAULT_WYOMING_PORT}")
    return parts.hostname, port


@dataclass(frozen=True)
class DaemonConfig:
    """Everything `edge-slm serve` needs besides the engine; built once by the CLI."""

    broker: str = DEFAULT_BROKER
    """Broker URL: mqtt://[user:pass@]host[:port] or mqtts://... (TLS)."""
    site_ids: Tuple[str, ...] = ()
    """Sites served (Hermes siteId, native topic level); empty: every site."""
    site_areas: Mapping[str, str] = field(default_factory=dict)
    """Area of a site ({"kitchen-satellite": "Kitchen"}): the `area` of commands that mean
    the satellite's room ("turn on the lights", "what's the temperature in here")."""
    mqtt_version: str = "5"
    """"5" (response topics, session expiry) or "3.1.1"."""
    client_id: Optional[str] = None
    """MQTT client id; stable, so the broker keeps our session (None: edge-slm-<status site>)."""
    qos: int = 1
    """QoS of subscriptions and replies: 1, so a query is delivered at least once."""
    keepalive_s: int = 60
    """MQTT keep-alive: the broker declares us dead (last will) after 1.5 times this."""
    session_expiry_s: int = 3600
    """MQTT 5: how long the broker keeps our session and queues queries while we are away."""
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    """Larger payloads are refused unread (a query is a sentence or a few)."""
    max_packet_bytes: int = MAX_PAYLOAD_BYTES + PACKET_OVERHEAD_BYTES
    """Largest MQTT packet taken: MQTT 5 tells the broker (CONNECT Maximum Packet Size), which
    then drops larger messages for us; any larger PUBLISH that still comes (MQTT 3.1.1, a
    broker that ignores it) is skipped unread, acknowledged and answered with an error."""
    max_text_chars: int = 1000
    """Longer texts are refused (the engine's own limit is MAX_TEXT_CHARS, 1000)."""
    max_batch: int = 64
    """Most texts in one native `texts` query."""
    max_batch_chars: int = 10000
    """Most characters of the texts of one native `texts` query together (each text is also
    held to `max_text_chars`)."""
    rate_limit: float = 20.0
    """Texts parsed a second per site (native topic level, Hermes siteId), a batch counting
    each of its texts; beyond it (and the burst) queries are answered with an error unparsed.
    0: no limit."""
    rate_burst: int = 500
    """Texts a site may send at once, after an idle while (at least `max_batch`)."""
    status_site: Optional[str] = None
    """Site of the status topic edge-slm/<site>/status (None: the first site served, else
    "default")."""
    tls_ca: Optional[str] = None
    """mqtts://: CA certificate file (None: the system's trust store)."""
    tls_cert: Optional[str] = None
    """mqtts://: client certificate file, for brokers that want one."""
    tls_key: Optional[str] = None
    """mqtts://: the client certificate's key file."""
    response_prefix: str = RESPONSE_PREFIX
    """MQTT 5 response topics honoured: only topics under this prefix (`{site}` is the
    query's site), so a requester cannot make us publish elsewhere (a lock's command topic)
    with our credentials; a query asking for another one is answered with an error on the
    site's own reply topic."""
    discovery_prefix: Optional[str] = None
    """Home Assistant MQTT discovery prefix ("homeassistant"): announce diagnostic sensors
    (last intent, latency, commands per hour, duty cycle) and publish their state; None: off."""

    def __post_init__(self) -> None:
        if self.qos not in (0, 1, 2):
            raise ConfigError(f"QoS must be 0, 1 or 2, not {self.qos!r}")
        for site in self.site_ids:
            topic_level(site, "site id")
        for site, area in self.site_areas.items():
            topic_level(site, "site id")
            if not isinstance(area, str) or not area.strip():
                raise ConfigError(f"site {site!r}: area must be a non-empty name")
        if self.status_site is not None:
            topic_level(self.status_site, "status site")
        for name in ("keepalive_s", "session_expiry_s", "max_payload_bytes", "max_text_chars",
                     "max_batch", "max_batch_chars", "rate_burst"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if isinstance(self.max_packet_bytes, bool) or not isinstance(self.max_packet_bytes, int) \
                or self.max_packet_bytes < MIN_PACKET_BYTES:
            raise ConfigError(f"max packet size must be an integer of at least "
                              f"{MIN_PACKET_BYTES} bytes, not {self.max_packet_bytes!r}")
        if isinstance(self.rate_limit, bool) or not isinstance(self.rate_limit, (int, float)) \
                or not self.rate_limit >= 0 or self.rate_limit == float("inf"):
            raise ConfigError(f"rate limit must be a number of texts a second, 0 for none, "
                              f"not {self.rate_limit!r}")
        if self.rate_burst < self.max_batch:
            raise ConfigError(f"rate burst {self.rate_burst} is below max_batch "
                              f"{self.max_batch}: a full batch could never be answered")
        self.response_topics_of(DEFAULT_SITE)  # a prefix we cannot publish under
        self.connection()  # the broker URL, MQTT version and TLS files

    def __repr__(self) -> str:
        """The fields, with the broker URL's password masked."""
        shown = (f"{f.name}={self.safe_broker if f.name == 'broker' else getattr(self, f.name)!r}"
                 for f in fields(self))
        return f"{type(self).__name__}({', '.join(shown)})"

    @property
    def safe_broker(self) -> str:
        """The broker URL with its password masked, for messages."""
        return redact_url(self.broker) if isinstance(self.broker, str) else repr(self.broker)

    def connection(self) -> MqttConnection:
        """The daemon's own connection: its client id, a session the broker keeps (MQTT 5:
        clean start off and a session expiry; 3.1.1: clean session off), its keep-alive."""
        return MqttConnection.from_url(
            self.broker, tls_ca=self.tls_ca, tls_cert=self.tls_cert, tls_key=self.tls_key,
            mqtt_version=self.mqtt_version, client_id=self.mqtt_client_id, clean=False,
            keepalive_s=self.keepalive_s, session_expiry_s=self.session_expiry_s,
            max_packet_bytes=self.max_packet_bytes)

    @property
    def address(self) -> BrokerAddress:
        """The broker URL parsed."""
        return parse_broker_url(self.broker)

    @property
    def status_topic_site(self) -> str:
        """The site of our status topic."""
        if self.status_site:
            return self.status_site
        return self.site_ids[0] if self.site_ids else DEFAULT_SITE

    @property
    def mqtt_client_id(self) -> str:
        """The client id used (stable across restarts: the broker keeps our session)."""
        return self.client_id or f"edge-slm-{self.status_topic_site}"

    def response_topics_of(self, site_id: str) -> str:
        """The prefix a response topic of a query of `site_id` must start with (and have more
        after); ConfigError when the configured prefix cannot be one."""
        prefix = self.response_prefix
        try:
            filled = prefix.format(site=site_id) if isinstance(prefix, str) else None
        except (KeyError, IndexError, ValueError):
            filled = None
        if not filled or not filled.endswith("/") or any(c in filled for c in "+#\x00"):
            raise ConfigError(f"response prefix {prefix!r}: expected topic levels ending in "
                              "/, {site} the only field, no + # or NUL "
                              "(like edge-slm/{site}/reply/)")
        return filled

    def serves(self, site_id: str) -> bool:
        """True when this daemon answers queries of `site_id`."""
        return not self.site_ids or site_id in self.site_ids
