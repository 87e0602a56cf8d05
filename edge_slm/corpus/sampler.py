"""The random walk: one template in, one sentence with exact slot spans out.

Unlike hassil's own sampler (which enumerates in template order and keeps no spans), every
call picks alternatives, optionals, permutation orders and slot values at random, and records
where each slot's text lands. Whitespace is normalized afterwards with the spans mapped along.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from hassil.intents import RangeSlotList, SlotList, TextSlotList, WildcardSlotList

from ..errors import TemplateError
from .augment import Draft, SlotRow
from .fillers import fillers_for
from .inventory import Entity, Inventory
from .names import NAMED_LIKE_PEOPLE, synth_name
from .numbers import Number, number_digits, number_words
from .templates import Compiler, Node, Template, TemplateSet

#: Probability that a range slot is spelled out in words rather than digits.
WORDS_PROB = 0.25
#: Probability that an area, floor or entity is called by one of its aliases.
ALIAS_PROB = 0.3
#: Probability that a `{name}` is a synthetic never-seen name (see names.py).
SYNTHETIC_NAME_PROB = 0.3
#: The same for people, places, lists and robots (`names.NAMED_LIKE_PEOPLE`).
NAMED_SYNTHETIC_PROB = 0.5

#: Domains a bare `{name}` may be, for templates without requires_context, by intent.
INTENT_NAME_DOMAINS: Dict[str, Tuple[str, ...]] = {
    "HassTurnOn": ("light", "switch", "fan", "input_boolean", "media_player", "scene", "script",
                   "climate"),
    "HassTurnOff": ("light", "switch", "fan", "input_boolean", "media_player", "climate"),
    "HassGetState": ("light", "switch", "fan", "cover", "lock", "media_player", "climate",
                     "sensor", "binary_sensor", "vacuum", "valve", "person", "input_boolean",
                     "lawn_mower"),
    "HassLightSet": ("light",),
    "HassClimateGetTemperature": ("climate",),  # a sensor's value is HassGetState's
    "HassClimateSetTemperature": ("climate",),
    "HassGetWeather": ("weather",),
}
#: Used when an intent is not in INTENT_NAME_DOMAINS.
DEFAULT_NAME_DOMAINS = ("light", "switch", "fan", "media_player")

_WS = re.compile(r"\s+")
Fill = Callable[[str, str], Tuple[Union[str, Node], Any]]
"""A walk's filler of `{list}` references: (list name, slot name) -> (text or node, value)."""
SlotSaid = Tuple[str, Any, int, int, str]
"""A slot a walk said: (name, value, start, end, list name); the value of a list's entry is
hassil's `value_out` (any YAML value), a range's a number."""

#: Walks of one template tried before a stuttering sentence is kept anyway.
MAX_RETRIES = 4
_STUTTER_LISTS = frozenset({"name", "area", "floor"})
#: Slots that Home Assistant's templates always tag where the words are said ("is the door
#: {lock_states:state}"), with the lists that spell them. A template of ours that fixes such
#: a slot (`slots: {state: off}`) and says the word literally gets the span too, so the same
#: word is never tagged in one template and plain text in another.
SURFACE_LISTS = {
    "state": ("on_off_states", "cover_states", "lock_states", "bs_open_states",
              "bs_occupancy_states", "y_st_occupancy"),
    "device_class": ("cover_classes", "x_oo_media_class"),
    "volume_step": ("volume_step",),  # "turn the volume up": Home Assistant's {volume_step}
    "media_class": ("media_class",),  # "play the artist Queen": {media_class}
}
_SURFACE_SAMPLES = 40
_NEXT_WORD = re.compile(r"\s+(\w+)")


def _stutters(draft: Draft) -> bool:
    """True when a name, area or floor is followed by its own last word ("ground floor floor",
    "desk lamp lamps"): the template adds a word the value already has, which makes an
    unnatural sentence and an ambiguous span."""
    text = draft.text
    for row in draft.slots:
        if row[4] not in _STUTTER_LISTS:
            continue
        m = _NEXT_WORD.match(text, row[3])
        if m is None:
            continue
        last = text[row[2]:row[3]].rsplit(None, 1)[-1].lower().rstrip("s")
        if last == m.group(1).lower().rstrip("s"):
            return True
    return False


