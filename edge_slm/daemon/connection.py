"""How to reach an MQTT broker and who we are there: the one settings object every paho client
of edge-slm is made from (`edge_slm.daemon.client`).

    conn = MqttConnection.from_url("mqtts://user:pw@hub:8883", tls_ca="ca.pem",
                                   mqtt_version="3.1.1", client_id="edge-slm-ota-agent-hall")
    conn = DaemonConfig(...).connection()     # the daemon's own, persistent session

Credentials come from the URL (`mqtt://user:password@host`), as everywhere in edge-slm. Stdlib
only: a command line builds and checks it before paho is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import ConfigError

MQTT_VERSIONS = ("5", "3.1.1")
"""The MQTT protocol versions spoken, as the command lines name them."""
DEFAULT_KEEPALIVE_S = 60
"""paho's own default keep-alive: the broker declares a client dead after 1.5 times this."""


@dataclass(frozen=True)
class MqttConnection:
    """Everything a paho-mqtt 2 client needs besides its callbacks (and a last will)."""

    host: str
    """Broker host name or address."""
    port: int
    """Broker TCP port."""
    tls: bool = False
    """Speak TLS (mqtts://)."""
    tls_ca: Optional[str] = None
    """TLS: CA certificate file (None: the system's trust store)."""
    tls_cert: Optional[str] = None
    """TLS: client certificate file, for brokers that want one."""
    tls_key: Optional[str] = None
    """TLS: the client certificate's key file."""
    username: Optional[str] = None
    """User name (None: connect anonymously)."""
    password: Optional[str] = field(default=None, repr=False)
    """Password of the user name (never in the repr)."""
    mqtt_version: str = "5"
    """"5" or "3.1.1"."""
    client_id: str = ""
    """MQTT client id ("": the broker makes one up; only with a clean session)."""
    clean: bool = True
    """A fresh session (MQTT 5 clean start, 3.1.1 clean session); False keeps the broker's
    session of this client id (subscriptions, queued QoS 1 messages)."""
    keepalive_s: int = DEFAULT_KEEPALIVE_S
    """MQTT keep-alive, seconds."""
    session_expiry_s: Optional[int] = None
    """MQTT 5: how long the broker keeps the session after a disconnect (None: not sent, the
    session ends with the connection)."""
    max_packet_bytes: Optional[int] = None
    """Largest packet taken (None: any): MQTT 5 tells the broker (CONNECT Maximum Packet
    Size), and under both versions a larger PUBLISH is skipped unread (`packets.py`)."""

    def __post_init__(self) -> None:
        if self.mqtt_version not in MQTT_VERSIONS:
            raise ConfigError(f"MQTT version must be 5 or 3.1.1, not {self.mqtt_version!r}")
        if not self.host:
            raise ConfigError("broker: no host")
        if isinstance(self.port, bool) or not isinstance(self.port, int) \
                or not 0 < self.port < 65536:
            raise ConfigError(f"broker port must be 1 to 65535, not {self.port!r}")
        for name in ("keepalive_s", "session_expiry_s", "max_packet_bytes"):
            value = getattr(self, name)
            if name != "keepalive_s" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if (self.tls_ca or self.tls_cert or self.tls_key) and not self.tls:
            raise ConfigError("TLS files given but the broker URL is not mqtts://")
        if self.tls_key and not self.tls_cert:
            raise ConfigError("a TLS key needs its certificate (tls_cert)")
        if not self.clean and not self.client_id:
            raise ConfigError("a session kept by the broker needs a client id")

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "MqttConnection":
        """The connection to the broker of an `mqtt://` or `mqtts://` URL (host, port, TLS,
        credentials), the other fields from `kwargs`; ConfigError when something is wrong."""
        from . import parse_broker_url

        address = parse_broker_url(url)
        return cls(host=address.host, port=address.port, tls=address.tls,
                   username=address.username, password=address.password, **kwargs)

    @property
    def where(self) -> str:
        """`host:port`, for messages."""
        return f"{self.host}:{self.port}"
