"""Slot values: the raw words a span covers turned into what Home Assistant expects.

- numbers from digits or words ("21.5", "twenty one", "seventy-five", "a hundred"), also
  inside percentages ("50%", "fifty percent") and temperatures ("20°", "20 degrees");
- list values from the bundle's value tables, learned from the corpus ("half" brightness ->
  50, "shut" -> closed, "warm white" -> 2700, "song" -> track);
- volume steps: a number is negative when the sentence turns the volume down;
- names, areas and floors: the home's own spelling (case, plurals, aliases, near misses);
- fixed sentences: the template sentences that have no slot ("never mind", "who made you"),
  each with its intent (`sentence_key` is the form they are compared in).

Everything here is table-driven from `values.json` and `home.json`, so a language is data.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

from .resolve import NearMiss, norm

Value = Union[int, float, str]
NameRow = Union[str, List[str]]
"""One name of a home: its spelling, or [spelling, alias, ...]."""
NameTable = Mapping[str, Sequence[NameRow]]
"""Names by kind ({"name"|"area"|"floor": [NameRow, ...]})."""

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

#: Share of a slot's values that are numbers for it to be parsed as a number.
NUMERIC_SHARE = 0.2
#: A closed list has at most this many phrases that say most of its values.
VOCAB_MAX = 400
#: ... and those phrases say this share of its values at least (augmentation misspells a few).
VOCAB_COVER = 0.9

#: Longest fixed sentence, in words, kept in `fixed_sentences` (longer ones are rare and the
#: model seldom doubts them).
FIXED_SENTENCE_WORDS = 5
#: Corpus sources whose sentences are templates (Home Assistant's, the project's, the user's).
TEMPLATE_SOURCES = ("ha", "ext", "custom")

_PUNCT = re.compile(r"[^\w'\s]+")
_NUM = re.compile(r"[-+]?\d+(?:[.,]\d+)?")
_TOKEN = re.compile(r"[^\s\-]+")


def _conforms(value: Any, kind: Any) -> bool:
    """Whether parsed JSON `value` is of the type `kind` (Dict[str, ...], List[...], Union,
    str, int, float; booleans are not numbers)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and _conforms(v, args[1]) for k, v in value.items())
    if origin is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    if origin is Union:
        return any(_conforms(value, a) for a in args)
    if kind in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, (int, float) if kind is float else kind)


def _as_number(x: float) -> Union[int, float]:
    return int(x) if float(x).is_integer() else round(float(x), 3)


@dataclass
class ValueTables:
    """What `values.json` holds: slot values, and what the corpus says of each intent's slots."""

    maps: Dict[str, Dict[str, Value]] = field(default_factory=dict)
    """Per slot: lower-cased surface text -> canonical value."""
    domain_maps: Dict[str, Dict[str, Dict[str, Value]]] = field(default_factory=dict)
    """Per slot and entity domain: text -> value where the domain decides ("open" is `open`
    for a cover, `on` for a binary sensor)."""
    numeric: List[str] = field(default_factory=list)
    """Slots whose value is a number."""
    number_words: Dict[str, int] = field(default_factory=lambda: dict(EN_NUMBER_WORDS))
    multipliers: Dict[str, int] = field(default_factory=lambda: dict(EN_MULTIPLIERS))
    point_words: List[str] = field(default_factory=lambda: list(EN_POINT))
    noise_words: List[str] = field(default_factory=lambda: list(EN_NOISE))
    down_words: List[str] = field(default_factory=list)
    """Words that make a numeric volume step negative ("turn it down by 10")."""
    name_domains: Dict[str, List[str]] = field(default_factory=dict)
    """Per intent: the domains of the entities its `{name}` may be (Home Assistant's
    `requires_context` domains, as sampled)."""
    free_slots: Dict[str, List[str]] = field(default_factory=dict)
    """Per intent: name, area or floor slots that are free text, not places of the home (a
    timer's name)."""
    intent_slots: Dict[str, List[str]] = field(default_factory=dict)
    """Per intent: the slots said in its sentences."""
    class_domains: Dict[str, str] = field(default_factory=dict)
    """Device class -> the domain it belongs to (garage -> cover)."""
    vocab: Dict[str, List[str]] = field(default_factory=dict)
    """Per slot of a closed list (states, device and media classes, colours): every phrase
    said for it (free text such as a search or an item has none)."""
    fixed_sentences: Dict[str, str] = field(default_factory=dict)
    """Sentences of the training templates that have no slot (`sentence_key` form) -> their
    intent, when no other intent or out-of-scope sentence says the same words."""

    def to_dict(self) -> Dict[str, Any]:
        return {"maps": self.maps, "domain_maps": self.domain_maps, "numeric": self.numeric,
                "number_words": self.number_words, "multipliers": self.multipliers,
                "point_words": self.point_words, "noise_words": self.noise_words,
                "down_words": self.down_words, "name_domains": self.name_domains,
                "free_slots": self.free_slots, "intent_slots": self.intent_slots,
                "class_domains": self.class_domains, "vocab": self.vocab,
                "fixed_sentences": self.fixed_sentences}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ValueTables":
        """Read `values.json` (unknown keys ignored); ValueError when it is not an object or
        a table is not of its field's type."""
        if not isinstance(data, dict):
            raise ValueError("values.json must be an object")
        kinds = typing.get_type_hints(cls)
        tables = {k: v for k, v in data.items() if k in set(cls().to_dict())}
        for key, value in tables.items():
            if not _conforms(value, kinds[key]):
                raise ValueError(f"values.json: {key!r} is not a table of the right shape")
        return cls(**tables)

    @classmethod
    def from_records(cls, records: Iterable[Dict[str, Any]], min_count: int = 2,
                     wildcards: Iterable[str] = ()) -> "ValueTables":
        """Learn the tables from corpus records (slot text -> value where they differ).
        `wildcards`: the slot lists that are free text (a slot filled from one is never a
        closed list, however few phrases the corpus happened to say)."""
        learner = _Learner(wildcards)
        for rec in records:
            learner.add(rec)
        return learner.tables(min_count)

    # -- parsing ---------------------------------------------------------------------------

    def fixed_intent(self, text: str) -> Optional[str]:
        """The intent of `text` when it is one of the fixed sentences, word for word."""
        return self.fixed_sentences.get(sentence_key(text)) if self.fixed_sentences else None

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

    def value(self, slot: str, raw: str, sentence: str = "",
              domain: Optional[str] = None) -> Value:
        """The canonical value of `raw` said for `slot` (the raw text when nothing applies);
        `domain`, the domain of the entity it is said of, where known."""
        key = norm(raw)
        stripped = " ".join(w for w in key.split() if w not in ("the", "my", "a", "an")) or key
        tables = [self.domain_maps.get(slot, {}).get(domain or "", {}), self.maps.get(slot, {})]
        for table in tables:
            for k in (key, stripped):
                if k in table:
                    return table[k]
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


