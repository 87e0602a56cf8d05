"""Resolve tagged place spans (name, area, floor, device_class) against the home's names.

A tagger alone cannot know whether "living room lamp" is an entity called that or the lamp in
the living room, or whether "deadbolt lock" is the name or "deadbolt" plus a device word: Home
Assistant's own matcher answers from the home's entity and area names, and so do we.
`resolve_spans` takes the model's spans and returns them merged, split, trimmed or relabelled
so that each name is one the home has, where the words allow it. Spans of other slots pass
through untouched, and nothing changes when the home is empty.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from typing import (TYPE_CHECKING, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple,
                    Union)

if TYPE_CHECKING:
    from ..home import Area, Entity, Floor, Inventory

Span = Tuple[str, int, int]

PLACE_SLOTS = frozenset({"name", "area", "floor", "device_class"})
#: Spans that may merge into one name ("man cave" area + "tv" name). A device class stays out:
#: "garage door" said of covers is the class even in a home with an entity of that name.
MERGEABLE = frozenset({"name", "area", "floor"})

#: Words that name a kind of device rather than a device ("the gym light" is the light in the
#: gym when the home has no entity called "gym light").
DEVICE_WORDS = frozenset(
    """light lights lamp lamps lighting bulb bulbs switch switches plug plugs outlet outlets
    socket sockets fan fans tv television telly speaker speakers lock locks door doors gate
    gates window windows blind blinds shade shades shutter shutters curtain curtains awning
    awnings thermostat heater heating ac sensor sensors device devices""".split()
)

#: Device words that name a cover's device class (Home Assistant's `cover_classes`): "the
#: bedroom blinds" with no such entity is the area and the blind class.
COVER_CLASS_WORDS = frozenset(
    """blind blinds shade shades shutter shutters curtain curtains awning awnings door doors
    window windows gate gates""".split()
)

#: Words before a name that are not part of it ("my", "the").
#: Similarity (difflib ratio) above which a phrase is taken for a misspelled known place.
NEAR_MISS = 0.8
LEADING_WORDS = frozenset("my the our a an your his her their this that".split())

_WORD = re.compile(r"[\w'’-]+")


def norm(phrase: str) -> str:
    """The form names are compared in: case-folded, single spaces, curly apostrophes plain."""
    return " ".join(phrase.replace("’", "'").casefold().split())


def _variants(phrase: str) -> Tuple[str, ...]:
    """`phrase` and its singular/plural neighbours ("lamps" ~ "lamp")."""
    p = norm(phrase)
    out = [p]
    if p.endswith("s") and len(p) > 3:
        out.append(p[:-1])
    else:
        out.append(p + "s")
    return tuple(out)


class NearMiss:
    """Misspellings of known phrases: one edit away (a letter dropped, added, changed, or two
    swapped) found through single-deletion variants, then ranked by similarity. Looks up
    about a dozen keys instead of comparing against every name of the home."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self._by_variant: Dict[str, Set[str]] = {}
        for p in phrases:
            for v in _deletions(p):
                self._by_variant.setdefault(v, set()).add(p)

    def find(self, phrase: str, cutoff: float = NEAR_MISS) -> Optional[str]:
        """The known phrase `phrase` is a misspelling of (similarity >= cutoff), or None."""
        found: Set[str] = set()
        for v in _deletions(phrase):
            found |= self._by_variant.get(v, set())
        best, best_ratio = None, cutoff
        for cand in sorted(found):
            r = difflib.SequenceMatcher(None, phrase, cand).ratio()
            if r >= best_ratio:
                best, best_ratio = cand, r
        return best


def _deletions(p: str) -> Set[str]:
    return {p} | {p[:i] + p[i + 1:] for i in range(len(p))}


