"""The home: floors, areas and named entities, the names an answer must be given in.

One format serves everyone: the user's home file (`--home`, YAML or JSON), the inventory the
corpus samples names from, and the fallback home shipped inside every bundle (`home.json`):

    floors:   - {name, aliases?}
    areas:    - {name, aliases?, floor?}           floor: a floor's name
    entities: - {name, domain, area?, aliases?, device_class?}

Loading validates everything and raises `HomeError` naming the file and the entry at fault.
When a user gives a home, it is the only one names resolve against (docs/labelling.md,
"The home decides"); the shipped one is a fallback for users who give none.

Needs only PyYAML: this is device-side code.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, Union

import yaml

from .errors import CorpusInputError, HomeError

_LOGGER = logging.getLogger(__name__)

#: Domains an entity may have (Home Assistant's entity domains that intents touch).
KNOWN_DOMAINS = frozenset(
    {
        "light", "switch", "fan", "cover", "lock", "media_player", "climate", "sensor",
        "binary_sensor", "vacuum", "lawn_mower", "todo", "person", "weather", "scene",
        "script", "input_boolean", "valve", "button", "input_button", "humidifier",
        "water_heater", "camera", "alarm_control_panel", "siren", "automation",
    }
)

#: Version of the `home.json` member of bundles written now (1: {"name"|"area"|"floor": [...]}).
HOME_JSON_FORMAT = 2

#: Names per slot: {"name"|"area"|"floor": [[canonical, alias, ...], ...]}.
NameTable = Dict[str, List[List[str]]]


@dataclass(frozen=True)
class Floor:
    """A floor of the home."""

    name: str
    """Canonical name, the slot value."""
    aliases: Tuple[str, ...] = ()
    """Other ways people say it; the text differs, the value stays `name`."""


@dataclass(frozen=True)
class Area:
    """A room or outdoor area."""

    name: str
    """Canonical name, the slot value."""
    aliases: Tuple[str, ...] = ()
    """Other ways people say it."""
    floor: Optional[str] = None
    """The floor it is on, if known."""


@dataclass(frozen=True)
class Entity:
    """A named device or helper (a Home Assistant entity)."""

    name: str
    """Canonical name, the slot value."""
    domain: str
    """Home Assistant domain (light, switch, lock, ...); "" when unknown (a format 1
    `home.json`)."""
    area: Optional[str] = None
    """The area it is in, if known."""
    aliases: Tuple[str, ...] = ()
    """Other names for it."""
    device_class: Optional[str] = None
    """Home Assistant device class (window, garage, motion, ...), if known."""

    @property
    def spoken(self) -> Tuple[str, ...]:
        """Every surface form: the name and its aliases."""
        return (self.name,) + self.aliases


@dataclass
class Inventory:
    """Floors, areas and entities of one home."""

    floors: List[Floor] = field(default_factory=list)
    """Floors, in file order."""
    areas: List[Area] = field(default_factory=list)
    """Areas, in file order."""
    entities: List[Entity] = field(default_factory=list)
    """Entities, in file order."""
    source: str = "<memory>"
    """Where it was loaded from (for messages)."""

    def entities_in(self, domains: Optional[Sequence[str]]) -> List[Entity]:
        """Entities whose domain is one of `domains` (all when None)."""
        if domains is None:
            return list(self.entities)
        wanted = set(domains)
        return [e for e in self.entities if e.domain in wanted]

    def area(self, name: str) -> Optional[Area]:
        """The area called `name`, or None."""
        for area in self.areas:
            if area.name == name:
                return area
        return None

    def entity(self, name: str) -> Optional[Entity]:
        """The entity whose canonical name is `name` (case-insensitive), or None."""
        key = name.casefold()
        for e in self.entities:
            if e.name.casefold() == key:
                return e
        return None

    def names(self) -> NameTable:
        """{"name"|"area"|"floor": [[canonical, alias...], ...]}: what resolution matches."""
        def rows(items: Sequence[Union[Floor, Area, Entity]]) -> List[List[str]]:
            return [[it.name, *it.aliases] for it in items]
        return {"name": rows(self.entities), "area": rows(self.areas),
                "floor": rows(self.floors)}

    def __bool__(self) -> bool:
        return bool(self.floors or self.areas or self.entities)

    def to_dict(self) -> Dict[str, Any]:
        """The file format (what `inventory_from_dict` reads back)."""
        def clean(d: Dict[str, Any]) -> Dict[str, Any]:
            return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()
                    if v not in (None, ())}
        return {
            "floors": [clean({"name": f.name, "aliases": f.aliases}) for f in self.floors],
            "areas": [clean({"name": a.name, "aliases": a.aliases, "floor": a.floor})
                      for a in self.areas],
            "entities": [clean({"name": e.name, "domain": e.domain, "area": e.area,
                                "aliases": e.aliases, "device_class": e.device_class})
                         for e in self.entities],
        }


def _str_list(path: str, where: str, value: object) -> Tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise HomeError(path, f"{where}: 'aliases' must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _name(path: str, where: str, item: object) -> str:
    if not isinstance(item, dict):
        raise HomeError(path, f"{where}: expected a mapping with 'name', got {item!r}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise HomeError(path, f"{where}: missing or empty 'name'")
    return name.strip()


def _section(path: str, data: Dict[str, Any], key: str) -> List[Any]:
    items = data.get(key) or []
    if not isinstance(items, list):
        raise HomeError(path, f"'{key}' must be a list, got {type(items).__name__}")
    return items


def _device_class(path: str, where: str, item: Dict[str, Any]) -> Optional[str]:
    value = item.get("device_class")
    attrs = item.get("attributes")
    if value is None and isinstance(attrs, dict):  # Home Assistant's state attributes
        value = attrs.get("device_class")
    if value is not None and not (isinstance(value, str) and value.strip()):
        raise HomeError(path, f"{where}: 'device_class' must be a non-empty string")
    return value.strip() if isinstance(value, str) else None


def inventory_from_dict(data: object, path: str = "<memory>") -> Inventory:
    """Validate and build a home from parsed YAML/JSON; raise `HomeError` if malformed."""
    if not isinstance(data, dict):
        raise HomeError(path, "a home must be a mapping with floors/areas/entities")
    unknown = set(data) - {"floors", "areas", "entities"}
    if unknown:
        raise HomeError(path, f"unknown top-level keys {sorted(unknown, key=repr)}; "
                              "expected floors, areas, entities")
    floors: List[Floor] = []
    for i, item in enumerate(_section(path, data, "floors")):
        where = f"floors[{i}]"
        floors.append(Floor(_name(path, where, item), _str_list(path, where, item.get("aliases"))))
    floor_names = {f.name for f in floors}

    areas: List[Area] = []
    for i, item in enumerate(_section(path, data, "areas")):
        where = f"areas[{i}]"
        name = _name(path, where, item)
        floor = item.get("floor")
        if floor is not None and (not isinstance(floor, str) or floor not in floor_names):
            raise HomeError(path, f"{where} ({name}): unknown floor {floor!r}")
        areas.append(Area(name, _str_list(path, where, item.get("aliases")), floor))
    area_names = {a.name for a in areas}

    entities: List[Entity] = []
    seen: Dict[str, str] = {}
    for i, item in enumerate(_section(path, data, "entities")):
        where = f"entities[{i}]"
        name = _name(path, where, item)
        domain = item.get("domain")
        if not isinstance(domain, str) or domain not in KNOWN_DOMAINS:
            raise HomeError(
                path, f"{where} ({name}): 'domain' must be one of {sorted(KNOWN_DOMAINS)}, "
                      f"got {domain!r}")
        area = item.get("area")
        if area is not None and (not isinstance(area, str) or area not in area_names):
            raise HomeError(path, f"{where} ({name}): unknown area {area!r}")
        key = name.casefold()
        if key in seen:
            raise HomeError(path, f"{where}: duplicate entity name {name!r}")
        seen[key] = name
        entities.append(Entity(name, domain, area, _str_list(path, where, item.get("aliases")),
                               _device_class(path, where, item)))
    return Inventory(floors, areas, entities, source=path)


def load_inventory(path: Union[str, Path, None] = None, lang: str = "en") -> Inventory:
    """Load a home file (YAML or JSON), or the shipped default inventory for `lang`."""
    if path is None:
        return default_inventory(lang)
    data = read_yaml(path, "the home file", HomeError)  # JSON is YAML too
    return inventory_from_dict(data, str(path))


def read_yaml(path: Union[str, Path], what: str,
              error: Type[CorpusInputError] = HomeError) -> Any:
    """The YAML (or JSON) file a user gave; `error(path, message)` when it cannot be read, is
    not UTF-8 or not YAML, or is nested deeper than the parser's recursion allows."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise error(str(path), f"cannot read {what}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise error(str(path), f"not UTF-8 text ({err})") from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise error(str(path), f"not valid YAML: {err}") from err
    except RecursionError:  # PyYAML parses nesting by recursion
        raise error(str(path), f"{what}: nested too deeply") from None


