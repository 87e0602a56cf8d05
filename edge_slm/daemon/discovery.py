"""Home Assistant MQTT discovery for one daemon site: diagnostic sensors, no YAML to write.

    discovery_messages("kitchen", version="0.1.0")  -> [Outgoing(retained config), ...]
    removal_messages("kitchen")                      -> [Outgoing(retained b""), ...]
    tracker = DiagnosticsTracker(started_at=time.time())
    tracker.record(handler_output, latency_ms=0.9)   # after each handled message
    tracker.set_home({"home_assistant": {"names": 40, "areas": 6, "floors": 2}})
    if tracker.due(now): publish(tracker.message("kitchen", now, duty_cycle=1.0))

Home Assistant reads retained JSON configs on
`<prefix>/<component>/<node_id>/<object_id>/config` (prefix `homeassistant` by default) and
creates one device, "edge-slm <site>", with:

- a `binary_sensor` "Daemon" (device class connectivity) on the retained
  `edge-slm/<site>/status` topic: on for `{"state": "online"}`, off for `offline`;
- four `sensor`s, all `entity_category: diagnostic`, reading the retained JSON state topic
  `edge-slm/<site>/diagnostics` (`edge_slm.protocols.diagnostics.Diagnostics`) through
  `value_template`s: last intent, last latency (ms), commands per hour, duty cycle (%). Their
  availability follows the status topic, so they turn "unavailable" when the daemon goes.

An empty retained payload on the same config topics removes the entities
(`removal_messages`). Everything here is pure: it returns `Outgoing` messages and the I/O
layer publishes them. Topic levels that Home Assistant does not accept in a node id
(anything but letters, digits, `_` and `-`) are replaced, with a short hash of the site so
that two sites never share a node.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional

from .. import __version__
from ..errors import ConfigError
from ..protocols import hermes as h
from ..protocols import native as n
from ..protocols.diagnostics import Diagnostics
from .handlers import Outgoing

_LOGGER = logging.getLogger(__name__)

DISCOVERY_PREFIX = "homeassistant"
"""Home Assistant's default discovery prefix (configurable in its MQTT integration)."""
MANUFACTURER = "edge-slm"
"""The device block's manufacturer."""
MODEL = "edge-slm"
"""The device block's model."""
DIAGNOSTICS_MIN_INTERVAL_S = 10.0
"""Shortest time between two diagnostics publications: a busy daemon does not double its
traffic to report on it, and a dashboard needs no more."""
RATE_MIN_WINDOW_S = 60.0
"""commands_per_hour divides by at least this many seconds, so the first command after a
start does not read as thousands per hour."""
SECONDS_PER_HOUR = 3600.0
_HA_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_HA_ID_BAD = re.compile(r"[^A-Za-z0-9_-]")
_SITE_HASH_CHARS = 6


@dataclass(frozen=True)
class SensorSpec:
    """One diagnostic sensor: which Diagnostics field it shows, and how."""

    object_id: str
    """The last level of its discovery topic and the end of its unique_id."""
    name: str
    """Entity name (Home Assistant shows it after the device name)."""
    value_template: str
    """Jinja template over `value_json`, the Diagnostics object."""
    icon: str
    """Material Design icon."""
    unit: Optional[str] = None
    """unit_of_measurement (None for a text sensor)."""
    device_class: Optional[str] = None
    """Home Assistant sensor device class."""
    state_class: Optional[str] = None
    """"measurement" for numbers Home Assistant should keep statistics of."""


SENSORS = (
    SensorSpec("last_intent", "Last intent",
               "{{ value_json.last_intent | default('none', true) }}", "mdi:text-recognition"),
    SensorSpec("last_latency", "Last latency", "{{ value_json.last_latency_ms }}",
               "mdi:timer-outline", unit="ms", device_class="duration",
               state_class="measurement"),
    SensorSpec("commands_per_hour", "Commands per hour",
               "{{ value_json.commands_per_hour | round(1) }}", "mdi:counter",
               unit="commands/h", state_class="measurement"),
    SensorSpec("duty_cycle", "Duty cycle", "{{ (value_json.duty_cycle * 100) | round(1) }}",
               "mdi:sleep", unit="%", state_class="measurement"),
)
"""The sensors, in the order they are published."""
STATUS_OBJECT_ID = "status"
"""object_id of the connectivity binary_sensor."""
_STATUS_TEMPLATE = "{{ value_json.state }}"


