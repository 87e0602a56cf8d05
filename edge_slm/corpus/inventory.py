"""The home inventory: floors, areas and named entities that fill `{floor}`, `{area}`, `{name}`.

A user's inventory is a YAML file (format in docs/corpus.md); the default one ships in
`edge_slm/data/inventory/<lang>.yaml`. Loading validates everything and raises
`CorpusInputError` naming the file and the offending entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from ..errors import CorpusInputError

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
    """Home Assistant domain (light, switch, lock, ...)."""
    area: Optional[str] = None
    """The area it is in, if known."""
    aliases: Tuple[str, ...] = ()
    """Other names for it."""

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


def _str_list(path: str, where: str, value: Any) -> Tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise CorpusInputError(path, f"{where}: 'aliases' must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _name(path: str, where: str, item: Any) -> str:
    if not isinstance(item, dict):
        raise CorpusInputError(path, f"{where}: expected a mapping with 'name', got {item!r}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CorpusInputError(path, f"{where}: missing or empty 'name'")
    return name.strip()


def _section(path: str, data: Dict[str, Any], key: str) -> List[Any]:
    items = data.get(key) or []
    if not isinstance(items, list):
        raise CorpusInputError(path, f"'{key}' must be a list, got {type(items).__name__}")
    return items


def inventory_from_dict(data: Any, path: str = "<memory>") -> Inventory:
    """Validate and build an inventory from parsed YAML; raise `CorpusInputError` if malformed."""
    if not isinstance(data, dict):
        raise CorpusInputError(path, "an inventory must be a mapping with floors/areas/entities")
    unknown = set(data) - {"floors", "areas", "entities"}
    if unknown:
        raise CorpusInputError(path, f"unknown top-level keys {sorted(unknown)}; "
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
        if floor is not None and floor not in floor_names:
            raise CorpusInputError(path, f"{where} ({name}): unknown floor {floor!r}")
        areas.append(Area(name, _str_list(path, where, item.get("aliases")), floor))
    area_names = {a.name for a in areas}

    entities: List[Entity] = []
    seen: Dict[str, str] = {}
    for i, item in enumerate(_section(path, data, "entities")):
        where = f"entities[{i}]"
        name = _name(path, where, item)
        domain = item.get("domain")
        if not isinstance(domain, str) or domain not in KNOWN_DOMAINS:
            raise CorpusInputError(
                path, f"{where} ({name}): 'domain' must be one of {sorted(KNOWN_DOMAINS)}, "
                      f"got {domain!r}")
        area = item.get("area")
        if area is not None and area not in area_names:
            raise CorpusInputError(path, f"{where} ({name}): unknown area {area!r}")
        key = name.casefold()
        if key in seen:
            raise CorpusInputError(path, f"{where}: duplicate entity name {name!r}")
        seen[key] = name
        entities.append(Entity(name, domain, area, _str_list(path, where, item.get("aliases"))))

    if not areas:
        raise CorpusInputError(path, "an inventory needs at least one area")
    if not entities:
        raise CorpusInputError(path, "an inventory needs at least one entity")
    return Inventory(floors, areas, entities, source=path)


def load_inventory(path: Optional[Path] = None, lang: str = "en") -> Inventory:
    """Load `path`, or the shipped default inventory for `lang` (English when none ships)."""
    if path is None:
        return default_inventory(lang)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise CorpusInputError(str(path), f"cannot read inventory: {err.strerror}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CorpusInputError(str(path), f"not valid YAML: {err}") from err
    return inventory_from_dict(data, str(path))


def default_inventory(lang: str = "en") -> Inventory:
    """The inventory shipped for `lang`, falling back to English."""
    folder = resources.files("edge_slm") / "data" / "inventory"
    for name in (f"{lang}.yaml", f"{lang.split('-')[0]}.yaml", "en.yaml"):
        res = folder / name
        if res.is_file():
            return inventory_from_dict(yaml.safe_load(res.read_text(encoding="utf-8")),
                                       f"edge_slm/data/inventory/{name}")
    raise FileNotFoundError("no default inventory shipped")  # pragma: no cover
