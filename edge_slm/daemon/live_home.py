"""The home the engine answers for, united from its live sources and swapped in whole.

    live = LiveHome()
    live.update(file_home(Path("home.yaml")))     # any source, from any thread
    engine = live.attach(engine)                  # the engine answers for the merged home
    live.update(home_from_registries(...))        # a change: merged again, swapped in once
    live.merged.origin("name", "Desk Lamp")       # Origin(source='mqtt_discovery', id=...)
    live.summary()                                # {"file": {"names": 3, "areas": 2, ...}}

Precedence (`home_sources.SOURCES`): the home file, then Home Assistant, then MQTT discovery,
then Zigbee2MQTT. Names of every source are united: one entity, area or floor per name
(compared case-insensitively), taken whole from the first source that has it, and each
remembers the source and that source's id for it. An entity's area and an area's floor are
the merged home's own spelling of them. When no source gives anything, the engine answers for
the bundle's shipped home (the fallback), as without any source.

A change merges every source's latest home into a new Inventory and hands it to the engine in
one `IntentEngine.set_home` call (indexed first, then swapped as one reference), under a lock,
so two sources changing at once never interleave and a parse sees one home or the next.
Stdlib only.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple, TypeVar, Union)

from ..home import Area, Entity, Floor, Inventory, load_inventory
from ..errors import ConfigError
from .home_sources import FILE, SHIPPED, SOURCES, HomeSourcesConfig, read_ha_token

if TYPE_CHECKING:
    from ..runtime.engine import IntentEngine
    from .ha_client import HomeAssistantFollower
    from .mqtt_home import MqttHomeFeed

_LOGGER = logging.getLogger(__name__)

NAME, AREA, FLOOR = "name", "area", "floor"
"""The kinds of names: an entity's, an area's, a floor's (the engine's slots)."""
Key = Tuple[str, str]
"""(kind, the name case-folded): one name of the home."""
_Item = TypeVar("_Item", Floor, Area, Entity)


def key(kind: str, name: str) -> Key:
    """The key of a name of `kind` ("name", "area", "floor")."""
    return kind, name.casefold()


@dataclass(frozen=True)
class Origin:
    """Where a name of the merged home came from."""

    source: str
    """One of `home_sources.SOURCES`."""
    id: str
    """The source's own id of it: an entity id, an area id, a discovery topic, an IEEE
    address, a place in the home file."""


@dataclass(frozen=True)
class SourceHome:
    """What one source knows: its home, and its ids of the names in it."""

    source: str
    """One of `home_sources.SOURCES`."""
    inventory: Inventory
    """Its floors, areas and entities (each list free of duplicate names)."""
    ids: Mapping[Key, str] = field(default_factory=dict)
    """The source's id of each name (absent: the name is its own id)."""
    skipped: int = 0
    """Entries the source had that could not be used (malformed, duplicate, of no domain the
    engine knows); each was logged."""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown home source {self.source!r}; one of {SOURCES}")

    def counts(self) -> Dict[str, int]:
        """{"names", "areas", "floors"}: how many it has."""
        return _counts(self.inventory)


def _counts(inventory: Inventory) -> Dict[str, int]:
    return {"names": len(inventory.entities), "areas": len(inventory.areas),
            "floors": len(inventory.floors)}


def file_home(path: Union[str, Path]) -> SourceHome:
    """The home file as a source (HomeError when it is malformed, as for `--home`)."""
    inventory = load_inventory(Path(path))
    ids: Dict[Key, str] = {}
    sections: Tuple[Tuple[str, str, Sequence[Union[Floor, Area, Entity]]], ...] = (
        (NAME, "entities", inventory.entities), (AREA, "areas", inventory.areas),
        (FLOOR, "floors", inventory.floors))
    for kind, section, items in sections:
        for i, item in enumerate(items):
            ids[key(kind, item.name)] = f"{section}[{i}]"
    return SourceHome(FILE, inventory, ids)


