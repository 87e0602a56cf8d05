"""Slot values: the raw words a span covers turned into what Home Assistant expects.

- numbers from digits or words ("21.5", "twenty one", "seventy-five", "a hundred"), also
  inside percentages ("50%", "fifty percent") and temperatures ("20°", "20 degrees");
- list values from the bundle's value tables, learned from the corpus ("half" brightness ->
  50, "shut" -> closed, "warm white" -> 2700, "song" -> track);
- volume steps: a number is negative when the sentence turns the volume down;
- names, areas and floors: the home's own spelling (case, plurals, aliases, near misses).

Everything here is table-driven from `values.json` and `home.json`, so a language is data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Union

from .resolve import NearMiss, norm

Value = Union[int, float, str]

#: English number words (the converter writes these into values.json; other languages ship
#: their own).
EN_NUMBER_WORDS: Dict[str, int] = {
    **{w: i for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen".split())},
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90, "a": 1, "an": 1, "oh": 0,
}
EN_MULTIPLIERS: Dict[str, int] = {"hundred": 100, "thousand": 1000}
EN_POINT = ("point", "dot", "comma")
EN_NOISE = ("and", "percent", "per", "cent", "degrees", "degree", "celsius", "fahrenheit",
            "kelvin", "%", "°", "°c", "°f", "c", "f", "k")

_NUM = re.compile(r"[-+]?\d+(?:[.,]\d+)?")
_TOKEN = re.compile(r"[^\s\-]+")


def _as_number(x: float) -> Union[int, float]:
    return int(x) if float(x).is_integer() else round(float(x), 3)


@dataclass
class ValueTables:
    """What `values.json` holds."""

    maps: Dict[str, Dict[str, Value]] = field(default_factory=dict)
    """Per slot: lower-cased surface text -> canonical value."""
    numeric: List[str] = field(default_factory=list)
    """Slots whose value is a number."""
    number_words: Dict[str, int] = field(default_factory=lambda: dict(EN_NUMBER_WORDS))
    multipliers: Dict[str, int] = field(default_factory=lambda: dict(EN_MULTIPLIERS))
    point_words: List[str] = field(default_factory=lambda: list(EN_POINT))
    noise_words: List[str] = field(default_factory=lambda: list(EN_NOISE))
    down_words: List[str] = field(default_factory=list)
    """Words that make a numeric volume step negative ("turn it down by 10")."""

    def to_dict(self) -> Dict[str, Any]:
        return {"maps": self.maps, "numeric": self.numeric, "number_words": self.number_words,
                "multipliers": self.multipliers, "point_words": self.point_words,
                "noise_words": self.noise_words, "down_words": self.down_words}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ValueTables":
        known = set(cls().to_dict())
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_records(cls, records: Iterable[Dict[str, Any]],
                     min_count: int = 2) -> "ValueTables":
        """Learn the tables from corpus records (slot text -> value where they differ)."""
        counts: Dict[str, Dict[str, Dict[str, int]]] = {}
        numeric_votes: Dict[str, List[int]] = {}
        for rec in records:
            for s in rec.get("slots") or []:
                name, text, value = s["name"], norm(s["text"]), s.get("value")
                if value is None or name in ("name", "area", "floor"):
                    continue
                v = str(value)
                is_num = _NUM.fullmatch(v) is not None
                numeric_votes.setdefault(name, [0, 0])[0 if is_num else 1] += 1
                if v.casefold() != text:
                    per = counts.setdefault(name, {}).setdefault(text, {})
                    per[v] = per.get(v, 0) + 1
        maps: Dict[str, Dict[str, Value]] = {}
        down: set = set()
        for name, table in counts.items():
            for text, votes in table.items():
                best, n = max(votes.items(), key=lambda kv: kv[1])
                if n < min_count or _NUM.fullmatch(text):
                    continue  # "29" -> "-29" depends on the sentence, not the words
                val: Value = best
                if _NUM.fullmatch(best):
                    val = _as_number(float(best.replace(",", ".")))
                maps.setdefault(name, {})[text] = val
                if name == "volume_step" and best == "down":
                    down.add(text)
        numeric = sorted(n for n, (num, other) in numeric_votes.items() if num > other)
        return cls(maps=maps, numeric=numeric, down_words=sorted(down))

    # -- parsing ---------------------------------------------------------------------------

    def number(self, text: str) -> Optional[Union[int, float]]:
        """A number said in digits or words, or None."""
        t = norm(text).replace("°", " ° ").replace("%", " % ")
        m = _NUM.search(t)
        if m:
            return _as_number(float(m.group(0).replace(",", ".")))
        total, current, seen = 0, 0, False
        frac: Optional[List[int]] = None
        for tok in _TOKEN.findall(t):
            if tok in self.point_words:
                frac = []
                continue
            if tok in self.number_words:
                n = self.number_words[tok]
                if frac is not None:
                    frac.append(n)
                elif tok in ("a", "an") and seen:
                    continue
                else:
                    current += n
                seen = True
            elif tok in self.multipliers:
                current = max(current, 1) * self.multipliers[tok]
                if self.multipliers[tok] >= 1000:
                    total, current = total + current, 0
                seen = True
            elif tok in self.noise_words or tok == "the":
                continue
            else:
                return None
        if not seen:
            return None
        value = float(total + current)
        if frac:
            value += float("0." + "".join(str(d) for d in frac))
        return _as_number(value)

    def value(self, slot: str, raw: str, sentence: str = "") -> Value:
        """The canonical value of `raw` said for `slot` (the raw text when nothing applies)."""
        key = norm(raw)
        table = self.maps.get(slot, {})
        if key in table:
            return table[key]
        stripped = " ".join(w for w in key.split() if w not in ("the", "my", "a", "an")) or key
        if stripped in table:
            return table[stripped]
        if slot in self.numeric:
            n = self.number(key)
            if n is not None:
                if slot == "volume_step" and self._says_down(sentence):
                    n = -abs(n)
                return n
        return raw.strip()

    def _says_down(self, sentence: str) -> bool:
        words = norm(sentence)
        return any(re.search(rf"\b{re.escape(w)}\b", words) for w in self.down_words)


class HomeIndex:
    """A home's names with their own spelling: exact, plural/singular, alias, near miss."""

    def __init__(self, names: Dict[str, List[str]]) -> None:
        self._by_slot: Dict[str, Dict[str, str]] = {}
        for slot, items in names.items():
            table: Dict[str, str] = {}
            for item in items:
                canonical, *aliases = item if isinstance(item, list) else [item]
                for spoken in [canonical, *aliases]:
                    key = norm(spoken)
                    table.setdefault(key, canonical)
                    table.setdefault(key[:-1] if key.endswith("s") else key + "s", canonical)
            self._by_slot[slot] = table
        self._near = {slot: NearMiss(table) for slot, table in self._by_slot.items()}

    def canonical(self, slot: str, raw: str, cutoff: float = 0.85) -> Optional[str]:
        """The home's spelling of `raw` as a `slot`, or None when the home has no such."""
        table = self._by_slot.get(slot)
        if not table:
            return None
        key = norm(raw)
        for k in (key, " ".join(w for w in key.split() if w not in ("the", "my", "our"))):
            if k in table:
                return table[k]
        close = self._near[slot].find(key, cutoff)
        return table[close] if close else None
