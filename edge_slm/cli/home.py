"""`edge-slm home show`: the home `edge-slm serve` would answer for, read once from the sources
given, printed, then exit.

    edge-slm home show --home my_home.yaml
    edge-slm home show --ha-url http://hub.local:8123 --ha-token-file ~/.config/ha.token
    edge-slm home show --broker mqtt://hub.local:1883 --discovery --z2m --json
    edge-slm home show --config /etc/edge-slm.toml     # the daemon's own settings

Each source given is read once: the home file; Home Assistant's registries over its
WebSocket API (the token from --ha-token-file or EDGE_SLM_HA_TOKEN, never a flag); what the
broker holds retained of MQTT discovery configs and Zigbee2MQTT's device list. They are merged
as the daemon merges them (the file wins over Home Assistant, which wins over the broker) and
printed: floors, areas, and names with their domain, area and the source and id each came
from. With no source, or none that gave a name, the bundle's shipped home is shown: the
fallback the daemon then answers for. Options, environment variables and the config file are
`edge-slm serve`'s. --timeout bounds the read of each source; a source that cannot be read is
an error (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ..errors import ConfigError
from .serve import MQTT_SETTINGS, add_setting_args, build_settings, bundle_path
from .status import printable

if TYPE_CHECKING:
    from ..daemon.live_home import MergedHome, SourceHome
    from ..daemon.settings import ServeSettings

DEFAULT_TIMEOUT_S = 10.0
"""Longest the read of one source may take."""
HOME_SETTINGS = ("home", "bundle", "ha_url", "ha_token_file", "discovery", "z2m",
                 "z2m_max_payload") + MQTT_SETTINGS
"""The settings of `edge-slm serve` that say where the home comes from."""


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `home` and its verb `show`."""
    p = sub.add_parser("home", help="show the home names are resolved against",
                       description="The home edge-slm knows: `edge-slm home show --help`.")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    show = verbs.add_parser("show", help="read the home from its sources once and print it",
                            description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    show.add_argument("--config", type=Path, metavar="FILE.toml",
                      help="read the options from this TOML file (default: $EDGE_SLM_CONFIG), "
                           "as `edge-slm serve` does")
    add_setting_args(show, HOME_SETTINGS)
    show.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                      help="longest wait for each source (default: %(default)s s)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=run)


def read_sources(settings: ServeSettings, timeout_s: float) -> List[SourceHome]:
    """The home of each source the settings give, read once."""
    from ..daemon.live_home import LiveHome, file_home

    homes = []
    if settings.home is not None:
        homes.append(file_home(settings.home))
    sources = settings.sources
    if sources.ha_url is not None:
        from ..daemon.ha_client import read_home_assistant
        from ..daemon.home_sources import read_ha_token

        token = read_ha_token(sources.ha_token_file, os.environ)
        homes.append(read_home_assistant(str(sources.ha_websocket_url), token, timeout_s))
    if sources.on_broker:
        from ..daemon.mqtt_home import MqttHomeFeed
        from ..daemon.retained import read_retained

        feed = MqttHomeFeed(LiveHome(), sources)
        held = read_retained(settings.daemon.connection(), feed.topics(), timeout_s=timeout_s)
        for topic in sorted(held):
            feed.receive(topic, held[topic])
        homes += feed.homes()
    return homes


def shipped_home(settings: ServeSettings) -> MergedHome:
    """The home of the settings' bundle (the shipped one's without --bundle), each name's
    origin "shipped" and the bundle's model id."""
    from ..bundle import read_bundle
    from ..daemon.home_sources import SHIPPED
    from ..daemon.live_home import AREA, FLOOR, NAME, MergedHome, Origin, key
    from ..home import home_from_bundle_json
    from ..runtime.engine import default_bundle_path

    bundle = read_bundle(bundle_path(settings) or default_bundle_path())
    home = home_from_bundle_json(bundle.json("home.json"), f"{bundle.where}: home.json")
    origin = Origin(SHIPPED, str(bundle.model_id))
    origins = {key(kind, item.name): origin
               for kind, items in ((NAME, home.entities), (AREA, home.areas),
                                   (FLOOR, home.floors)) for item in items}
    return MergedHome(home, origins)


def show_dict(merged: MergedHome, shipped: Optional[MergedHome]) -> Dict[str, Any]:
    """What --json prints: the merged home (or the shipped one, marked so)."""
    out = (shipped or merged).to_dict()
    out["sources"] = dict(merged.given)
    out["fallback"] = shipped is not None
    return out


def show_lines(data: Dict[str, Any]) -> List[str]:
    """The text report of `show_dict`'s object, made printable (names come from anyone who
    can publish on the broker)."""
    lines = []
    given = ", ".join(
        f"{s} {c['names']} names" + (f" ({c['skipped']} skipped)" if c.get("skipped") else "")
        for s, c in data["sources"].items())
    lines.append(f"sources: {given or 'none'}")
    if data["fallback"]:
        lines.append("no source gave a name: the bundle's shipped home answers")
    for title, rows in (("floors", data["floors"]), ("areas", data["areas"]),
                        ("names", data["entities"])):
        lines.append(f"{title} ({len(rows)}):")
        lines.extend("  " + _row(row) for row in rows)
    return [printable(line) for line in lines]


def _row(row: Dict[str, Any]) -> str:
    parts = [row["name"]]
    if row.get("domain"):
        parts.append(row["domain"] + (f" ({row['device_class']})" if row.get("device_class")
                                      else ""))
    for key, word in (("area", "in"), ("floor", "on")):
        if row.get(key):
            parts.append(f"{word} {row[key]}")
    if row["aliases"]:
        parts.append("aliases: " + ", ".join(row["aliases"]))
    if row.get("source"):
        parts.append(f"[{row['source']} {row['id']}]")
    return "  ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Run `home show`."""
    from ..daemon.live_home import merge

    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be positive, not {args.timeout}")
    settings = build_settings(args)
    merged = merge(read_sources(settings, args.timeout))
    data = show_dict(merged, None if merged.inventory else shipped_home(settings))
    if args.json:
        print(json.dumps(data, indent=1, ensure_ascii=False))
    else:
        for line in show_lines(data):
            print(line)
    return 0