def _plural_variants(phrase: str) -> Tuple[str, ...]:
    p = " ".join(phrase.casefold().split())
    return (p, p[:-1]) if p.endswith("s") else (p, p + "s")


@dataclass
class Sampled:
    """A sentence fresh from a template, before augmentation."""

    draft: Draft
    """Text and slot spans."""
    context: Dict[str, Any] = field(default_factory=dict)
    """Values the satellite supplies (e.g. its area for "in here")."""
    name_domain: Optional[str] = None
    """Domain of the entity `{name}` was filled with (None without a `{name}`)."""


class WalkContext:
    """Mutable state of one walk: the text so far, the slots said, the dice, the filler."""

    __slots__ = ("parts", "pos", "slots", "rng", "fill")

    def __init__(self, rng: random.Random, fill: Fill) -> None:
        self.parts: List[str] = []
        self.pos = 0
        self.slots: List[SlotSaid] = []
        self.rng = rng
        self.fill = fill


class Sampler:
    """Samples sentences from the templates of one language and one home inventory."""

    def __init__(self, tset: TemplateSet, inventory: Inventory,
                 words_prob: float = WORDS_PROB, alias_prob: float = ALIAS_PROB,
                 synthetic_name_prob: float = SYNTHETIC_NAME_PROB) -> None:
        self.lang = tset.lang
        self.synthetic_name_prob = synthetic_name_prob
        self._known_names = {s.casefold() for e in inventory.entities for s in e.spoken}
        self.inventory = inventory
        self.words_prob = words_prob
        self.alias_prob = alias_prob
        self._lists: Dict[str, SlotList] = dict(tset.intents.slot_lists)
        self._value_nodes: Dict[int, List[Tuple[Node, Any]]] = {}
        self._range_numbers: Dict[int, List[Number]] = {}
        self._pools: Dict[str, List[Entity]] = {}
        self._areas = list(inventory.areas)
        self._floors = list(inventory.floors)
        self._rules = dict(tset.intents.expansion_rules)
        self._surfaces = self._surface_forms()

    # -- entity pools -------------------------------------------------------------------
    def name_pool(self, tpl: Template) -> List[Entity]:
        """Entities a template's `{name}` may be (requires/excludes context honoured)."""
        if tpl.id in self._pools:
            return self._pools[tpl.id]
        domains = tpl.requires_context.get("domain")
        if isinstance(domains, str):
            domains = [domains]
        if not domains:
            domains = INTENT_NAME_DOMAINS.get(tpl.intent, DEFAULT_NAME_DOMAINS)
        excluded = tpl.excludes_context.get("domain") or []
        if isinstance(excluded, str):
            excluded = [excluded]
        pool = [e for e in self.inventory.entities_in(domains) if e.domain not in excluded]
        self._pools[tpl.id] = pool
        return pool

    def usable(self, tpl: Template) -> bool:
        """False when the inventory cannot fill the template (e.g. no entity of its domain)."""
        if "name" in tpl.list_names and not self.name_pool(tpl):
            return False
        if "floor" in tpl.list_names and not self._floors:
            return False
        return True

    # -- one sample ---------------------------------------------------------------------
    def sample(self, tpl: Template, rng: random.Random) -> Sampled:
        """Walk `tpl` once (again, up to a few times, when the result stutters)."""
        for _ in range(MAX_RETRIES):
            sampled = self._sample_once(tpl, rng)
            if not _stutters(sampled.draft) and not self._shadows_a_name(sampled.draft):
                return sampled
        return sampled

    def _shadows_a_name(self, draft: Draft) -> bool:
        """True when an area or floor and the one or two words after it are a device of the
        home ("turn on the laundry lights" in a home with a "laundry light"): whether that
        is the device or the room's lights is a coin toss, so such a sentence is not drawn."""
        text = draft.text
        for row in draft.slots:
            if row[0] not in ("area", "floor"):
                continue
            end = row[3]
            for _ in range(2):
                m = _NEXT_WORD.match(text, end)
                if m is None:
                    break
                end = m.end()
                if any(v in self._known_names for v in _plural_variants(text[row[2]:end])):
                    return True
        return False

    def _sample_once(self, tpl: Template, rng: random.Random) -> Sampled:
        entity: Optional[Entity] = None
        if "name" in tpl.list_names:
            pool = self.name_pool(tpl)
            if not pool:
                raise TemplateError(f"{tpl.id}: no entity in the inventory fits {{name}}")
            if "area" in tpl.list_names:
                located = [e for e in pool if e.area]
                pool = located or pool
            entity = pool[int(rng.random() * len(pool))]
        context: Dict[str, Any] = {}
        area_ctx = tpl.requires_context.get("area")
        if isinstance(area_ctx, dict) and area_ctx.get("slot"):
            context["area"] = self._areas[int(rng.random() * len(self._areas))].name

        def fill(list_name: str, slot_name: str) -> Tuple[Union[str, Node], Any]:
            return self._fill(tpl, list_name, slot_name, rng, entity)

        ctx = WalkContext(rng, fill)
        tpl.node.walk(ctx)
        text, slots = _normalize("".join(ctx.parts), ctx.slots)
        draft = Draft(text, slots)
        if "%" in text and self.lang.startswith("en"):
            _spell_percent(draft)
        for slot_name, value in tpl.fixed_slots.items():
            self._attach_fixed(draft, slot_name, value)
        return Sampled(draft, context, entity.domain if entity is not None else None)

    # -- fixed slots said in words --------------------------------------------------------
    def _surface_forms(self) -> Dict[str, Dict[str, List[re.Pattern]]]:
        """slot -> value -> patterns of the phrases that say it (longest first)."""
        rng = random.Random(0)
        out: Dict[str, Dict[str, List[re.Pattern]]] = {}
        for slot_name, list_names in SURFACE_LISTS.items():
            phrases: Dict[str, set] = {}
            for list_name in list_names:
                slot_list = self._lists.get(list_name)
                if not isinstance(slot_list, TextSlotList):
                    continue
                for node, value in self._values(slot_list):
                    found = phrases.setdefault(str(value), set())
                    for _ in range(_SURFACE_SAMPLES):
                        phrase = walk_text(node, rng, {}).strip().casefold()
                        if phrase:
                            found.add(phrase)
            out[slot_name] = {
                value: [re.compile(r"(?<!\w)" + re.escape(p).replace(r"\ ", r"\s+") + r"(?!\w)",
                                   re.IGNORECASE)
                        for p in sorted(found, key=len, reverse=True)]
                for value, found in phrases.items()}
        return out

    def _attach_fixed(self, draft: Draft, slot_name: str, value: Any) -> None:
        """Give a fixed slot its span where the sentence says it in words."""
        patterns = self._surfaces.get(slot_name, {}).get(str(value))
        if not patterns or any(row[0] == slot_name for row in draft.slots):
            return
        for pattern in patterns:
            for m in pattern.finditer(draft.text):
                a, b = m.span()
                if all(b <= row[2] or a >= row[3] for row in draft.slots):
                    draft.slots.append([slot_name, value, a, b, "fixed"])
                    draft.slots.sort(key=lambda row: row[2])
                    return

    def _fill(self, tpl: Template, list_name: str, slot_name: str, rng: random.Random,
              entity: Optional[Entity]) -> Tuple[Union[str, Node], Any]:
        if list_name == "name" and entity is not None:
            p_synthetic = self.synthetic_name_prob
            if entity.domain in NAMED_LIKE_PEOPLE:  # few in any inventory, many in homes
                p_synthetic = max(p_synthetic, NAMED_SYNTHETIC_PROB)
            if rng.random() < p_synthetic:
                name = synth_name(rng, entity.domain)
                if name.casefold() not in self._known_names:  # never another entity's name
                    return name, name
            return self._spoken(entity.name, entity.aliases, rng)
        if list_name == "area":
            area = None
            if entity is not None and entity.area:
                area = self.inventory.area(entity.area)
            if area is None:
                area = self._areas[int(rng.random() * len(self._areas))]
            return self._spoken(area.name, area.aliases, rng)
        if list_name == "floor":
            floor = self._floors[int(rng.random() * len(self._floors))]
            return self._spoken(floor.name, floor.aliases, rng)
        slot_list = tpl.local_lists.get(list_name) or self._lists.get(list_name)
        if slot_list is None:
            raise TemplateError(f"{tpl.id}: unknown slot list {{{list_name}}}")
        if isinstance(slot_list, RangeSlotList):
            return self._range(slot_list, rng)
        if isinstance(slot_list, WildcardSlotList):
            fillers = fillers_for(self.lang, list_name, slot_name)
            text = fillers[int(rng.random() * len(fillers))]
            return text, text
        if isinstance(slot_list, TextSlotList):
            values = self._values(slot_list)
            node, value = values[int(rng.random() * len(values))]
            return node, value
        raise TemplateError(f"{tpl.id}: unsupported slot list type for {{{list_name}}}")

    def _spoken(self, name: str, aliases: Sequence[str], rng: random.Random) -> Tuple[str, str]:
        if aliases and rng.random() < self.alias_prob:
            return aliases[int(rng.random() * len(aliases))], name
        return name, name

    def _values(self, slot_list: TextSlotList) -> List[Tuple[Node, Any]]:
        key = id(slot_list)
        if key not in self._value_nodes:
            compiled = []
            for val in slot_list.values:
                node = Compiler(self._rules).compile(val.text_in)
                value = val.value_out
                if value is None:
                    value = getattr(val.text_in, "text", None)
                compiled.append((node, value))
            if not compiled:
                raise TemplateError(f"slot list {slot_list.name!r} has no values")
            self._value_nodes[key] = compiled
        return self._value_nodes[key]

    def _range(self, rlist: RangeSlotList, rng: random.Random) -> Tuple[str, Number]:
        key = id(rlist)
        numbers = self._range_numbers.get(key)
        if numbers is None:
            numbers = self._range_numbers[key] = list(rlist.get_numbers())
        number = numbers[int(rng.random() * len(numbers))]
        value = number * rlist.multiplier if rlist.multiplier else number
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = number_digits(number)
        if rlist.words and (not rlist.digits or rng.random() < self.words_prob):
            spellings = number_words(rlist.words_language or self.lang, number)
            if spellings:
                text = spellings[int(rng.random() * len(spellings))]
        elif not rlist.digits:
            raise TemplateError(f"range list {rlist.name!r} allows neither digits nor words")
        return text, value


