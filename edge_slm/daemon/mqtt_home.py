"""Names from the broker: Home Assistant MQTT discovery configs and Zigbee2MQTT's device list.

    feed = MqttHomeFeed(live, HomeSourcesConfig(discovery_prefix="homeassistant",
                                                z2m_base_topic="zigbee2mqtt"))
    feed.topics()             # subscribe (the daemon's own connection): retained ones come first
    if feed.wants(topic):
        feed.receive(topic, payload)    # a config, a removal (empty payload), the device list
    feed.flush(now)           # hands changed homes to LiveHome once a burst has settled

Discovery (`<prefix>/<component>/[<node_id>/]<object_id>/config`, retained JSON): the component
is the entity's domain (light, switch, cover, lock, fan, climate, binary_sensor with its
`device_class`, sensor...); its name is the config's `name` after the device's name, as Home
Assistant names MQTT entities (`name` null: the device's name alone); its area is the device's
`suggested_area`; its id the `unique_id` (else the topic). Abbreviated keys (`uniq_id`, `dev`,
`sa`, `dev_cla`) and device-based configs (`<prefix>/device/<id>/config` with `cmps`) are read
too. An empty retained payload removes the config. Configs of diagnostic or configuration
entities (`entity_category`) are not names: Home Assistant does not expose them to Assist.

Zigbee2MQTT (`<base>/bridge/devices`, one retained JSON list, replaced whole): each device but
the coordinator, a disabled one or one without a definition becomes a name, its
`friendly_name` (with `_` as spaces as an alias), its domain the first of light, switch, cover,
lock, climate, fan that it exposes, else a binary sensor or sensor by what it measures.

Payloads are untrusted: one larger than its limit is skipped unread (the daemon's client drops
it: `packets.py`), malformed JSON or a device of the wrong shape is skipped with one log line,
and at most MAX_DISCOVERY_CONFIGS configs are kept.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..home import KNOWN_DOMAINS, Area, Entity, Inventory
from .home_sources import MQTT_DISCOVERY, ZIGBEE2MQTT, HomeSourcesConfig
from .live_home import AREA, NAME, Key, LiveHome, SourceHome, key, unique

_LOGGER = logging.getLogger(__name__)

MAX_DISCOVERY_PAYLOAD_BYTES = 64 * 1024
"""Largest discovery config read (Home Assistant's own are a few hundred bytes)."""
MAX_DISCOVERY_CONFIGS = 10000
"""Most discovery configs kept; more are skipped (a broker full of them is no home)."""
MAX_COMPONENTS = 256
"""Most components of one device-based config read."""
SETTLE_S = 0.3
"""After a message, how long the feed waits for more before handing the home over (retained
configs come in a burst on subscribing)."""
MAX_DELAY_S = 2.0
"""Longest a change waits for a burst to end."""
SHOWN_CHARS = 80
"""Most characters of a bad payload or name repeated in a log line."""
Z2M_DOMAINS = ("light", "switch", "cover", "lock", "climate", "fan")
"""Zigbee2MQTT's specific exposes that are a domain of their own, first the one chosen."""
Z2M_BINARY = {"occupancy": "occupancy", "presence": "presence", "contact": "door",
              "water_leak": "moisture", "smoke": "smoke", "vibration": "vibration",
              "gas": "gas", "carbon_monoxide": "carbon_monoxide"}
"""Zigbee2MQTT binary exposes -> the binary_sensor device class Home Assistant gives them."""
Z2M_SENSORS = ("temperature", "humidity", "illuminance", "pressure", "co2", "power",
               "energy", "voltage", "pm25")
"""Zigbee2MQTT numeric exposes that make a device a sensor (when it has nothing else)."""
Found = Tuple[Entity, str]
"""An entity a payload describes, with the source's id of it."""


def _text(value: Any) -> Optional[str]:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _get(obj: Dict[str, Any], *names: str) -> Any:
    """The first of `names` (a key and its abbreviations) that `obj` has."""
    for name in names:
        if name in obj:
            return obj[name]
    return None


def discovery_entities(component: str, config: Any, topic_id: str) -> List[Found]:
    """The entities one discovery config describes ([] for one that is no name); ValueError
    naming what is wrong with a config of the wrong shape."""
    if not isinstance(config, dict):
        raise ValueError("the config is not a JSON object")
    device = _get(config, "device", "dev")
    if device is not None and not isinstance(device, dict):
        raise ValueError("'device' is not an object")
    device = device or {}
    if component == "device":  # device-based discovery: one config, many components
        parts = _get(config, "components", "cmps")
        if not isinstance(parts, dict) or len(parts) > MAX_COMPONENTS:
            raise ValueError(f"'components' is not an object of at most {MAX_COMPONENTS}")
        out = []
        for object_id, part in parts.items():
            if not isinstance(part, dict) or not isinstance(_get(part, "platform", "p"), str):
                raise ValueError(f"component {str(object_id)[:SHOWN_CHARS]!r} has no platform")
            out += _one(_get(part, "platform", "p"), part, device, f"{topic_id}/{object_id}")
        return out
    return _one(component, config, device, topic_id)


def _one(domain: str, config: Dict[str, Any], device: Dict[str, Any],
         topic_id: str) -> List[Found]:
    if domain not in KNOWN_DOMAINS or _get(config, "entity_category", "ent_cat"):
        return []  # no intent names it, or Home Assistant does not expose it to Assist
    device_name = _text(device.get("name"))
    if "name" in config and config["name"] is not None and not isinstance(config["name"], str):
        raise ValueError("'name' is not a string")
    own = _text(config.get("name"))
    if own is None:  # null (or left out): the entity is named after its device
        name = device_name
    elif device_name is not None and not own.casefold().startswith(device_name.casefold()):
        name = f"{device_name} {own}"
    else:
        name = own
    if name is None:
        raise ValueError("no name (neither the entity's nor its device's)")
    area = _get(device, "suggested_area", "sa")
    device_class = _get(config, "device_class", "dev_cla")
    for what, value in (("suggested_area", area), ("device_class", device_class)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"'{what}' is not a string")
    unique_id = _get(config, "unique_id", "uniq_id")
    return [(Entity(name, domain, _text(area), (), _text(device_class)),
             unique_id if isinstance(unique_id, str) and unique_id else topic_id)]


def z2m_entities(devices: Any) -> Tuple[List[Found], int]:
    """(the entities of a `bridge/devices` list, how many devices were skipped as
    malformed); ValueError when the list itself is no list."""
    if not isinstance(devices, list):
        raise ValueError("bridge/devices is not a JSON list")
    out: List[Found] = []
    bad = 0
    for device in devices:
        try:
            found = _z2m_device(device)
        except ValueError as err:
            bad += 1
            _LOGGER.warning("Zigbee2MQTT device skipped: %s: %.*s", err, SHOWN_CHARS,
                            repr(device))
            continue
        if found is not None:
            out.append(found)
    return out, bad


def _z2m_device(device: Any) -> Optional[Found]:
    if not isinstance(device, dict):
        raise ValueError("not an object")
    if device.get("type") == "Coordinator" or device.get("disabled") is True:
        return None
    name = _text(device.get("friendly_name"))
    address = device.get("ieee_address")
    if name is None or not isinstance(address, str):
        raise ValueError("no friendly_name or ieee_address")
    definition = device.get("definition")
    if definition is None:
        return None  # not supported or still being interviewed: nothing to command
    exposes = definition.get("exposes") if isinstance(definition, dict) else None
    if not isinstance(exposes, list):
        raise ValueError("'definition' has no 'exposes' list")
    types = {e.get("type") for e in exposes if isinstance(e, dict)}
    named = {e.get("name") for e in exposes if isinstance(e, dict)}
    domain = next((d for d in Z2M_DOMAINS if d in types), None)
    device_class = None
    if domain is None:
        device_class = next((Z2M_BINARY[n] for n in Z2M_BINARY if n in named), None)
        domain = "binary_sensor" if device_class else (
            "sensor" if any(n in named for n in Z2M_SENSORS) else None)
        if domain == "sensor":
            device_class = next(n for n in Z2M_SENSORS if n in named)
    if domain is None:
        return None  # a remote, a router: nothing the intents name
    if name.casefold() == address.casefold():
        return None  # never named: its address is no name anyone says
    spoken = " ".join(name.replace("_", " ").split("/")[-1].split())
    aliases = (spoken,) if spoken and spoken.casefold() != name.casefold() else ()
    return Entity(name, domain, None, aliases, device_class), address


def source_home(source: str, found: Sequence[Found], skipped: int) -> SourceHome:
    """A source's home from its entities: areas are theirs, names one each."""
    entities, dropped = unique([e for e, _ in found], "name", source)
    ids: Dict[Key, str] = {}
    for entity, found_id in found:
        ids.setdefault(key(NAME, entity.name), found_id)
    areas: List[Area] = []
    for entity in entities:
        if entity.area is not None and key(AREA, entity.area) not in ids:
            ids[key(AREA, entity.area)] = entity.area
            areas.append(Area(entity.area))
    return SourceHome(source, Inventory([], areas, entities, source), ids, skipped + dropped)


class MqttHomeFeed:
    """The broker's names, kept as messages come (see the module doc)."""

    def __init__(self, live: LiveHome, sources: HomeSourcesConfig,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.live = live
        self.sources = sources
        self.clock = clock
        """Monotonic seconds (injected: tests step a fake)."""
        self.configs: Dict[str, List[Found]] = {}
        """Discovery config topic -> its entities."""
        self.z2m: List[Found] = []
        """The entities of Zigbee2MQTT's latest device list."""
        self.skipped = {MQTT_DISCOVERY: 0, ZIGBEE2MQTT: 0}
        """Payloads or devices skipped, by source."""
        self._prefix = (sources.discovery_prefix or "").split("/")
        self._z2m_topic = f"{sources.z2m_base_topic}/bridge/devices"
        self._dirty: Dict[str, float] = {}  # source -> when it first changed since a flush
        self._last = 0.0

    def topics(self) -> List[str]:
        """The topic filters to subscribe to."""
        out = []
        if self.sources.discovery:
            base = "/".join(self._prefix)
            out += [f"{base}/+/+/config", f"{base}/+/+/+/config"]
        if self.sources.z2m:
            out.append(self._z2m_topic)
        return out

    def wants(self, topic: str) -> bool:
        """Whether `topic` is one of ours."""
        return (self.sources.z2m and topic == self._z2m_topic) or self._discovery(topic) \
            is not None

    def _discovery(self, topic: str) -> Optional[str]:
        """The component of a discovery config topic (None: not one)."""
        if not self.sources.discovery:
            return None
        levels = topic.split("/")
        n = len(self._prefix)
        if levels[:n] != self._prefix or levels[-1] != "config" or len(levels) not in (
                n + 3, n + 4):
            return None
        return levels[n]

    def receive(self, topic: str, payload: bytes, oversized: Optional[int] = None) -> None:
        """Take one message of ours (`oversized`: the size of one the client skipped)."""
        z2m = topic == self._z2m_topic and self.sources.z2m
        source = ZIGBEE2MQTT if z2m else MQTT_DISCOVERY
        limit = self.sources.z2m_max_payload_bytes if z2m else MAX_DISCOVERY_PAYLOAD_BYTES
        size = oversized if oversized is not None else len(payload)
        if size > limit:
            self._skip(source, topic, f"{size} bytes, at most {limit}")
        elif not payload:  # an empty retained payload: the config or the list is gone
            if z2m:
                removed, self.z2m = bool(self.z2m), []
            else:
                removed = self.configs.pop(topic, None) is not None
            if removed:
                self._changed(source)
        elif not z2m and topic not in self.configs \
                and len(self.configs) >= MAX_DISCOVERY_CONFIGS:
            self._skip(source, topic, f"more than {MAX_DISCOVERY_CONFIGS} configs")
        else:
            self._take(source, topic, payload)

    def _take(self, source: str, topic: str, payload: bytes) -> None:
        """Read a config or the device list (a malformed one changes nothing)."""
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError):
            self._skip(source, topic, "not JSON")
            return
        try:
            if source == ZIGBEE2MQTT:
                self.z2m, bad = z2m_entities(data)
                self.skipped[source] += bad
            else:
                self.configs[topic] = discovery_entities(str(self._discovery(topic)), data,
                                                         topic)
        except ValueError as err:
            self._skip(source, topic, str(err))
            return
        self._changed(source)

    def _skip(self, source: str, topic: str, why: str) -> None:
        self.skipped[source] += 1
        _LOGGER.warning("%s message on %.*s skipped: %s", source, SHOWN_CHARS * 2, topic, why)

    def _changed(self, source: str) -> None:
        now = self.clock()
        self._dirty.setdefault(source, now)
        self._last = now

    def homes(self) -> List[SourceHome]:
        """The homes the broker's messages describe now (one per source that is on)."""
        out = []
        if self.sources.discovery:
            found = [f for t in sorted(self.configs) for f in self.configs[t]]
            out.append(source_home(MQTT_DISCOVERY, found, self.skipped[MQTT_DISCOVERY]))
        if self.sources.z2m:
            out.append(source_home(ZIGBEE2MQTT, self.z2m, self.skipped[ZIGBEE2MQTT]))
        return out

    def flush(self, force: bool = False) -> bool:
        """Hand the changed homes to LiveHome when a burst has settled (SETTLE_S without a
        message, or MAX_DELAY_S after the first change), or now with `force`. True when the
        merged home changed."""
        if not self._dirty:
            return False
        now = self.clock()
        first = min(self._dirty.values())
        if not force and now - self._last < SETTLE_S and now - first < MAX_DELAY_S:
            return False
        changed = set(self._dirty)
        self._dirty.clear()
        return any([self.live.update(h) for h in self.homes() if h.source in changed])
