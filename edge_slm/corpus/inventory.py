"""The home inventory that fills `{floor}`, `{area}`, `{name}` in templates.

The format and its loader live with the device side in `edge_slm/home.py` (the engine
resolves names against the same kind of file); this module adds what sampling needs: an
inventory the corpus can draw from has at least one area and one entity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import CorpusInputError
from ..home import (  # noqa: F401  (re-exported: the corpus's names for the home's types)
    KNOWN_DOMAINS,
    Area,
    Entity,
    Floor,
    Inventory,
    default_inventory,
    inventory_from_dict,
)
from ..home import load_inventory as _load_home


def load_inventory(path: Optional[Path] = None, lang: str = "en") -> Inventory:
    """Load `path`, or the shipped default inventory for `lang`, for sampling (raises
    `CorpusInputError` unless it has an area and an entity to draw)."""
    inv = _load_home(path, lang)
    if not inv.areas:
        raise CorpusInputError(inv.source, "an inventory needs at least one area")
    if not inv.entities:
        raise CorpusInputError(inv.source, "an inventory needs at least one entity")
    return inv
