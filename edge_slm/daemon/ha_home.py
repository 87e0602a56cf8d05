"""Home Assistant's registries as a home: pure functions from the results of its WebSocket API
commands to a `SourceHome` (no sockets here; `ha_client.py` fetches them).

    registries = HaRegistries(areas=..., floors=..., devices=..., entities=..., states=...,
                              exposed=..., extended=...)
    home = home_from_registries(registries)    # SourceHome("home_assistant", Inventory, ids)

What each command answers (Home Assistant's documented shapes, the `result` of each):

    config/floor_registry/list      [{"floor_id", "name", "aliases": [...], "level", ...}]
    config/area_registry/list       [{"area_id", "name", "aliases": [...], "floor_id", ...}]
    config/device_registry/list     [{"id", "name", "name_by_user", "area_id", ...}]
    config/entity_registry/list     [{"entity_id", "name", "original_name", "device_id",
                                      "area_id", "disabled_by", "has_entity_name", ...}]
    config/entity_registry/get_entries  {entity_id: {... "aliases": [...], "device_class",
                                      "original_device_class"} or null}
    get_states                      [{"entity_id", "state", "attributes": {"friendly_name",
                                      "device_class", ...}}]
    homeassistant/expose_entity/list    {"exposed_entities": {entity_id: {"conversation": true}}}

The rules are Home Assistant's own for Assist: only entities exposed to "conversation" become
names (and only in a domain the engine knows); an entity's name is its state's friendly name
(the registry's name, else the device's name with the entity's, when there is no state); its
aliases are the registry entry's; its area is the entry's, else its device's. Every area and
floor becomes a name, with their aliases. Input is taken as untrusted: an entry of the wrong
shape is skipped with one log line and counted, never an exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Tuple

from ..home import KNOWN_DOMAINS, Area, Entity, Floor, Inventory
from .home_sources import HOME_ASSISTANT
from .live_home import AREA, FLOOR, NAME, Key, SourceHome, key, unique

_LOGGER = logging.getLogger(__name__)

ASSIST = "conversation"
"""The assistant whose exposed entities become names (Home Assistant's Assist)."""
SHOWN_CHARS = 80
"""Most characters of a bad entry repeated in a log line."""


@dataclass(frozen=True)
class HaRegistries:
    """The results of the commands (see the module doc), as Home Assistant sent them."""

    areas: Any
    """config/area_registry/list."""
    floors: Any
    """config/floor_registry/list ([] on a Home Assistant older than floors)."""
    devices: Any
    """config/device_registry/list."""
    entities: Any
    """config/entity_registry/list."""
    states: Any
    """get_states."""
    exposed: Any
    """homeassistant/expose_entity/list."""
    extended: Any = None
    """config/entity_registry/get_entries of the exposed entities (aliases, device classes);
    None: not asked."""


def exposed_ids(exposed: Any) -> List[str]:
    """The entity ids exposed to Assist in an expose_entity/list result."""
    table = exposed.get("exposed_entities") if isinstance(exposed, dict) else None
    if not isinstance(table, dict):
        _LOGGER.warning("Home Assistant's exposed entities are not an object; none is used")
        return []
    return [eid for eid, assistants in table.items()
            if isinstance(eid, str) and isinstance(assistants, dict)
            and assistants.get(ASSIST) is True]


class _Reader:
    """Reads one result list, skipping (and counting) malformed entries."""

    def __init__(self) -> None:
        self.skipped = 0

    def rows(self, value: Any, what: str) -> List[Dict[str, Any]]:
        if not isinstance(value, list):
            if value is not None:
                self.skip(what, value, "not a list")
            return []
        out = []
        for item in value:
            if isinstance(item, dict):
                out.append(item)
            else:
                self.skip(what, item, "not an object")
        return out

    def keyed(self, value: Any, what: str, key: str) -> Dict[str, Dict[str, Any]]:
        """The entries of a result list by their string `key` (one without it skipped)."""
        out: Dict[str, Dict[str, Any]] = {}
        for row in self.rows(value, what):
            if isinstance(row.get(key), str):
                out[row[key]] = row
            else:
                self.skip(what, row, f"no {key}")
        return out

    def skip(self, what: str, item: Any, why: str) -> None:
        self.skipped += 1
        _LOGGER.warning("Home Assistant %s skipped (%s): %.*s", what, why, SHOWN_CHARS,
                        repr(item))


def _text(value: Any) -> Optional[str]:
    """A non-empty string stripped, else None."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def _aliases(value: Any, name: str) -> Tuple[str, ...]:
    """The strings of an aliases list (Home Assistant may hold null: "the name itself"),
    without the name and without repeats."""
    out: List[str] = []
    seen = {name.casefold()}
    for alias in value if isinstance(value, list) else ():
        text = _text(alias)
        if text is not None and text.casefold() not in seen:
            seen.add(text.casefold())
            out.append(text)
    return tuple(out)


def home_from_registries(reg: HaRegistries) -> SourceHome:
    """The home Home Assistant describes (see the module doc for the rules)."""
    read = _Reader()
    ids: Dict[Key, str] = {}
    floors: List[Floor] = []
    floor_names: Dict[str, str] = {}
    for row in read.rows(reg.floors, "floor"):
        name, fid = _text(row.get("name")), _text(row.get("floor_id"))
        if name is None or fid is None:
            read.skip("floor", row, "no name or floor_id")
            continue
        floors.append(Floor(name, _aliases(row.get("aliases"), name)))
        floor_names[fid] = name
        ids.setdefault(key(FLOOR, name), fid)
    areas: List[Area] = []
    area_names: Dict[str, str] = {}
    for row in read.rows(reg.areas, "area"):
        name, aid = _text(row.get("name")), _text(row.get("area_id"))
        if name is None or aid is None:
            read.skip("area", row, "no name or area_id")
            continue
        floor_id = row.get("floor_id")
        areas.append(Area(name, _aliases(row.get("aliases"), name),
                          floor_names.get(floor_id) if isinstance(floor_id, str) else None))
        area_names[aid] = name
        ids.setdefault(key(AREA, name), aid)
    entities = _entities(reg, read, area_names, ids)
    floors, dropped_floors = unique(floors, "floor", HOME_ASSISTANT)
    areas, dropped_areas = unique(areas, "area", HOME_ASSISTANT)
    entities, dropped = unique(entities, "name", HOME_ASSISTANT)
    return SourceHome(HOME_ASSISTANT, Inventory(floors, areas, entities, "Home Assistant"),
                      ids, read.skipped + dropped + dropped_floors + dropped_areas)


def _entities(reg: HaRegistries, read: _Reader, area_names: Dict[str, str],
              ids: Dict[Key, str]) -> List[Entity]:
    devices = read.keyed(reg.devices, "device", "id")
    entries = read.keyed(reg.entities, "entity registry entry", "entity_id")
    states: Dict[str, Dict[str, Any]] = {}
    for row in read.rows(reg.states, "state"):
        attrs = row.get("attributes")
        if isinstance(row.get("entity_id"), str) and isinstance(attrs, (dict, type(None))):
            states[row["entity_id"]] = attrs or {}
        else:
            read.skip("state", row, "no entity_id or attributes")
    extended = reg.extended if isinstance(reg.extended, dict) else {}
    out: List[Entity] = []
    unusable: Set[str] = set()
    for eid in exposed_ids(reg.exposed):
        domain, dot, object_id = eid.partition(".")
        if not dot or domain not in KNOWN_DOMAINS:
            unusable.add(domain)  # sun, zone, update...: no intent of ours names them
            continue
        entry = entries.get(eid) or {}
        if entry.get("disabled_by") is not None:
            continue
        ext = extended.get(eid)
        ext = ext if isinstance(ext, dict) else {}
        device_id = entry.get("device_id")
        device = devices.get(device_id, {}) if isinstance(device_id, str) else {}
        name = (_text(states.get(eid, {}).get("friendly_name"))
                or _registry_name(entry, device) or object_id.replace("_", " "))
        area_id = entry.get("area_id") or device.get("area_id")
        area = area_names.get(area_id) if isinstance(area_id, str) else None
        device_class = (_text(ext.get("device_class")) or _text(ext.get("original_device_class"))
                        or _text(states.get(eid, {}).get("device_class")))
        out.append(Entity(name, domain, area, _aliases(ext.get("aliases"), name), device_class))
        ids.setdefault(key(NAME, name), eid)
    if unusable:
        _LOGGER.debug("Home Assistant: exposed entities of domains no intent names are left "
                      "out: %s", ", ".join(sorted(unusable)))
    return out


def _registry_name(entry: Dict[str, Any], device: Dict[str, Any]) -> Optional[str]:
    """The name Home Assistant would give an entity without a state: the registry's name,
    else (an entity named after its device) the device's name with the entity's own."""
    own = _text(entry.get("name"))
    if own is not None:
        return own
    original = _text(entry.get("original_name"))
    device_name = _text(device.get("name_by_user")) or _text(device.get("name"))
    if entry.get("has_entity_name") and device_name is not None:
        return f"{device_name} {original}" if original else device_name
    return original
