"""The broker options of the OTA commands (`edge-slm ota-agent`, `firmware-tools ota`), named
and explained as `edge-slm serve` names them, and the `MqttConnection` they make.

    add_link_args(p)                  # --broker (required), --mqtt-version, --client-id,
                                      # --tls-ca, --tls-cert, --tls-key
    conn = link_connection(args)      # ConfigError for a bad URL or TLS files without mqtts://
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from ..daemon.connection import MqttConnection


def add_link_args(p: argparse.ArgumentParser) -> None:
    """Register the options (the client id's default is the command's own)."""
    p.add_argument("--broker", required=True,
                   help="broker URL: mqtt://[user:pass@]host[:port] or mqtts://...")
    p.add_argument("--mqtt-version", choices=("5", "3.1.1"), default="5",
                   help="MQTT protocol version (default: %(default)s)")
    p.add_argument("--client-id", help="MQTT client id (default: edge-slm-ota-sender-<site> "
                                       "or edge-slm-ota-agent-<site>)")
    p.add_argument("--tls-ca", type=Path, help="mqtts://: CA certificate file")
    p.add_argument("--tls-cert", type=Path, help="mqtts://: client certificate file")
    p.add_argument("--tls-key", type=Path, help="mqtts://: client key file")


def link_connection(args: argparse.Namespace) -> MqttConnection:
    """The `MqttConnection` of the options (client id "" when none is given: the link picks
    its default)."""
    def opt(path: Optional[Path]) -> Optional[str]:
        return str(path) if path is not None else None

    return MqttConnection.from_url(args.broker, mqtt_version=args.mqtt_version,
                                   client_id=args.client_id or "", tls_ca=opt(args.tls_ca),
                                   tls_cert=opt(args.tls_cert), tls_key=opt(args.tls_key))
