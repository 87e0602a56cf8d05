"""`edge-slm status`: print the retained status and telemetry of the edge-slm daemons on a
broker, then exit.

    edge-slm status --broker mqtt://hub.local:1883
    edge-slm status --broker mqtt://hub.local --site-id kitchen --json

It subscribes to edge-slm/<site>/status and edge-slm/<site>/telemetry (every site unless
--site-id is given), takes what the broker holds retained, and exits once nothing more has
come for a moment. Exit status 1 when no daemon has left a status there.

This module also holds the two short-lived MQTT clients of the command line: the reader used
here, and `publish_retained`, with which `edge-slm serve` publishes telemetry and its final
status outside the daemon's own connection.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import ConfigError, EdgeSlmError, ProtocolError
from .serve import add_mqtt_args

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
"""Longest the whole read may take (connect, subscribe, retained messages)."""
RETAINED_QUIET_S = 0.5
"""After the subscription is acknowledged, this long without a message ends the read: the
broker sends retained messages at once, and MQTT has no "that was all" marker."""
PUBLISH_TIMEOUT_S = 5.0
"""Longest a one-shot publish may take (connect, publish, acknowledgement)."""
LOOP_TIMEOUT_S = 0.1
"""Longest wait for network traffic in one loop pass."""
KEEPALIVE_S = 30
"""MQTT keep-alive of these short-lived clients (they live a few seconds)."""
CLOSE_TIMEOUT_S = 1.0
"""Longest wait for our DISCONNECT to be written before the socket is left to close."""


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


# -- short-lived MQTT clients ----------------------------------------------------------------


def make_client(config: Any, client_id: str) -> Any:
    """A paho client for `config` (a DaemonConfig): protocol, TLS and credentials as the
    daemon's, but a clean session and no last will."""
    from paho.mqtt.client import CallbackAPIVersion, Client, MQTTv5, MQTTv311

    address = config.address
    if config.mqtt_version == "5":
        client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTv5)
    else:
        client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                        protocol=MQTTv311)
    if address.tls:
        client.tls_set(ca_certs=config.tls_ca, certfile=config.tls_cert, keyfile=config.tls_key)
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    return client


def _connect(client: Any, config: Any) -> None:
    address = config.address
    if config.mqtt_version == "5":
        client.connect(address.host, address.port, KEEPALIVE_S, clean_start=True)
    else:
        client.connect(address.host, address.port, KEEPALIVE_S)


def _loop_until(client: Any, done: Callable[[], bool], deadline: float,
                clock: Callable[[], float]) -> bool:
    """Run the client's network until `done()` or the deadline; True when done."""
    from paho.mqtt.client import MQTT_ERR_SUCCESS

    while not done():
        left = deadline - clock()
        if left <= 0:
            return False
        if client.loop(timeout=min(LOOP_TIMEOUT_S, left)) != MQTT_ERR_SUCCESS:
            return done()
    return True


def _close(client: Any, clock: Callable[[], float]) -> None:
    """Disconnect cleanly (no last will is set) and let paho close the socket."""
    client.disconnect()
    _loop_until(client, lambda: client.socket() is None, clock() + CLOSE_TIMEOUT_S, clock)


def publish_retained(config: Any, items: Sequence[Tuple[str, bytes]], client_id: str,
                     timeout_s: float = PUBLISH_TIMEOUT_S,
                     clock: Callable[[], float] = time.monotonic) -> bool:
    """Connect, publish each (topic, payload) retained at QoS 1, wait for the broker's
    acknowledgements, disconnect. False (and a warning) when that fails; never raises for
    network trouble."""
    client = make_client(config, client_id)
    state: Dict[str, Any] = {"infos": None, "refused": None}

    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            state["refused"] = str(reason)
            return
        state["infos"] = [c.publish(topic, payload, qos=1, retain=True)
                          for topic, payload in items]

    client.on_connect = on_connect
    deadline = clock() + timeout_s
    try:
        _connect(client, config)
        done = _loop_until(
            client, lambda: state["refused"] is not None or (
                state["infos"] is not None and all(i.is_published() for i in state["infos"])),
            deadline, clock)
    except OSError as err:  # refused, unreachable, TLS handshake failed
        _LOGGER.warning("publishing %s failed: %s", ", ".join(t for t, _ in items), err)
        return False
    _close(client, clock)
    if state["refused"] is not None or not done:
        _LOGGER.warning("publishing %s failed: %s", ", ".join(t for t, _ in items),
                        state["refused"] or "no acknowledgement in time")
        return False
    return True


def read_retained(config: Any, topics: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S,
                  quiet_s: float = RETAINED_QUIET_S,
                  clock: Callable[[], float] = time.monotonic) -> Dict[str, bytes]:
    """{topic: payload} of what the broker sends on subscribing to `topics` (its retained
    messages), read until `quiet_s` passes without one. EdgeSlmError when the broker cannot
    be reached or does not acknowledge the subscription within `timeout_s`."""
    client = make_client(config, "")
    got: Dict[str, bytes] = {}
    state: Dict[str, Any] = {"refused": None, "quiet_since": None}

    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            state["refused"] = str(reason)
        else:
            c.subscribe([(t, 1) for t in topics])

    def on_subscribe(c: Any, userdata: Any, mid: Any, reasons: Any, properties: Any) -> None:
        state["quiet_since"] = clock()

    def on_message(c: Any, userdata: Any, msg: Any) -> None:
        got[msg.topic] = bytes(msg.payload)
        if state["quiet_since"] is not None:
            state["quiet_since"] = clock()

    client.on_connect, client.on_subscribe = on_connect, on_subscribe
    client.on_message = on_message
    address = config.address
    deadline = clock() + timeout_s
    try:
        _connect(client, config)
    except OSError as err:
        raise EdgeSlmError(f"cannot reach broker {address.host}:{address.port}: {err}") from None
    try:
        subscribed = _loop_until(
            client, lambda: state["refused"] is not None or state["quiet_since"] is not None,
            deadline, clock)
        if state["refused"] is not None:
            raise EdgeSlmError(f"broker {address.host}:{address.port} refused us: "
                               f"{state['refused']}")
        if not subscribed:
            raise EdgeSlmError(f"broker {address.host}:{address.port} did not answer within "
                               f"{timeout_s:g} s")
        _loop_until(client, lambda: clock() - state["quiet_since"] >= quiet_s, deadline, clock)
    finally:
        _close(client, clock)
    return got


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


def format_report(sites: Dict[str, Dict[str, Any]], now: float) -> List[str]:
    """The report as text lines (`now`: Unix time, for the age of the telemetry)."""
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


def _telemetry_lines(t: Any, now: float) -> List[str]:
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
    from ..protocols.native import NativeStatus
    from ..protocols.telemetry import Telemetry

    def opt(path: Any) -> Any:
        return str(path) if path is not None else None

    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be positive, not {args.timeout}")
    config = DaemonConfig(broker=args.broker, mqtt_version=args.mqtt_version,
                          tls_ca=opt(args.tls_ca), tls_cert=opt(args.tls_cert),
                          tls_key=opt(args.tls_key))
    site = args.site_id or "+"
    topics = [NativeStatus.topic(site_id=site), Telemetry.topic(site_id=site)]
    sites = collect(read_retained(config, topics, timeout_s=args.timeout))
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
