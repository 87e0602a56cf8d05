"""`edge-slm status`: print the retained status and telemetry of the edge-slm daemons on a
broker, then exit.

    edge-slm status --broker mqtt://hub.local:1883
    edge-slm status --broker mqtt://hub.local --site-id kitchen --json

It subscribes to edge-slm/<site>/status and edge-slm/<site>/telemetry (every site unless
--site-id is given), takes what the broker holds retained, and exits once nothing more has
come for a moment (`edge_slm.daemon.retained.read_retained`, with the TLS, credentials and
MQTT version given). Exit status 1 when no daemon has left a status there.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ..errors import ConfigError, ProtocolError
from .serve import add_mqtt_args

if TYPE_CHECKING:
    from ..protocols.telemetry import Telemetry

DEFAULT_TIMEOUT_S = 5.0
"""Longest the whole read may take (connect, subscribe, retained messages)."""


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the subcommand."""
    p = sub.add_parser("status", help="print the retained status and telemetry of daemons",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_mqtt_args(p)
    p.add_argument("--site-id", metavar="ID",
                   help="the daemon's status site (default: every site)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help="longest wait for the broker (default: %(default)s s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


# -- the report (pure) -----------------------------------------------------------------------


def collect(messages: Dict[str, bytes]) -> Dict[str, Dict[str, Any]]:
    """{site: {"status": NativeStatus, "telemetry": Telemetry, "errors": [...]}} from the
    retained messages by topic; an undecodable payload becomes an error entry."""
    from ..protocols.native import NativeStatus
    from ..protocols.telemetry import Telemetry

    sites: Dict[str, Dict[str, Any]] = {}
    for topic in sorted(messages):
        for kind, cls in (("status", NativeStatus), ("telemetry", Telemetry)):
            site = cls.site_of(topic)
            if site is None:
                continue
            entry = sites.setdefault(site, {"status": None, "telemetry": None, "errors": []})
            try:
                entry[kind] = cls.from_payload(messages[topic])
            except ProtocolError as err:
                entry["errors"].append(f"{topic}: {err}")
    return sites


def to_json(sites: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """The report as JSON: {site: {"status": {...} or null, "telemetry": ..., "errors"}}."""
    return {site: {"status": e["status"].to_dict() if e["status"] else None,
                   "telemetry": e["telemetry"].to_dict() if e["telemetry"] else None,
                   "errors": list(e["errors"])} for site, e in sites.items()}


def printable(text: str) -> str:
    """`text` with every control and format character (terminal escapes, CR, LF, bidi
    overrides) written as its Python escape, so that retained messages, which anyone may have
    left, cannot drive the terminal."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def format_report(sites: Dict[str, Dict[str, Any]], now: float) -> List[str]:
    """The report as text lines (`now`: Unix time, for the age of the telemetry), with what
    came from the broker made printable."""
    return [printable(line) for line in _report_lines(sites, now)]


def _report_lines(sites: Dict[str, Dict[str, Any]], now: float) -> List[str]:
    lines: List[str] = []
    for site, e in sites.items():
        status = e["status"]
        if status is None:
            lines.append(f"{site}: no status")
        elif status.state == "online":
            lines.append(f"{site}: online, model {status.model_id}, edge-slm {status.version}")
        else:
            lines.append(f"{site}: {status.state}")
        t = e["telemetry"]
        if t is not None:
            lines.extend("  " + line for line in _telemetry_lines(t, now))
        lines.extend(f"  error: {err}" for err in e["errors"])
    return lines


def _telemetry_lines(t: Telemetry, now: float) -> List[str]:
    def per(value: Optional[float]) -> str:
        return "-" if value is None else f"{value:.3g} J"

    age = max(0.0, now - t.updated_at)
    when = "" if t.next_wake_s is None else f", next wake {t.next_wake_s:.0f} s after it"
    if t.next_wake_s is not None and t.period_s is not None \
            and age > t.next_wake_s + t.period_s:
        # a whole cycle missed: a sleeping daemon that died left no last will behind
        when += " (overdue: the daemon may be gone)"
    period = "" if t.period_s is None else f" every {t.period_s:g} s"
    return [
        f"telemetry {age:.0f} s old: {t.mode}{period}{when}",
        f"{t.wakes} wake-ups, {t.messages} messages ({t.messages_per_wake:.2f} per wake, "
        f"{t.last_wake_messages} in the last), {t.commands_per_hour:.1f} per hour",
        f"awake {t.awake_s:.1f} s of {t.elapsed_s:.1f} s (duty cycle "
        f"{100 * t.duty_cycle:.1f} %), CPU {t.cpu_s:.2f} s",
        f"estimated on {t.board}: {t.joules:.1f} J, {per(t.joules_per_command)} per command "
        f"({per(t.active_joules_per_command)} above idle)",
    ]


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    from ..daemon import DaemonConfig
    from ..daemon.retained import read_retained
    from ..protocols.native import NativeStatus
    from ..protocols.telemetry import Telemetry

    def opt(path: object) -> Optional[str]:
        return str(path) if path is not None else None

    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be positive, not {args.timeout}")
    config = DaemonConfig(broker=args.broker, mqtt_version=args.mqtt_version,
                          tls_ca=opt(args.tls_ca), tls_cert=opt(args.tls_cert),
                          tls_key=opt(args.tls_key))
    site = args.site_id or "+"
    topics = [NativeStatus.topic(site_id=site), Telemetry.topic(site_id=site)]
    sites = collect(read_retained(config.connection(), topics, timeout_s=args.timeout))
    if args.json:
        print(json.dumps(to_json(sites), indent=1))
    else:
        for line in format_report(sites, time.time()):
            print(line)
    if not any(e["status"] is not None for e in sites.values()):
        if not args.json:
            print(f"no edge-slm daemon has left a status on {config.address.host}:"
                  f"{config.address.port}" + (f" for site {args.site_id}" if args.site_id
                                              else ""))
        return 1
    return 0