@dataclass(frozen=True)
class MergedHome:
    """The united home of every source, with where each name came from."""

    inventory: Inventory
    """Floors, areas and entities (empty: no source gave any)."""
    origins: Mapping[Key, Origin]
    """Where each name came from."""
    given: Mapping[str, Dict[str, int]] = field(default_factory=dict)
    """What each source gave, before merging, and what it skipped
    ({"home_assistant": {"names": 40, "areas": 6, "floors": 2, "skipped": 1}})."""

    def origin(self, kind: str, name: str) -> Optional[Origin]:
        """Where the `kind` ("name", "area", "floor") called `name` came from (None: not in
        the home)."""
        return self.origins.get(key(kind, name))

    def same_names(self, other: "MergedHome") -> bool:
        """Whether `other` has the same floors, areas and entities from the same origins."""
        a, b = self.inventory, other.inventory
        return ((a.floors, a.areas, a.entities) == (b.floors, b.areas, b.entities)
                and self.origins == other.origins)

    def summary(self) -> Dict[str, Dict[str, int]]:
        """{source: {"names", "areas", "floors"}}: how many of the merged home's names each
        source gave (a name two sources have counts for the one that won)."""
        out: Dict[str, Dict[str, int]] = {}
        for (kind, _), origin in self.origins.items():
            counts = out.setdefault(origin.source, {"names": 0, "areas": 0, "floors": 0})
            counts[kind + "s"] += 1
        return {s: out[s] for s in SOURCES if s in out}

    def to_dict(self) -> Dict[str, Any]:
        """The home as `edge-slm home show --json` prints it."""
        def row(kind: str, item: Union[Floor, Area, Entity], extra: Dict[str, Any]
                ) -> Dict[str, Any]:
            origin = self.origins.get(key(kind, item.name))
            out: Dict[str, Any] = {"name": item.name, **extra, "aliases": list(item.aliases)}
            if origin is not None:
                out.update(source=origin.source, id=origin.id)
            return out
        inv = self.inventory
        return {
            "sources": dict(self.given), "merged": self.summary(),
            "floors": [row(FLOOR, f, {}) for f in inv.floors],
            "areas": [row(AREA, a, {"floor": a.floor}) for a in inv.areas],
            "entities": [row(NAME, e, {"domain": e.domain, "area": e.area,
                                       "device_class": e.device_class})
                         for e in inv.entities],
        }


def merge(homes: Iterable[SourceHome]) -> MergedHome:
    """The homes united by precedence (see the module doc)."""
    ordered = sorted(homes, key=lambda h: SOURCES.index(h.source))
    origins: Dict[Key, Origin] = {}

    def unite(kind: str, pick: Any) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for home in ordered:
            for item in pick(home.inventory):
                k = key(kind, item.name)
                if k[1] not in out:
                    out[k[1]] = item
                    origins[k] = Origin(home.source, home.ids.get(k, item.name))
        return out

    floors: Dict[str, Floor] = unite(FLOOR, lambda inv: inv.floors)
    areas: Dict[str, Area] = unite(AREA, lambda inv: inv.areas)
    entities: Dict[str, Entity] = unite(NAME, lambda inv: inv.entities)
    merged_areas = [replace(a, floor=_spelling(floors, a.floor)) for a in areas.values()]
    merged_entities = [replace(e, area=_spelling(areas, e.area)) for e in entities.values()]
    used = [h.source for h in ordered if h.inventory]
    inventory = Inventory(list(floors.values()), merged_areas, merged_entities,
                          source=" + ".join(used) or "<no source>")
    return MergedHome(inventory, origins,
                      {h.source: dict(h.counts(), skipped=h.skipped) for h in ordered})


def _spelling(items: Mapping[str, Union[Floor, Area]], name: Optional[str]) -> Optional[str]:
    """The merged home's spelling of a floor or area `name` (None when it has none)."""
    if name is None:
        return None
    found = items.get(name.casefold())
    return found.name if found is not None else None


