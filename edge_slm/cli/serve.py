"""`edge-slm serve`: answer Hermes and native intent queries over MQTT, always on.

    edge-slm serve --broker mqtt://127.0.0.1:1883
    edge-slm serve --bundle en-int8.slm --broker mqtts://user:pass@hub:8883 --tls-ca ca.pem \\
        --site-id kitchen --site-area kitchen=Kitchen --home inventory.yaml

Hermes (Rhasspy 2.5): hermes/nlu/query -> hermes/nlu/intentParsed + hermes/intent/<name>, or
hermes/nlu/intentNotRecognized, or hermes/error/nlu. Native: edge-slm/<site>/query ->
edge-slm/<site>/intent (or the MQTT 5 response topic). SIGTERM or SIGINT publishes the
retained offline status and exits. See docs/daemon.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any, Dict, List


def add_mqtt_args(p: argparse.ArgumentParser) -> None:
    """The broker arguments (shared by every subcommand that speaks MQTT)."""
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883",
                   help="broker URL: mqtt://[user:pass@]host[:port] or mqtts://... "
                        "(default: %(default)s)")
    p.add_argument("--mqtt-version", choices=("5", "3.1.1"), default="5",
                   help="MQTT protocol version (default: %(default)s)")
    p.add_argument("--client-id", help="MQTT client id (default: edge-slm-<site>); keep it "
                                       "stable so the broker keeps the session")
    p.add_argument("--qos", type=int, choices=(0, 1, 2), default=1,
                   help="QoS of subscriptions and replies (default: %(default)s)")
    p.add_argument("--tls-ca", type=Path, help="mqtts://: CA certificate file")
    p.add_argument("--tls-cert", type=Path, help="mqtts://: client certificate file")
    p.add_argument("--tls-key", type=Path, help="mqtts://: client key file")


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the subcommand."""
    p = sub.add_parser("serve", help="serve intents over MQTT (Hermes and native JSON)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, help="model bundle (default: the shipped int8 one)")
    p.add_argument("--home", type=Path,
                   help="your home's inventory (YAML: entities, areas, floors) to resolve "
                        "names against")
    add_mqtt_args(p)
    p.add_argument("--site-id", action="append", default=[], metavar="ID",
                   help="serve only this site (repeat for several; default: every site)")
    p.add_argument("--site-area", action="append", default=[], metavar="SITE=AREA",
                   help="the area a site is in: fills a missing area slot (repeatable)")
    p.set_defaults(run=run)


def site_areas(pairs: List[str]) -> Dict[str, str]:
    """{"kitchen": "Kitchen"} from ["kitchen=Kitchen"]; ValueError for a malformed pair."""
    out: Dict[str, str] = {}
    for pair in pairs:
        site, sep, area = pair.partition("=")
        if not sep or not site.strip() or not area.strip():
            raise ValueError(f"--site-area {pair!r}: expected SITE=AREA")
        out[site.strip()] = area.strip()
    return out


def build_config(args: argparse.Namespace) -> Any:
    """The DaemonConfig of the command line (argparse stops here)."""
    from ..daemon import DaemonConfig

    def opt(path: Any) -> Any:
        return str(path) if path is not None else None

    return DaemonConfig(
        broker=args.broker, site_ids=tuple(args.site_id), site_areas=site_areas(args.site_area),
        mqtt_version=args.mqtt_version, client_id=args.client_id, qos=args.qos,
        tls_ca=opt(args.tls_ca), tls_cert=opt(args.tls_cert), tls_key=opt(args.tls_key))


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    config = build_config(args)  # a bad option fails before the model is loaded
    from ..daemon.handlers import Handler
    from ..daemon.mqtt import MqttDaemon
    from .parse import load_engine

    engine = load_engine(args.bundle, args.home)
    daemon = MqttDaemon(Handler(engine, config), config)
    daemon.setup()

    def on_signal(signum: int, frame: Any) -> None:
        daemon.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    sites = ", ".join(config.site_ids) or "every site"
    print(f"edge-slm serve: {engine.bundle.model_id} on {config.address.host}:"
          f"{config.address.port} (MQTT {config.mqtt_version}, {sites}); "
          "SIGTERM or Ctrl-C stops", file=sys.stderr)
    try:
        daemon.run_forever()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0
