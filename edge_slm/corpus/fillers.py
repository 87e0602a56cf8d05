"""Fillers for wildcard slots (shopping items, search queries, messages, timer names, ...).

Shipped per language in `edge_slm/data/fillers/<lang>.yaml`; English is the fallback.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Dict, Tuple

import yaml

#: Which filler list feeds a wildcard, by slot name, when the list name itself has none.
SLOT_FILLER_ALIASES = {
    "conversation_command": "timer_command",
    "item": "shopping_list_item",
    "search_query": "search_query",
    "message": "message",
    "name": "timer_name",
}

#: Used for wildcards nobody wrote fillers for (a user's custom wildcard list).
GENERIC_FILLERS: Tuple[str, ...] = (
    "something", "the usual", "that thing", "the blue one", "number five", "tomorrow",
    "my stuff", "the big one", "anything", "whatever you like",
)


@lru_cache(maxsize=None)
def load_fillers(lang: str) -> Dict[str, Tuple[str, ...]]:
    """Wildcard list name -> filler texts for `lang` (falling back to English)."""
    folder = resources.files("edge_slm") / "data" / "fillers"
    for name in (f"{lang}.yaml", f"{lang.split('-')[0]}.yaml", "en.yaml"):
        res = folder / name
        if res.is_file():
            data = yaml.safe_load(res.read_text(encoding="utf-8")) or {}
            return {k: tuple(str(v) for v in vals) for k, vals in data.items() if vals}
    return {}


def fillers_for(lang: str, list_name: str, slot_name: str) -> Tuple[str, ...]:
    """The fillers for a wildcard `{list_name:slot_name}`."""
    table = load_fillers(lang)
    if list_name in table:
        return table[list_name]
    alias = SLOT_FILLER_ALIASES.get(slot_name)
    if alias and alias in table:
        return table[alias]
    return GENERIC_FILLERS
