"""hassil's slot lists for a home: its areas, floors and device names, each name with its
`domain` (and `device_class` where the home gives one), the way Home Assistant hands its
template matcher the home. Used where the project runs hassil itself: the tests that match
the corpus back against Home Assistant's templates and the hassil baseline of
`scripts/bench_systems.py`.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from hassil.intents import TextSlotList

from .inventory import KNOWN_DOMAINS, Inventory


def slot_lists(inv: Inventory, extra: Optional[Mapping[str, Iterable[str]]] = None
               ) -> Dict[str, TextSlotList]:
    """`area`, `floor` and `name` lists of `inv`. `extra` adds places the home lacks (a
    sentence's own names, the synthetic names of the corpus): `area` and `floor` as they are,
    `name` with every domain, since nothing says which."""
    areas = [(a, x.name) for x in inv.areas for a in (x.name,) + x.aliases]
    floors = [(f, x.name) for x in inv.floors for f in (x.name,) + x.aliases]
    names: List[Tuple[str, str, Dict[str, Any]]] = []
    for e in inv.entities:
        ctx = {"domain": e.domain, **({"device_class": e.device_class}
                                      if e.device_class else {})}
        names += [(s, e.name, ctx) for s in e.spoken]
    extra = extra or {}
    areas += [(a, a) for a in extra.get("area", ())]
    floors += [(f, f) for f in extra.get("floor", ())]
    names += [(n, n, {"domain": d}) for n in extra.get("name", ()) for d in sorted(KNOWN_DOMAINS)]
    return {"area": TextSlotList.from_tuples(areas, allow_template=False),
            "floor": TextSlotList.from_tuples(floors, allow_template=False),
            "name": TextSlotList.from_tuples(names, allow_template=False)}


def unknown_names(inv: Inventory, records: Iterable[Mapping[str, Any]]) -> List[str]:
    """The `name` slot values of corpus `records` that `inv` has no entity for (the corpus's
    synthetic names), sorted."""
    known = {e.name for e in inv.entities}
    return sorted({s["value"] for r in records for s in r["slots"]
                   if s["name"] == "name" and s["value"] not in known})
