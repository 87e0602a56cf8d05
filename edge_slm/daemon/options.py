"""Command-line options that `edge-slm` and `firmware-tools` share, so that one concept has
one name across every command (device side: `firmware_tools` may import it, `edge_slm.cli`
is a layer it may not).

A concept that once had two spellings keeps the old one as a hidden alias, so scripts written
for it keep working while --help shows a single name:

    --trusted-key PUB.pem   (was --pubkey in verify, serial-agent, ota-agent)
    --site-id ID            (was --site in ota and ota-agent)
    --home FILE             (was --inventory in corpus)

The OTA commands' broker options are named and explained as `edge-slm serve` names them:

    add_link_args(p)                  # --broker (required), --mqtt-version, --client-id,
                                      # --tls-ca, --tls-cert, --tls-key
    conn = link_connection(args)      # ConfigError for a bad URL or TLS files without mqtts://
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

from .connection import MqttConnection


def add_renamed_flag(parser: argparse.ArgumentParser, flag: str, old_flag: str,
                     **kwargs: Any) -> argparse.Action:
    """Add `flag` (argparse's `kwargs`) with its former spelling `old_flag` as an alias: one
    argument (same destination, action, `required`), but --help and error messages show
    `flag` only."""
    action = parser.add_argument(flag, old_flag, **kwargs)
    # The parser looks option strings up in its own table, where both stay; help and usage
    # print the action's list.
    action.option_strings = [s for s in action.option_strings if s != old_flag]
    return action


def add_trusted_key_arg(parser: argparse.ArgumentParser, help: str,
                        required: bool = False) -> argparse.Action:
    """`--trusted-key PUB.pem`, repeatable (the old `--pubkey` still works): a list of paths,
    empty when none is given."""
    return add_renamed_flag(parser, "--trusted-key", "--pubkey", type=Path, action="append",
                            default=None if required else [], required=required,
                            metavar="PUB.pem", help=help)


def add_site_id_arg(parser: argparse.ArgumentParser, help: str) -> argparse.Action:
    """`--site-id ID`, required (the old `--site` still works)."""
    return add_renamed_flag(parser, "--site-id", "--site", required=True, metavar="ID",
                            help=help)


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