def default_inventory(lang: str = "en") -> Inventory:
    """The inventory shipped for `lang`, falling back to English."""
    folder = resources.files("edge_slm") / "data" / "inventory"
    for name in (f"{lang}.yaml", f"{lang.split('-')[0]}.yaml", "en.yaml"):
        res = folder / name
        if res.is_file():
            return inventory_from_dict(yaml.safe_load(res.read_text(encoding="utf-8")),
                                       f"edge_slm/data/inventory/{name}")
    raise HomeError("edge_slm/data/inventory", "no default inventory shipped")


def home_from_bundle_json(data: object, where: str = "home.json") -> Inventory:
    """The home a bundle ships (`home.json`), in either of its formats."""
    if isinstance(data, dict) and "name" in data and "entities" not in data:
        return _upgrade_home_json_v1(data, where)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "format"}
    return inventory_from_dict(data, where)


def _upgrade_home_json_v1(data: Dict[str, Any], where: str) -> Inventory:
    """Format 1 kept only names ({"name"|"area"|"floor": [name or [name, alias...]]}): its
    entities come back with an unknown domain ("")."""
    def rows(key: str) -> List[List[str]]:
        out = []
        items = data.get(key) or []
        if not isinstance(items, list):
            raise HomeError(where, f"format 1 {key!r} must be a list of names, not {items!r}")
        for item in items:
            row = item if isinstance(item, list) else [item]
            row = [s for s in row if isinstance(s, str) and s.strip()]
            if row:
                out.append(row)
        return out
    return Inventory(
        floors=[Floor(r[0], tuple(r[1:])) for r in rows("floor")],
        areas=[Area(r[0], tuple(r[1:])) for r in rows("area")],
        entities=[Entity(r[0], "", None, tuple(r[1:])) for r in rows("name")],
        source=f"{where} (format 1, no domains)")


def home_json(inventory: Inventory) -> bytes:
    """The `home.json` member of a bundle."""
    return json.dumps(dict(inventory.to_dict(), format=HOME_JSON_FORMAT),
                      ensure_ascii=False).encode("utf-8")
