"""`edge-slm serve`: answer Hermes and native intent queries over MQTT, always on or in a
low-power duty cycle.

    edge-slm serve --broker mqtt://127.0.0.1:1883
    edge-slm serve --bundle en-int8.slm --broker mqtts://user:pass@hub:8883 --tls-ca ca.pem \\
        --site-id kitchen --site-area kitchen=Kitchen --home inventory.yaml
    edge-slm serve --mode periodic --period 10 --window 2 --board pi-zero-2w
    edge-slm serve --mode adaptive --period 10 --min-period 5 --max-period 120

Hermes (Rhasspy 2.5): hermes/nlu/query -> hermes/nlu/intentParsed + hermes/intent/<name>, or
hermes/nlu/intentNotRecognized, or hermes/error/nlu. Native: edge-slm/<site>/query ->
edge-slm/<site>/intent (or the MQTT 5 response topic). SIGTERM or SIGINT publishes the
retained offline status and exits.

--mode periodic wakes every --period seconds, drains for --window seconds what the broker
queued for its persistent session, answers it and disconnects; --mode adaptive shortens the
period while traffic comes and lengthens it up to --max-period when idle. After each wake the
daemon publishes its accounting (wake-ups, messages, CPU time, energy estimated for --board)
retained on edge-slm/<site>/telemetry; `edge-slm status` prints it. See docs/daemon.md.
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
    add_duty_args(p)
    p.set_defaults(run=run)


def add_duty_args(p: argparse.ArgumentParser) -> None:
    """The duty-cycle and power-profile arguments."""
    from ..daemon import duty
    from ..daemon.energy import DEFAULT_BOARD, PROFILES
    from ..protocols.telemetry import ALWAYS_ON, MODES

    p.add_argument("--mode", choices=MODES, default=ALWAYS_ON,
                   help="always-on (event driven), periodic (wake every --period) or "
                        "adaptive (period follows traffic) (default: %(default)s)")
    p.add_argument("--period", type=float, default=duty.DEFAULT_PERIOD_S, metavar="S",
                   help="periodic: seconds from wake to wake; adaptive: the first period "
                        "(default: %(default)s)")
    p.add_argument("--window", type=float, default=duty.DEFAULT_WINDOW_S, metavar="S",
                   help="seconds connected per wake (default: %(default)s)")
    p.add_argument("--min-period", type=float, default=duty.DEFAULT_MIN_PERIOD_S, metavar="S",
                   help="adaptive: shortest period (default: %(default)s)")
    p.add_argument("--max-period", type=float, default=duty.DEFAULT_MAX_PERIOD_S, metavar="S",
                   help="adaptive: longest period (default: %(default)s)")
    p.add_argument("--board", choices=sorted(PROFILES), default=DEFAULT_BOARD,
                   help="power profile the energy is estimated for (default: %(default)s)")


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


def build_duty_config(args: argparse.Namespace) -> Any:
    """The DutyConfig of the command line."""
    from ..daemon.duty import DutyConfig

    return DutyConfig(mode=args.mode, period_s=args.period, window_s=args.window,
                      min_period_s=args.min_period, max_period_s=args.max_period)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    config = build_config(args)  # a bad option fails before the model is loaded
    from ..daemon.duty import DutyLoop, check_session
    from ..daemon.energy import PROFILES, EnergyMeter
    from ..daemon.handlers import Handler
    from ..daemon.mqtt import MqttDaemon
    from ..protocols.telemetry import ALWAYS_ON, Telemetry
    from .parse import load_engine
    from .status import publish_retained

    duty = build_duty_config(args)
    check_session(duty, config)
    engine = load_engine(args.bundle, args.home)
    handler = Handler(engine, config)
    daemon = MqttDaemon(handler, config)
    telemetry_topic = Telemetry.topic(site_id=config.status_topic_site)
    # The daemon's own connection is closed when a wake ends, so telemetry goes out on a
    # second, short one under a client id of its own (never the daemon's: that would take
    # over its persistent session).
    publisher_id = config.mqtt_client_id + "-telemetry"

    def report(telemetry: Telemetry) -> None:
        publish_retained(config, [(telemetry_topic, telemetry.to_payload())], publisher_id)

    loop = DutyLoop(daemon, duty, EnergyMeter(PROFILES[args.board]), report=report)
    loop.setup()

    def on_signal(signum: int, frame: Any) -> None:
        loop.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    sites = ", ".join(config.site_ids) or "every site"
    cycle = duty.mode if duty.mode == ALWAYS_ON else (
        f"{duty.mode}, every {duty.period_s:g} s for {duty.window_s:g} s")
    print(f"edge-slm serve: {engine.bundle.model_id} on {config.address.host}:"
          f"{config.address.port} (MQTT {config.mqtt_version}, {sites}, {cycle}); "
          "SIGTERM or Ctrl-C stops", file=sys.stderr)
    try:
        loop.run_forever()
    finally:
        for s, previous_handler in previous.items():
            signal.signal(s, previous_handler)
        if duty.mode != ALWAYS_ON:
            # asleep, the daemon holds no connection whose close() could say so
            offline = handler.status(online=False)
            publish_retained(config, [(offline.topic, offline.payload)], publisher_id)
    return 0
