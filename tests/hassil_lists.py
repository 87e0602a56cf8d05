"""hassil's slot lists for a home: its areas, floors and device names (with their domains), as
the tests that run Home Assistant's own matcher over the corpus give them."""

from __future__ import annotations

from typing import Any, Dict, Iterable

from hassil.intents import TextSlotList

from edge_slm.corpus.inventory import KNOWN_DOMAINS


def slot_lists(inv: Any, records: Iterable[Dict[str, Any]] = ()) -> Dict[str, Any]:
    """`area`, `floor` and `name` lists of `inv`; names that `records` use but the home lacks
    (synthetic names, names.py) are added with every domain."""
    areas = [(a, area.name) for area in inv.areas for a in (area.name,) + area.aliases]
    floors = [(f, floor.name) for floor in inv.floors for f in (floor.name,) + floor.aliases]
    names = [(s, e.name, {"domain": e.domain}) for e in inv.entities for s in e.spoken]
    # Synthetic names (names.py) are not in the inventory: let them be any domain.
    known = {e.name for e in inv.entities}
    synthetic = {s["value"] for r in records for s in r["slots"]
                 if s["name"] == "name" and s["value"] not in known}
    names += [(n, n, {"domain": d}) for n in sorted(synthetic) for d in sorted(KNOWN_DOMAINS)]
    return {
        "area": TextSlotList.from_tuples(areas, allow_template=False),
        "floor": TextSlotList.from_tuples(floors, allow_template=False),
        "name": TextSlotList.from_tuples(names, allow_template=False),
    }