def node_id(site: str) -> str:
    """The Home Assistant node id of a site: `edge_slm_<site>`, made of [A-Za-z0-9_-]."""
    n.NativeStatus.topic(site_id=site)  # ConfigError for a site that is no topic level
    clean = _HA_ID_BAD.sub("_", site)
    if clean != site:  # "a.b" and "a_b" must not become the same device
        clean += "_" + hashlib.sha1(site.encode("utf-8")).hexdigest()[:_SITE_HASH_CHARS]
    return f"edge_slm_{clean}"


def config_topic(component: str, site: str, object_id: str,
                 prefix: str = DISCOVERY_PREFIX) -> str:
    """`<prefix>/<component>/<node_id>/<object_id>/config`."""
    if not _HA_ID.match(object_id) or not _HA_ID.match(component):
        raise ValueError(f"component {component!r} and object id {object_id!r} must be made "
                         "of letters, digits, _ and -")
    if not prefix or any(c in prefix for c in "+#"):
        raise ConfigError(f"discovery prefix {prefix!r} cannot be a topic prefix")
    return f"{prefix}/{component}/{node_id(site)}/{object_id}/config"


def device_block(site: str, version: str = __version__) -> Dict[str, Any]:
    """The `device` object every entity of a site shares (one device per site)."""
    return {"identifiers": [node_id(site)], "name": f"edge-slm {site}", "model": MODEL,
            "manufacturer": MANUFACTURER, "sw_version": version}


def _availability(site: str) -> List[Dict[str, str]]:
    return [{"topic": n.NativeStatus.topic(site_id=site), "value_template": _STATUS_TEMPLATE,
             "payload_available": n.ONLINE, "payload_not_available": n.OFFLINE}]


def sensor_config(spec: SensorSpec, site: str, version: str = __version__) -> Dict[str, Any]:
    """The discovery config object of one diagnostic sensor."""
    node = node_id(site)
    config: Dict[str, Any] = {
        "name": spec.name, "unique_id": f"{node}_{spec.object_id}",
        "state_topic": Diagnostics.topic(site_id=site), "value_template": spec.value_template,
        "entity_category": "diagnostic", "icon": spec.icon,
        "availability": _availability(site), "device": device_block(site, version),
        "origin": {"name": "edge-slm", "sw_version": version},
    }
    for key, value in (("unit_of_measurement", spec.unit), ("device_class", spec.device_class),
                       ("state_class", spec.state_class)):
        if value is not None:
            config[key] = value
    return config


def status_config(site: str, version: str = __version__) -> Dict[str, Any]:
    """The discovery config of the connectivity binary_sensor on the status topic (it has no
    availability of its own: "offline" is its off state, not "unavailable")."""
    return {
        "name": "Daemon", "unique_id": f"{node_id(site)}_{STATUS_OBJECT_ID}",
        "state_topic": n.NativeStatus.topic(site_id=site), "value_template": _STATUS_TEMPLATE,
        "payload_on": n.ONLINE, "payload_off": n.OFFLINE, "device_class": "connectivity",
        "entity_category": "diagnostic", "device": device_block(site, version),
        "origin": {"name": "edge-slm", "sw_version": version},
    }


def _configs(site: str, version: str, prefix: str) -> List[tuple]:
    out = [(config_topic("binary_sensor", site, STATUS_OBJECT_ID, prefix),
            status_config(site, version))]
    out += [(config_topic("sensor", site, s.object_id, prefix), sensor_config(s, site, version))
            for s in SENSORS]
    return out


def discovery_messages(site: str, version: str = __version__, prefix: str = DISCOVERY_PREFIX,
                       qos: int = 1) -> List[Outgoing]:
    """The retained discovery configs of a site's device: publish them after connecting (and
    again when Home Assistant's `<prefix>/status` says `online`)."""
    return [Outgoing(topic, json.dumps(config, separators=(",", ":")).encode("utf-8"),
                     qos=qos, retain=True)
            for topic, config in _configs(site, version, prefix)]


