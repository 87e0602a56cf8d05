"""The home an engine answers for, indexed for the questions parsing asks of it.

    home = KnownHome(inventory, user=True)
    home.names            HomeNames: is this phrase a name, an area, a floor? (resolution)
    home.canonical(...)   the home's own spelling of a phrase ("kitchen" -> "Kitchen")
    home.domain_of(name)  the domain of a named entity ("Rover" -> "vacuum")
    home.find(...)        a name of the home said in the text where the tagger saw none

`user` says whose home it is. The user's own home is authoritative: names resolve only
against it (a place it lacks is dropped), and it may add what the tagger missed. The home
shipped in a bundle is a fallback for users who gave none: it fixes spellings, never more.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ..home import Inventory
from .resolve import HomeNames, Span, norm
from .values import HomeIndex

#: Words that may sit between the words of a name said in the text ("the", "my" never do).
_WORD = re.compile(r"[\w'’-]+")


@dataclass
class KnownHome:
    """An inventory with its lookups built once."""

    inventory: Inventory
    """Floors, areas and entities."""
    user: bool = False
    """The user's own home (authoritative) rather than the shipped fallback."""
    names: HomeNames = field(init=False)
    """Spoken forms by kind, for resolution."""
    index: HomeIndex = field(init=False)
    """Spoken form -> the home's spelling."""
    _domains: Dict[str, str] = field(init=False, default_factory=dict)
    _phrases: Dict[str, Dict[str, List[Tuple[Tuple[str, ...], str]]]] = field(
        init=False, default_factory=dict)

    def __post_init__(self) -> None:
        table = self.inventory.names()
        self.names = HomeNames.build(
            [s for row in table["name"] for s in row], [s for row in table["area"] for s in row],
            [s for row in table["floor"] for s in row])
        self.index = HomeIndex({k: [list(r) for r in v] for k, v in table.items()})
        for e in self.inventory.entities:
            if e.domain:
                self._domains[norm(e.name)] = e.domain
        for slot, rows in table.items():
            by_first: Dict[str, List[Tuple[Tuple[str, ...], str]]] = {}
            for row in rows:
                for spoken in row:
                    phrase = tuple(norm(spoken).split())
                    if phrase:
                        by_first.setdefault(_stem(phrase[0]), []).append((phrase, row[0]))
            for phrases in by_first.values():
                # longest first, so that "kitchen ceiling light" wins over "kitchen ceiling"
                phrases.sort(key=lambda p: -len(p[0]))
            self._phrases[slot] = by_first

    def canonical(self, slot: str, raw: str) -> Optional[str]:
        """The home's spelling of `raw` as a `slot` ("name", "area", "floor"), or None."""
        return self.index.canonical(slot, raw)

    def domain_of(self, name: str) -> Optional[str]:
        """The domain of the entity called `name` (its canonical spelling), if known."""
        return self._domains.get(norm(name))

    def find(self, slot: str, text: str, taken: Sequence[Tuple[int, int]],
             domains: Optional[Iterable[str]] = None) -> Optional[Span]:
        """The longest `slot` the home has ("name", "area", "floor") said word for word in
        `text` outside the `taken` character ranges, as a span; None when there is none.
        `domains`: for names, only entities of these domains."""
        wanted = None if domains is None else set(domains)
        by_first = self._phrases.get(slot)
        if not by_first:
            return None
        words = [(m.start(), m.end(), norm(m.group(0))) for m in _WORD.finditer(text)]
        free = [not any(a < e and b > s for s, e in taken) for a, b, _ in words]
        spoken = [w for _, _, w in words]
        best: Optional[Tuple[int, int]] = None  # (first word, number of words)
        i = 0
        while i < len(words):
            n, canonical = self._longest_at(by_first, spoken, free, i)
            if n and (wanted is None or self._domains.get(norm(canonical)) in wanted):
                if best is None or n > best[1]:
                    best = (i, n)
            # a longer name of another domain hides the shorter ones inside it
            i += max(n, 1)
        if best is None:
            return None
        i, n = best
        return (slot, words[i][0], words[i + n - 1][1])

    @staticmethod
    def _longest_at(by_first: Dict[str, List[Tuple[Tuple[str, ...], str]]],
                    spoken: List[str], free: List[bool], i: int) -> Tuple[int, str]:
        """(words, canonical name) of the longest phrase said from word `i` (0: none)."""
        for phrase, canonical in by_first.get(_stem(spoken[i]), ()):
            n = len(phrase)
            if i + n <= len(spoken) and all(free[i:i + n]) and _same(spoken[i:i + n], phrase):
                return n, canonical
        return 0, ""


def _stem(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _same(said: Iterable[str], phrase: Tuple[str, ...]) -> bool:
    """Word-for-word equal, a final plural "s" allowed ("the play corner lights")."""
    said = list(said)
    if said == list(phrase):
        return True
    return (len(said) == len(phrase) and said[:-1] == list(phrase[:-1])
            and _stem(said[-1]) == _stem(phrase[-1]))


@contextmanager
def home_kept(engine: Any) -> Iterator[None]:
    """Put an engine's home back after the block (which may `set_home` others): the user's
    own it had, or the shipped one. `engine`: anything with `home` and `set_home`, as
    IntentEngine."""
    before = engine.home.inventory if engine.home.user else None
    try:
        yield
    finally:
        engine.set_home(before)