def _spell_percent(draft: Draft) -> None:
    """ "eighty%" -> "eighty percent": a number in words never takes the sign."""
    for row in draft.slots:
        e = row[3]
        if draft.text[e:e + 1] == "%" and not draft.text[row[2]:e][-1:].isdigit():
            draft.edit(e, e + 1, " percent")


def _normalize(raw: str, slots: List[SlotSaid]) -> Tuple[str, List[SlotRow]]:
    """Collapse whitespace runs to one space and strip, mapping slot spans along."""
    runs = [m.span() for m in _WS.finditer(raw)]
    n = len(raw)
    keep: List[Tuple[int, int, int]] = []  # (start, end, chars kept)
    for s, e in runs:
        kept = 0 if s == 0 or e == n else 1
        if e - s != kept or raw[s] != " ":
            keep.append((s, e, kept))
    if not keep:
        text = raw
        mapped = [[name, value, s, e, ln] for name, value, s, e, ln in slots]
    else:
        out: List[str] = []
        last = 0
        for s, e, kept in keep:
            out.append(raw[last:s])
            out.append(" " * kept)
            last = e
        out.append(raw[last:])
        text = "".join(out)

        def new_pos(p: int) -> int:
            removed = 0
            for s, e, kept in keep:
                if s + kept >= p:
                    break
                removed += min(p, e) - (s + kept)
            return p - removed

        mapped = [[name, value, new_pos(s), new_pos(e), ln] for name, value, s, e, ln in slots]
    rows: List[SlotRow] = []
    for row in mapped:
        s, e = row[2], row[3]
        while s < e and text[s] == " ":
            s += 1
        while e > s and text[e - 1] == " ":
            e -= 1
        if e > s:
            row[2], row[3] = s, e
            rows.append(row)
    return text, rows


def walk_text(node: Node, rng: random.Random, lists: Mapping[str, Sequence[str]]) -> str:
    """Walk a template whose lists are plain strings; return the normalized text only."""
    def fill(list_name: str, slot_name: str) -> Tuple[str, str]:
        values = lists[list_name]
        value = values[int(rng.random() * len(values))]
        return value, value

    ctx = WalkContext(rng, fill)
    node.walk(ctx)
    return " ".join("".join(ctx.parts).split())