def unique(items: Sequence[_Item], what: str, source: str) -> Tuple[List[_Item], int]:
    """`items` without a second one of the same name (case-insensitive): (kept, dropped).
    A source's own duplicates (two "Ceiling Light"s in two rooms) keep the first."""
    seen: Dict[str, _Item] = {}
    dropped = 0
    for item in items:
        k = item.name.casefold()
        if k in seen:
            dropped += 1
            _LOGGER.info("%s: a second %s called %r is left out (names are one per home)",
                         source, what, item.name)
            continue
        seen[k] = item
    return list(seen.values()), dropped


class LiveHome:
    """The merged home, kept current as sources change, and the engine answering for it."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._homes: Dict[str, SourceHome] = {}
        self.merged: MergedHome = merge(())
        """The current merged home."""
        self.engine: Optional[IntentEngine] = None
        """The engine answering for it (the last one attached)."""
        self.generation = 0
        """How many times the merged home changed."""

    def attach(self, engine: IntentEngine) -> IntentEngine:
        """Make `engine` answer for the merged home (the shipped one when it is empty), now
        and after every change; returns it. A reloaded engine is attached in its turn."""
        with self._lock:
            self.engine = engine
            engine.set_home(self.merged.inventory or None)
        return engine

    def update(self, home: SourceHome) -> bool:
        """Take a source's latest home; True when the merged home changed (and was handed
        to the engine)."""
        with self._lock:
            if self._homes.get(home.source) == home:
                return False
            self._homes[home.source] = home
            merged = merge(self._homes.values())
            if merged.same_names(self.merged):
                self.merged = merged  # only what a lower source gave changed: nothing to swap
                return False
            self.merged = merged
            if self.engine is not None:
                self.engine.set_home(merged.inventory or None)
            self.generation += 1
            self._lock.notify_all()
        _LOGGER.info("home from %s: %d names, %d areas, %d floors", merged.inventory.source,
                     len(merged.inventory.entities), len(merged.inventory.areas),
                     len(merged.inventory.floors))
        return True

    def wait_for_change(self, generation: int, timeout_s: float) -> bool:
        """Wait until the merged home has changed after `generation` (or `timeout_s` passed);
        True when it has."""
        with self._lock:
            return self._lock.wait_for(lambda: self.generation > generation, timeout_s)

    def summary(self) -> Dict[str, Dict[str, int]]:
        """{source: counts} of the names the engine answers for: the merged home's, or
        {"shipped": ...} when it falls back to the bundle's home ({} before an engine)."""
        with self._lock:
            merged, engine = self.merged, self.engine
        if merged.inventory or engine is None:
            return merged.summary()
        return {SHIPPED: _counts(engine.shipped_home)}


def open_sources(sources: HomeSourcesConfig, live: LiveHome, environ: Mapping[str, str],
                 mqtt: bool = True
                 ) -> Tuple[Optional[HomeAssistantFollower], Optional[MqttHomeFeed]]:
    """(the Home Assistant follower, not started; the broker's home feed, for the daemon's
    connection) of the live sources that are on, each None when off, both feeding `live`.
    The access token is read here (ConfigError when there is none). `mqtt`: whether there is
    a broker (not with `serve --serial`)."""
    if sources.on_broker and not mqtt:
        raise ConfigError("--discovery and --z2m read the MQTT broker: not with --serial")
    follower = feed = None
    if sources.ha_url is not None:
        from .ha_client import HomeAssistantFollower

        token = read_ha_token(sources.ha_token_file, environ)
        follower = HomeAssistantFollower(str(sources.ha_websocket_url), token, live)
    if sources.on_broker:
        from .mqtt_home import MqttHomeFeed

        feed = MqttHomeFeed(live, sources)
    return follower, feed