def removal_messages(site: str, prefix: str = DISCOVERY_PREFIX, qos: int = 1) -> List[Outgoing]:
    """Empty retained payloads on the same topics: Home Assistant deletes the entities and the
    broker forgets the configs."""
    return [Outgoing(topic, b"", qos=qos, retain=True)
            for topic, _ in _configs(site, __version__, prefix)]


# -- the state the sensors read ----------------------------------------------------------------


def last_intent(items: Iterable[Outgoing]) -> Optional[str]:
    """The intent a handler's reply answered (None when none was recognized, or an error).

    Reads the replies themselves, so it works wherever they go (a native reply may be on an
    MQTT 5 response topic); for a batch (`texts`), the last text's intent counts."""
    for item in items:
        if item.retain or h.NluIntent.is_topic(item.topic):
            continue  # status, or the copy of intentParsed
        try:
            obj = json.loads(item.payload)
        except (ValueError, TypeError):
            continue
        if not isinstance(obj, dict):
            continue
        if h.NluIntentParsed.is_topic(item.topic):
            intent = obj.get("intent") or {}
            name = intent.get("intentName") if isinstance(intent, dict) else None
            return name if isinstance(name, str) else None
        if item.topic.startswith("hermes/"):
            return None  # intentNotRecognized or error
        results = obj.get("results")
        if isinstance(results, list) and results and isinstance(results[-1], dict):
            obj = results[-1]
        intent = obj.get("intent")
        return intent if isinstance(intent, str) else None
    return None


class DiagnosticsTracker:
    """Counts what the daemon handles and makes the Diagnostics snapshot (pure: the caller
    passes the times; `now` is Unix time, as in the message)."""

    def __init__(self, started_at: float,
                 min_interval_s: float = DIAGNOSTICS_MIN_INTERVAL_S) -> None:
        if min_interval_s < 0:
            raise ValueError(f"min_interval_s must not be negative, not {min_interval_s!r}")
        self.started_at = started_at
        """When the daemon started (Unix time)."""
        self.min_interval_s = min_interval_s
        """Shortest time between two publications (`due`)."""
        self.messages = 0
        """Messages handled since the start (errors included, as in the telemetry)."""
        self.last_intent: Optional[str] = None
        """Intent of the latest answered message (None: not recognized, error, or none yet)."""
        self.last_latency_ms: Optional[float] = None
        """Handling time of the latest message."""
        self.home: Optional[Dict[str, Dict[str, int]]] = None
        """The names the engine answers for, counted by source (None: not reported)."""
        self._published_at: Optional[float] = None
        self._changed = True  # the first snapshot is always due

    def record(self, items: Iterable[Outgoing], latency_ms: float) -> None:
        """Count one handled message, given what the handler returned for it."""
        self.messages += 1
        self.last_intent = last_intent(items)
        self.last_latency_ms = round(max(0.0, latency_ms), 3)
        self._changed = True

    def set_home(self, counts: Dict[str, Dict[str, int]]) -> None:
        """The home's counts by source, as of now (a change makes a snapshot due)."""
        if counts != self.home:
            self.home = counts
            self._changed = True

    def snapshot(self, now: float, duty_cycle: float = 1.0) -> Diagnostics:
        """The Diagnostics message as of `now` (duty_cycle: 1.0 when always on)."""
        window = max(now - self.started_at, RATE_MIN_WINDOW_S)
        return Diagnostics(commands_per_hour=round(self.messages * SECONDS_PER_HOUR / window, 3),
                           duty_cycle=min(1.0, max(0.0, duty_cycle)), updated_at=round(now, 3),
                           last_intent=self.last_intent, last_latency_ms=self.last_latency_ms,
                           home=self.home)

    def due(self, now: float) -> bool:
        """True when something changed and the last publication is old enough."""
        if not self._changed:
            return False
        return self._published_at is None or now - self._published_at >= self.min_interval_s

    def message(self, site: str, now: float, duty_cycle: float = 1.0,
                qos: int = 1) -> Outgoing:
        """The retained diagnostics message to publish now (marks it published)."""
        self._published_at, self._changed = now, False
        return Outgoing(Diagnostics.topic(site_id=site),
                        self.snapshot(now, duty_cycle).to_payload(), qos=qos, retain=True)