class _Learner:
    """Counts over corpus records, turned into `ValueTables`."""

    def __init__(self, wildcards: Iterable[str] = ()) -> None:
        self.wildcards = frozenset(wildcards)
        self.free_text: Dict[str, int] = {}
        self.counts: Dict[str, Dict[str, Dict[str, int]]] = {}
        self.by_domain: Dict[Tuple[str, str], Dict[str, Dict[str, int]]] = {}
        self.numeric_votes: Dict[str, List[int]] = {}
        self.name_domains: Dict[str, Dict[str, int]] = {}
        self.slot_lists: Dict[Tuple[str, str], List[int]] = {}
        self.class_domains: Dict[str, Dict[str, int]] = {}
        self.step_words: Dict[str, List[int]] = {}
        self.step_records = [0, 0]
        self.phrases: Dict[str, Dict[str, int]] = {}
        self.fixed: Dict[str, Set[str]] = {}
        self.out_of_scope: Set[str] = set()

    def add(self, rec: Dict[str, Any]) -> None:
        intent = rec.get("intent")
        self._fixed_sentence(rec)
        fixed = rec.get("fixed_slots") or {}
        domain = rec.get("name_domain") or fixed.get("domain")
        if intent and rec.get("name_domain"):
            per = self.name_domains.setdefault(intent, {})
            per[rec["name_domain"]] = per.get(rec["name_domain"], 0) + 1
        dc = fixed.get("device_class")
        for s in rec.get("slots") or []:
            name, text, value = s["name"], norm(s["text"]), s.get("value")
            if intent:
                votes = self.slot_lists.setdefault((intent, name), [0, 0])
                votes[0 if s.get("list") in (None, "fixed") else 1] += 1
            if name == "device_class":
                dc = value
            if (s.get("list") or name) in self.wildcards:
                self.free_text[name] = self.free_text.get(name, 0) + 1
            if value is None or name in ("name", "area", "floor"):
                continue
            v = str(value)
            is_num = _NUM.fullmatch(v) is not None
            self.numeric_votes.setdefault(name, [0, 0])[0 if is_num else 1] += 1
            per_slot = self.phrases.setdefault(name, {})
            per_slot[text] = per_slot.get(text, 0) + 1
            if name == "volume_step" and is_num and float(v) != 0:
                self._step_sentence(rec.get("text", ""), float(v) < 0)
            if v.casefold() != text:
                per_text = self.counts.setdefault(name, {}).setdefault(text, {})
                per_text[v] = per_text.get(v, 0) + 1
            if domain and not is_num:
                per_text = self.by_domain.setdefault((name, domain), {}).setdefault(text, {})
                per_text[v] = per_text.get(v, 0) + 1
        if dc and domain and isinstance(dc, str):
            per = self.class_domains.setdefault(dc, {})
            per[domain] = per.get(domain, 0) + 1

    def _fixed_sentence(self, rec: Dict[str, Any]) -> None:
        """Count the record's sentence (before noise) if its template has no slot."""
        key = sentence_key(str(rec.get("base") or rec.get("text") or ""))
        if not rec.get("intent"):
            self.out_of_scope.add(key)
        elif (rec.get("source") in TEMPLATE_SOURCES and not rec.get("slots")
              and 0 < len(key.split()) <= FIXED_SENTENCE_WORDS):
            self.fixed.setdefault(key, set()).add(rec["intent"])

    def _step_sentence(self, text: str, down: bool) -> None:
        self.step_records[down] += 1
        for w in set(norm(text).split()):
            self.step_words.setdefault(w, [0, 0])[down] += 1

    def tables(self, min_count: int) -> ValueTables:
        out = ValueTables()
        maps: Dict[str, Dict[str, Value]] = {}
        for name, table in self.counts.items():
            for text, votes in table.items():
                best, n = max(votes.items(), key=lambda kv: kv[1])
                if n < min_count or _NUM.fullmatch(text) or self._spells(out, text, best):
                    continue  # numbers are parsed; their sign depends on the sentence
                maps.setdefault(name, {})[text] = _typed(best)
        out.maps = maps
        for (name, domain), table in self.by_domain.items():
            for text, votes in table.items():
                best, n = max(votes.items(), key=lambda kv: kv[1])
                value = _typed(best)
                # only where the domain changes what the words mean ("open": `open` for a
                # cover where the words alone say `on`)
                differs = maps.get(name, {}).get(text, text) != value
                if n >= min_count and differs:
                    out.domain_maps.setdefault(name, {}).setdefault(domain, {})[text] = value
        # a slot is numeric when numbers are a good share of its values: a volume step is
        # "up" or "down" as often as it is 20 (words the tables map come first)
        out.numeric = sorted(n for n, (num, other) in self.numeric_votes.items()
                             if num >= max(min_count, NUMERIC_SHARE * (num + other)))
        out.down_words = self._down_words(maps)
        out.name_domains = {i: sorted(d for d, n in per.items() if n >= min_count)
                            for i, per in sorted(self.name_domains.items())}
        intent_slots: Dict[str, List[str]] = {}
        free: Dict[str, List[str]] = {}
        for (intent, slot), (own, other) in sorted(self.slot_lists.items()):
            if own + other >= min_count:
                intent_slots.setdefault(intent, []).append(slot)
            if slot in ("name", "area", "floor") and other > own:
                free.setdefault(intent, []).append(slot)
        out.intent_slots, out.free_slots = intent_slots, free
        out.class_domains = {dc: max(per.items(), key=lambda kv: kv[1])[0]
                             for dc, per in sorted(self.class_domains.items())}
        out.vocab = self._vocab(min_count, set(out.numeric))
        out.fixed_sentences = {k: next(iter(v)) for k, v in sorted(self.fixed.items())
                               if len(v) == 1 and k not in self.out_of_scope}
        return out

    def _vocab(self, min_count: int, numeric: set) -> Dict[str, List[str]]:
        """The phrases of closed-list slots: a few hundred at most, which say nearly every
        value of the slot (free text says new words all the time)."""
        out: Dict[str, List[str]] = {}
        for name, counts in self.phrases.items():
            common = {t: n for t, n in counts.items() if n >= min_count}
            total = sum(counts.values())
            if (name not in numeric and self.free_text.get(name, 0) < total / 2
                    and 0 < len(common) <= VOCAB_MAX
                    and sum(common.values()) >= VOCAB_COVER * total):
                out[name] = sorted(common)
        return out

    @staticmethod
    def _spells(tables: ValueTables, text: str, value: str) -> bool:
        """Whether `text` says the number `value` in words (then the sign is the sentence's)."""
        if not _NUM.fullmatch(value):
            return False
        n = tables.number(text)
        return n is not None and abs(float(n)) == abs(float(value))

    def _down_words(self, maps: Dict[str, Dict[str, Value]]) -> List[str]:
        """Words of sentences with a negative volume step and (almost) never a positive one,
        and the phrases whose own value is "down"."""
        up_n, down_n = self.step_records
        words = {w for w, (up, down) in self.step_words.items()
                 if down >= max(3, 0.02 * down_n) and up <= 0.002 * max(up_n, 1)}
        words |= {t for t, v in maps.get("volume_step", {}).items() if v == "down"}
        return sorted(words)


def sentence_key(text: str) -> str:
    """The form fixed sentences are compared in: case-folded, punctuation gone, single
    spaces ("Never mind!" -> "never mind")."""
    return norm(_PUNCT.sub(" ", text.replace("’", "'")))


def _typed(best: str) -> Value:
    return _as_number(float(best.replace(",", "."))) if _NUM.fullmatch(best) else best


class HomeIndex:
    """A home's names with their own spelling: exact, plural/singular, alias, near miss."""

    def __init__(self, names: NameTable) -> None:
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