@dataclass(frozen=True)
class HomeNames:
    """The names a home knows, in `norm` form: entities, areas and floors with aliases."""

    names: FrozenSet[str] = field(default_factory=frozenset)
    areas: FrozenSet[str] = field(default_factory=frozenset)
    floors: FrozenSet[str] = field(default_factory=frozenset)

    @classmethod
    def build(cls, names: Iterable[str] = (), areas: Iterable[str] = (),
              floors: Iterable[str] = ()) -> "HomeNames":
        """From plain lists of phrases."""
        def clean(items: Iterable[str]) -> FrozenSet[str]:
            return frozenset(n for n in (norm(i) for i in items) if n)
        return cls(clean(names), clean(areas), clean(floors))

    @classmethod
    def from_inventory(cls, inventory: Inventory) -> "HomeNames":
        """From an inventory with `entities`, `areas` and `floors` (names plus aliases)."""
        def spoken(items: Iterable[Union[Floor, Area, Entity]]) -> List[str]:
            return [s for it in items for s in (it.name,) + tuple(it.aliases)]
        return cls.build(spoken(inventory.entities), spoken(inventory.areas),
                         spoken(inventory.floors))

    def union(self, other: "HomeNames") -> "HomeNames":
        """A home with the names of both."""
        return HomeNames(self.names | other.names, self.areas | other.areas,
                         self.floors | other.floors)

    def __bool__(self) -> bool:
        return bool(self.names or self.areas or self.floors)

    def is_name(self, phrase: str) -> bool:
        return any(v in self.names for v in _variants(phrase))

    def is_area(self, phrase: str) -> bool:
        return any(v in self.areas for v in _variants(phrase))

    def is_floor(self, phrase: str) -> bool:
        return any(v in self.floors for v in _variants(phrase))

    def near_miss(self, slot: str, phrase: str, cutoff: float = NEAR_MISS) -> bool:
        """Whether `phrase` is a misspelling of a `slot` ("name", "area", "floor") the home
        has ("garagge door" for "garage door")."""
        index = self._near.get(slot)
        p = norm(phrase)
        if len(p) < 4 or index is None:
            return False
        return index.find(p, cutoff) is not None

    @functools.cached_property
    def _near(self) -> Dict[str, NearMiss]:
        return {"name": NearMiss(self.names), "area": NearMiss(self.areas),
                "floor": NearMiss(self.floors)}


def _words(text: str, start: int, end: int) -> List[Tuple[int, int]]:
    return [(start + m.start(), start + m.end()) for m in _WORD.finditer(text[start:end])]


def _adjacent(text: str, a: Span, b: Span) -> bool:
    gap = text[a[2]:b[1]]
    return a[2] <= b[1] and (not gap.strip() or gap.strip() in ("'s", "’s"))


def resolve_spans(text: str, spans: Sequence[Span], home: Optional[HomeNames],
                  strict: bool = False, free: Iterable[str] = (),
                  names_win: bool = False) -> List[Span]:
    """The spans after resolution against `home` (see the module docstring), in text order.

    `strict` (the home is complete): a name, area or floor the home does not have, under any
    label and not even as a near miss, is dropped ("did our flood detector detect anything"
    names no device when the home has no "flood detector"). `names_win` (the home is the
    user's own): a device class said with the words of one of its entities' names is that
    entity ("close the curtain left" in a home with a "Curtain Left"). Slots in `free` are
    free text (a timer's name), never places of the home: they pass untouched.
    """
    free = frozenset(free)
    kept = [sp for sp in spans if sp[0] in free]
    out = sorted((sp for sp in spans if sp[0] not in free), key=lambda s: s[1])
    if not home:
        if strict:  # a complete home with no places: no place said is one of them
            out = [sp for sp in out if sp[0] not in MERGEABLE]
        return sorted(kept + out, key=lambda s: s[1])
    if names_win:
        out = _classes_that_are_names(text, out, home)
    out = _merge_adjacent(text, out, home)
    out = _extend_names(text, out, home)
    result: List[Span] = []
    for span in out:
        result.extend(_fix_one(text, span, home))
    if strict:
        result = [k for k in (_known(text, span, home) for span in result) if k is not None]
    return sorted(kept + result, key=lambda s: s[1])


def _classes_that_are_names(text: str, spans: List[Span], home: HomeNames) -> List[Span]:
    """A device class whose words, alone or with one or two untagged neighbours, are a name of
    the home is that name ("sliding door", "curtain" + "left")."""
    out: List[Optional[Span]] = list(spans)
    for n, span in enumerate(spans):
        slot, a, b = span
        if slot != "device_class":
            continue
        before = out[n - 1] if n > 0 else None
        if home.is_name(text[a:b]):
            out[n] = ("name", a, b)
        elif (before is not None and before[0] in MERGEABLE and _adjacent(text, before, span)
              and norm(text[before[1]:b]) in home.names):
            # "bedroom" + "curtain" in a home with a "Bedroom Curtain" (word for word: "the
            # bedroom windows" of a home with a "Bedroom Window" are its windows)
            out[n - 1], out[n] = None, ("name", before[1], b)
        else:
            out[n] = _grown_to_a_name(text, list(spans), n, home) or span
    return [sp for sp in out if sp is not None]


def _grown_to_a_name(text: str, spans: List[Span], n: int, home: HomeNames) -> Optional[Span]:
    """Span `n` grown by one or two untagged neighbouring words into a name the home has,
    or None."""
    _, a, b = spans[n]
    lo = spans[n - 1][2] if n > 0 else 0
    hi = spans[n + 1][1] if n + 1 < len(spans) else len(text)
    after, before = _words(text, b, hi)[:2], _words(text, lo, a)[-2:]
    for k in (2, 1):
        if len(after) >= k and home.is_name(text[a:after[k - 1][1]]):
            return ("name", a, after[k - 1][1])
        if len(before) >= k and home.is_name(text[before[-k][0]:b]):
            return ("name", before[-k][0], b)
    return None


def _known(text: str, span: Span, home: HomeNames) -> Optional[Span]:
    """`span` as the home knows it (relabelled if the home has it as another place kind), or
    None when the home has no such place."""
    slot, a, b = span
    if slot not in MERGEABLE:
        return span
    phrase = text[a:b]
    checks = {"name": home.is_name, "area": home.is_area, "floor": home.is_floor}
    if checks[slot](phrase):
        return span
    for other in ("name", "area", "floor"):
        if other != slot and checks[other](phrase):
            return (other, a, b)
    if home.near_miss(slot, phrase):
        return span
    return None


def _merge_adjacent(text: str, spans: List[Span], home: HomeNames) -> List[Span]:
    """Neighbouring place spans whose words together are a known name become that name
    ("man cave" area + "tv" name -> "man cave tv")."""
    out: List[Span] = []
    i = 0
    while i < len(spans):
        best = None
        if spans[i][0] in MERGEABLE:
            j = i
            while (j + 1 < len(spans) and spans[j + 1][0] in MERGEABLE
                   and _adjacent(text, spans[j], spans[j + 1])):
                j += 1
            for k in range(j, i, -1):  # longest run first
                phrase = text[spans[i][1]:spans[k][2]]
                if home.is_name(phrase) and not all(
                        home.is_name(text[s[1]:s[2]]) and s[0] == "name"
                        for s in spans[i:k + 1]):
                    best = k
                    break
        if best is None:
            out.append(spans[i])
            i += 1
        else:
            out.append(("name", spans[i][1], spans[best][2]))
            i = best + 1
    return out


def _extend_names(text: str, spans: List[Span], home: HomeNames) -> List[Span]:
    """A name that is not known but becomes known with one or two untagged neighbouring words
    grows to them ("spot" + "3" -> "spot 3"), or with the one-word value read right after it
    ("salt lamp" + brightness "1" of "set salt lamp 1 to 63%" in a home with a "Salt Lamp
    1": the value was the name's last word)."""
    out: List[Optional[Span]] = list(spans)
    for n, span in enumerate(spans):
        slot, a, b = span
        if slot != "name":
            continue
        after = spans[n + 1] if n + 1 < len(spans) else None
        if (after is not None and after[0] not in MERGEABLE
                and len(_words(text, after[1], after[2])) == 1 and _adjacent(text, span, after)
                and home.is_name(text[a:after[2]])):
            # the longer name wins, as a name said word for word does ("Salt Lamp" beside
            # "Salt Lamp 1")
            out[n], out[n + 1] = ("name", a, after[2]), None
        elif not home.is_name(text[a:b]):
            # bounded by the neighbours as grown so far (a value taken by a name: its span)
            now = [o if o is not None else s for o, s in zip(out, spans)]
            out[n] = _grown_to_a_name(text, now, n, home) or span
    return [sp for sp in out if sp is not None]


def _fix_one(text: str, span: Span, home: HomeNames) -> List[Span]:
    slot, a, b = span
    phrase = text[a:b]
    if slot == "name" and not home.is_name(phrase):
        if home.is_area(phrase):
            return [("area", a, b)]
        if home.is_floor(phrase):
            return [("floor", a, b)]
        words = _words(text, a, b)
        # "deadbolt lock" -> "deadbolt"; "my porch light" -> "porch light"
        for k in range(len(words) - 1, 0, -1):
            head, tail = (a, words[k - 1][1]), (words[k][0], b)
            tail_words = {norm(text[s:e]) for s, e in words[k:]}
            if home.is_name(text[head[0]:head[1]]) and tail_words <= DEVICE_WORDS:
                return [("name",) + head]
        for k in range(1, len(words)):
            lead = {norm(text[s:e]) for s, e in words[:k]}
            tail = (words[k][0], b)
            if home.is_name(text[tail[0]:tail[1]]):
                if lead <= LEADING_WORDS:
                    return [("name",) + tail]
                if home.is_area(text[a:words[k - 1][1]]):
                    return [("area", a, words[k - 1][1]), ("name",) + tail]
        # "gym light" with no such entity: the area "gym" and a device word ("bedroom
        # blinds": the area and the blind class)
        for k in range(len(words) - 1, 0, -1):
            rest = [norm(text[s:e]) for s, e in words[k:]]
            if home.is_area(text[a:words[k - 1][1]]) and set(rest) <= DEVICE_WORDS:
                area = ("area", a, words[k - 1][1])
                if len(rest) == 1 and rest[0] in COVER_CLASS_WORDS:
                    return [area, ("device_class", words[k][0], b)]
                return [area]
        return [span]
    if slot == "area" and not home.is_area(phrase):
        if home.is_name(phrase):
            return [("name", a, b)]
        if home.is_floor(phrase):
            return [("floor", a, b)]
    if slot == "floor" and not home.is_floor(phrase) and home.is_area(phrase):
        return [("area", a, b)]
    return [span]
