"""From the model's outputs to the answer Home Assistant executes.

    intent probs ─► accepted? (1 - p(none) against the calibrated threshold, or a fixed
                   sentence of the templates whose intent is the model's best)
    tags ─► word spans ─► resolved against the home ─► the intent the home allows
         ─► values (states in the vocabulary of the named entity's domain)
    frame logits ─► the intent's best frame ─► its fixed slots + the satellite's area

The home's say (docs/labelling.md, "The home decides"):
- a `{name}` that is an entity of the user's home (not the example one shipped) with a known
  domain rules out intents that never take that domain ("start rover" is `HassVacuumStart`
  when Rover is a vacuum, `HassTurnOn` when it is a script; a timer's own name only when the
  model gives the entity's intent its share); whether the sentence is a command at all stays
  the model's call;
- an answer Home Assistant cannot carry out (`HassLightSet` with nothing to set) gives way to
  the next intent the model ranks;
- the user's own home adds names, areas and floors said word for word where the tagger saw
  none ("turn on play corner lights"), for intents that take them;
- a name replaces the frame's `domain`/`device_class` (Home Assistant matches the entity).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Collection, FrozenSet, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..home import Area, Entity, Floor, Inventory
from . import tidy
from .decode import decode_spans
from .known_home import KnownHome
from .labels import Frame, Labels
from .resolve import HomeNames, Span, resolve_spans
from .result import Alternative, ParseResult, Slot
from .values import NameTable, Value, ValueTables

#: Alternatives listed beside the best intent.
N_BEST = 3
PLACE_SLOTS = ("name", "area", "floor")
#: Fixed slots a name makes redundant (Home Assistant finds the entity by its name).
TARGET_SLOTS = ("domain", "device_class")
#: A command that names an entity of the user's own home, for an intent that takes the
#: entity's domain, is accepted unless "no intent" is this likely: chat and trivia seldom say
#: the exact name of one of the user's devices; commands to them do ("open the sliding door",
#: "what's the Los Angeles weather like"), and the model, which has never heard the name,
#: doubts them most.
NAMED_ENTITY_MAX_P_NONE = 0.5
#: ... when the name is specific: several words, or one word the model's vocabulary does not
#: hold whole ("jane", "clippy", "nattbord"). A word it holds whole is one the training
#: sentences say often ("thermostat", "tv", "printer", the weather entity "Home"), which chat
#: says too ("how much is a nest thermostat"): such a name may carry this many times the doubt
#: the threshold allows, p(no intent) up to NAMED_WORD_DOUBT x (1 - threshold)
#: (docs/labelling.md, "Naming the user's device").
NAMED_WORD_DOUBT = 5.0
#: A word for a kind of device ("lights", "blinds", "vacuum", "battery": the domains and device
#: classes of the bundle's own labels and values, as Home Assistant names them) is evidence of
#: a command too, weaker than a name of the user's home: for an intent that takes a device,
#: p(no intent) may be up to DEVICE_WORD_DOUBT x (1 - threshold). Real commands say such a word
#: far more often than other language does (61% of 730 commands people wrote; 1.5% of the
#: held-out out-of-scope sentences of the default corpus), and questions about a device in
#: unusual words are the commands the model doubts most ("which is the status of my vacuum",
#: "is the smoke alarm battery low").
DEVICE_WORD_DOUBT = NAMED_WORD_DOUBT
#: A name of the user's home said word for word, of a domain the model's best intent does not
#: take, moves the answer to the best intent that takes it when the model gives that intent
#: at least this share of the best one's probability ("turn on play corner lights": the
#: light Play Corner, not a song to play; "is everyone home" never names the weather Home).
#: A name of several words is specific enough on its own ("what is the outside temperature"
#: in a home with an "Outside Temperature" sensor asks for its state, not the weather).
HOME_NAME_MIN_RATIO = 0.01
#: Intents Home Assistant cannot carry out without one of these slots, said or fixed by the
#: frame: a brightness setting with no brightness, step, colour or colour temperature ("the
#: kitchen is too bright" is a remark about the room: docs/labelling.md, section 5).
NEEDS_ONE_OF = {"HassLightSet": ("brightness", "brightness_step", "color", "temperature"),
                "HassSetVolume": ("volume_level",), "HassClimateSetTemperature": ("temperature",),
                "HassFanSetSpeed": ("percentage",), "HassSetPosition": ("position",)}
#: Intents that give way when they cannot be carried out (the others are answered as read:
#: "set the volume" is still a volume setting, for a dialogue to complete).
GIVES_WAY = frozenset({"HassLightSet"})


class Answerer:
    """The decisions after the model, for one bundle's labels and value tables."""

    def __init__(self, labels: Labels, values: ValueTables,
                 common_words: Collection[str] = frozenset()) -> None:
        self.labels = labels
        self.values = values
        self.intents = labels.intents
        self.common_words = common_words
        """Words the model's vocabulary holds whole (lower case): not specific as a name."""
        self.phrases = {slot: frozenset(values.maps.get(slot, {})) | frozenset(
            values.vocab.get(slot, [])) for slot in set(values.maps) | set(values.vocab)
            if slot not in PLACE_SLOTS and not self._free(slot)}
        """Per closed-list slot: every phrase said for it (its values' surface forms)."""
        self.device_words = device_words(labels, values)
        """Words and phrases for kinds of devices (lower case, singular and plural)."""
        self._longest = max((len(w.split()) for w in self.device_words), default=0)
        self._query: Tuple[Optional[NameTable], Optional[KnownHome]] = (None, None)
        """The last query's names and their home (one reference: swapped whole)."""

    def answer(self, text: str, li: np.ndarray, lt: np.ndarray, lf: np.ndarray,
               offsets: Sequence[Tuple[int, int]], home: KnownHome,
               names: Optional[NameTable], strict: bool, area: Optional[str],
               temperature: float = 1.0, threshold: float = 0.0) -> ParseResult:
        """The parse of `text` from the model's intent, tag and frame logits, with the
        calibrated temperature and acceptance threshold."""
        ip = intent_probs(li, temperature)
        ranked: List[int] = np.argsort(-ip).tolist()
        commands = list(ranked)
        commands.remove(0)  # the intents, best first, without "no intent"
        p_none = float(ip[0])
        if ranked[0] == 0 and p_none >= NAMED_ENTITY_MAX_P_NONE:
            # rejected whatever the words name (no name of the home can save it): no slots
            return ParseResult(text, None, p_none, [], [Alternative(self.intents[i], float(
                ip[i])) for i in ranked[1:N_BEST + 1]], top_intent=self.intents[0])
        spans, tag_z = self._spans(text, lt, offsets)
        query = self._query
        if query[0] != names:  # built once for the pieces of a sentence, and its neighbours
            query = self._query = (copy.deepcopy(names), _query_home(names))
        extra = query[1]
        chosen = commands[0] if commands else 0
        said = self._place(text, spans, chosen, home, extra, strict)
        domain = self._named_domain(said, text, home) if home.user else None
        if domain is None and home.user and chosen != 0:
            before = chosen
            chosen, domain = self._switch_for_a_name(text, said, chosen, ip, commands, home)
            if domain is not None and chosen != before and self._takes(before, domain):
                commands.remove(before)  # it read the name's own words as its values
            said = self._place(text, spans, chosen, home, extra, strict)
            if domain is None:
                said, domain = self._name_over_values(text, said, chosen, home)
        allowed = [i for i in commands if self._takes(i, domain)] if domain else []
        if allowed and allowed[0] != chosen and (
                not self._own_name(chosen) or ip[allowed[0]] >= HOME_NAME_MIN_RATIO * ip[chosen]):
            chosen = allowed[0]
            said = self._place(text, spans, chosen, home, extra, strict)
        # a fixed sentence of the templates, said word for word, is taken at the model's
        # word when the model's best intent is that sentence's ("never mind")
        sure = ranked[0] != 0 and (1.0 - p_none >= threshold or self.values.fixed_intent(
            text) == self.intents[ranked[0]])
        accepted = chosen != 0 and (sure or p_none < self._doubt(
            text, said, chosen, domain, home, threshold))
        if (accepted and self.intents[chosen] in GIVES_WAY
                and not self._executable(chosen, said, lf)):
            # an answer Home Assistant cannot carry out ("the kitchen is too bright" as a
            # brightness setting with no brightness) gives way to the next intent, if that
            # one can be ("turn bedroom to 50%" with the 50 missed is no volume setting)
            after = next((i for i in commands if i != chosen
                          and (domain is None or self._takes(i, domain))), None)
            if after is not None:
                alt = self._place(text, spans, after, home, extra, strict)
                if self._executable(after, alt, lf):
                    chosen, said = after, alt
        best = chosen if ranked[0] != 0 or accepted else 0
        intent = self.intents[chosen] if accepted else None
        conf = float(ip[best])
        alternatives = [Alternative(self.intents[i], float(ip[i]))
                        for i in [i for i in ranked[:N_BEST + 1] if i != best][:N_BEST]]
        if not accepted and best != 0:
            alternatives = ([Alternative(self.intents[best], conf)] + alternatives)[:N_BEST]
        slots: List[Slot] = []
        if intent is not None:
            frame, f_conf = self._frame(intent, lf)
            slots = self._slots(text, said, offsets, tag_z, chosen, frame, f_conf,
                                home, extra, area)
        return ParseResult(text, intent, conf, slots, alternatives,
                           top_intent=self.intents[best])

    # -- spans and the home ------------------------------------------------------------------

    def _spans(self, text: str, lt: np.ndarray, offsets: Sequence[Tuple[int, int]]
               ) -> Tuple[List[Span], np.ndarray]:
        """The tagged spans, and the tag logits of the sentence's tokens."""
        tag_z = lt[1:1 + len(offsets)]
        if not len(offsets):
            return [], tag_z
        return decode_spans(tag_z.argmax(-1).tolist(), offsets, self.labels.tags, text), tag_z

    def _place(self, text: str, spans: List[Span], intent: int, home: KnownHome,
               extra: Optional[KnownHome], strict: bool) -> List[Span]:
        """The spans resolved for `intent` (its free-text slots left alone), then what the
        user's home adds."""
        name = self.intents[intent] or ""
        free = self.values.free_slots.get(name, [])
        names = home.names if extra is None else home.names.union(extra.names)
        takes_any = self.values.intent_slots.get(name)
        spans = self._places_that_are_values(text, spans, takes_any or [], names)
        out = resolve_spans(text, spans, names, strict=strict, free=free, names_win=home.user)
        out = tidy.for_intent(out, takes_any)
        out = tidy.timer_starts(text, out, takes_any)
        out = tidy.trim_closed(text, out, self.values.vocab)
        out = tidy.grow_closed(text, out, self.phrases)
        out = tidy.join_free(text, out, {s for s, _, _ in out if self._free(s)})
        if takes_any and "media_class" in takes_any:
            classes = self.values.vocab.get("media_class", [])
            out = tidy.extend_media_class(text, out, classes)
            out = tidy.split_media_class(text, out, classes)
        if takes_any and "search_query" in takes_any:
            out = tidy.search_after_play(text, out)
        # where a name the tagger missed is looked for: the user's own home (by the domains
        # the intent takes), then the names given for this query (no domains known: only
        # outside what the model read)
        finders = ([home] if home.user else []) + ([extra] if extra is not None else [])
        if not finders:
            return out
        takes = set(self.values.intent_slots.get(name, [])) - set(free)
        domains = self.values.name_domains.get(name, [])
        if "name" in takes and home.user:
            out = self._names_in_free_text(text, out, home, domains)
        have = {s[0] for s in out}
        for slot, blockers in (("name", {"name"}), ("area", {"area", "floor"}),
                               ("floor", {"area", "floor"})):
            if slot not in takes or have & blockers:
                continue
            for finder in finders:
                # a name only of a domain the intent takes: "is everyone home" does not name
                # the weather entity called Home; a name said word for word wins over free
                # text the model read there ("trader" of "my trader joes list")
                see_through = slot == "name" and finder is home
                taken = [(a, b) for sl, a, b in out if not (see_through and self._free(sl))]
                found = finder.find(slot, text, taken, domains if see_through else None)
                if found is not None:
                    out = _cut(text, out, found[1], found[2]) + [found]
                    out.sort(key=lambda s: s[1])
                    have.add(slot)
                    break
        return out

    def _places_that_are_values(self, text: str, spans: List[Span], takes: Sequence[str],
                                names: HomeNames) -> List[Span]:
        """A place the model read that the home has under no label (nor as a near miss), whose
        words are a value of one list slot the intent takes and nothing said fills, is that
        value: "turn down the stairs min brightness" with "min" read as a name sets the
        brightness to its minimum. Its words may also be a place the home has and that value,
        one after the other ("stairs min" read as one name: the area Stairs, brightness min).
        """
        def place(phrase: str) -> Optional[str]:
            for slot, known in (("name", names.is_name), ("area", names.is_area),
                                ("floor", names.is_floor)):
                if known(phrase):
                    return slot
            return None

        have = {s for s, _, _ in spans}
        out: List[Span] = []
        for span in spans:
            slot, a, b = span
            phrase = text[a:b]
            if slot not in PLACE_SLOTS or place(phrase) or any(
                    names.near_miss(p, phrase) for p in PLACE_SLOTS):
                out.append(span)
                continue
            found: List[Span] = []
            for rest, value in _splits(text, a, b):
                kind = place(text[rest[0]:rest[1]]) if rest[1] > rest[0] else None
                fits = [s for s in takes if s not in have
                        and text[value[0]:value[1]].casefold() in self.phrases.get(s, ())]
                if len(fits) == 1 and (kind or rest[1] <= rest[0]):
                    found = [(fits[0], *value)] + ([(kind, *rest)] if kind else [])
                    have.add(fits[0])
                    break
            out.extend(sorted(found, key=lambda s: s[1]) or [span])
        return out

    def _free(self, slot: str) -> bool:
        """Whether `slot` is free text (a search, an item), not a place, list or number."""
        return (slot not in PLACE_SLOTS and slot not in self.values.vocab
                and slot not in self.values.numeric and slot != "device_class")

    def _names_in_free_text(self, text: str, spans: List[Span], home: KnownHome,
                            domains: Sequence[str]) -> List[Span]:
        """A span of free text (a search, an item) whose words are exactly a name of the user's
        home, of a domain the intent takes, is that name ("add apples to my trader joes list":
        the list Trader Joes), when no name was tagged."""
        if any(s[0] == "name" for s in spans):
            return spans
        out = list(spans)
        for n, (slot, a, b) in enumerate(out):
            if slot in PLACE_SLOTS or slot in self.values.vocab or slot in self.values.numeric:
                continue
            canonical = home.canonical("name", text[a:b])
            if canonical and home.domain_of(canonical) in domains:
                out[n] = ("name", a, b)
                break
        return out

    def _switch_for_a_name(self, text: str, spans: List[Span], chosen: int, ip: np.ndarray,
                           commands: List[int], home: KnownHome) -> Tuple[int, Optional[str]]:
        """(intent, the named entity's domain) when the user's home has a name said word for
        word that `chosen` cannot take, or takes only by reading the name's own words as its
        values, but a likely enough intent can (see HOME_NAME_MIN_RATIO); else (`chosen`,
        None). `spans`: as resolved for `chosen` (a place the home lacks no longer hides a
        name)."""
        named = _home_name(text, spans, home)
        if named is None:
            return chosen, None
        found, domain = named
        said = text[found[1]:found[2]]
        ratio = 0.0 if len(said.split()) > 1 else HOME_NAME_MIN_RATIO
        if self._takes(chosen, domain):
            if not self._values_inside(spans, found):
                return chosen, None
            # every value `chosen` read is a word of the name ("turn off the kitchen white
            # light", a light called Kitchen White, is no colour to set): the name wins, when
            # the model gives the other intent its share ("set the lights to warm white", a
            # light called Warm White, still sets the colour)
            commands = [i for i in commands if i != chosen]
            ratio = HOME_NAME_MIN_RATIO
        for i in commands:
            if self._takes(i, domain) and ip[i] >= ratio * ip[chosen]:
                return i, domain
        return chosen, None

    def _values(self, spans: Sequence[Span]) -> List[Span]:
        """The spans that are values (a colour, a brightness: not places, classes or free
        text)."""
        return [s for s in spans if s[0] not in PLACE_SLOTS and s[0] not in TARGET_SLOTS
                and not self._free(s[0])]

    def _values_inside(self, spans: Sequence[Span], name: Span) -> bool:
        """Whether the spans hold values and every one lies inside the span of `name`."""
        values = self._values(spans)
        return bool(values) and all(name[1] <= a and b <= name[2] for _, a, b in values)

    def _name_over_values(self, text: str, said: List[Span], chosen: int, home: KnownHome
                          ) -> Tuple[List[Span], Optional[str]]:
        """(spans, the name's domain) with a name of the user's home said word for word, of a
        domain `chosen` takes, in place of values read inside it, when other values lie
        outside it ("turn the kitchen white light blue": the light Kitchen White, colour
        blue); else (`said`, None)."""
        named = _home_name(text, said, home)
        if named is None:
            return said, None
        found, domain = named
        values = self._values(said)
        inside = [v for v in values if found[1] <= v[1] and v[2] <= found[2]]
        if not self._takes(chosen, domain) or not inside or len(inside) == len(values):
            return said, None
        out = _cut(text, said, found[1], found[2]) + [found]
        out.sort(key=lambda s: s[1])
        return out, domain

    def _named_domain(self, said: List[Span], text: str, home: KnownHome) -> Optional[str]:
        """The domain of the home's entity the text names, if any."""
        for slot, a, b in said:
            if slot == "name":
                canonical = home.canonical("name", text[a:b])
                return home.domain_of(canonical) if canonical else None
        return None

    def _doubt(self, text: str, said: Sequence[Span], chosen: int, domain: Optional[str],
               home: KnownHome, threshold: float) -> float:
        """The p(no intent) below which `chosen`, short of the threshold, is still accepted
        for the evidence of a command the sentence holds (0 for none): the user's own device,
        named for an intent that takes its domain, NAMED_ENTITY_MAX_P_NONE for a specific name
        and NAMED_WORD_DOUBT times the threshold's own for a common word; a word for a kind of
        device, for an intent that takes a device, DEVICE_WORD_DOUBT times the threshold's."""
        doubt = 0.0
        if home.user and domain is not None and self._takes(chosen, domain):
            words = [text[a:b].split() for slot, a, b in said if slot == "name"]
            doubt = NAMED_ENTITY_MAX_P_NONE
            if words and len(words[0]) == 1 and words[0][0].casefold() in self.common_words:
                doubt = min(doubt, NAMED_WORD_DOUBT * (1.0 - threshold))
        kind = DEVICE_WORD_DOUBT * (1.0 - threshold)
        if (kind > doubt and self.intents[chosen] in self.values.name_domains
                and self._says_device(text)):
            doubt = kind
        return doubt

    def _says_device(self, text: str) -> bool:
        """Whether `text` says a word or phrase of `device_words`."""
        words = _WORD.findall(text.casefold())
        return any(" ".join(words[i:i + n]) in self.device_words
                   for n in range(1, self._longest + 1) for i in range(len(words) - n + 1))

    def _own_name(self, intent: int) -> bool:
        """Whether `intent`'s `{name}` is a name of its own (a timer's), not an entity."""
        return "name" in self.values.free_slots.get(self.intents[intent] or "", [])

    def _executable(self, intent: int, said: Sequence[Span], lf: np.ndarray) -> bool:
        """Whether Home Assistant can carry out `intent` with the said spans and its best
        frame's fixed slots: an intent of NEEDS_ONE_OF needs one of its slots."""
        need = NEEDS_ONE_OF.get(self.intents[intent] or "")
        if not need:
            return True
        frame, _ = self._frame(self.intents[intent] or "", lf)
        return any(s[0] in need for s in said) or any(k in need for k in frame.fixed_slots)

    def _takes(self, intent: int, domain: str) -> bool:
        """Whether `intent`'s `{name}` may be an entity of `domain`."""
        return domain in self.values.name_domains.get(self.intents[intent] or "", [])

    def _frame(self, intent: str, lf: np.ndarray) -> Tuple[Frame, float]:
        """The best of the frames `intent` takes, and its probability among them."""
        allowed = self.labels.frames_of(intent)
        if lf.size == 0:
            return self.labels.frames[0], 1.0
        z = [float(lf[i]) for i in allowed]
        top = max(z)
        k = z.index(top)
        return self.labels.frames[allowed[k]], 1.0 / sum(math.exp(v - top) for v in z)

    # -- slots -----------------------------------------------------------------------------

    def _slots(self, text: str, said: List[Span], offsets: Sequence[Tuple[int, int]],
               tag_z: np.ndarray, intent: int, frame: Frame,
               f_conf: float, home: KnownHome, extra: Optional[KnownHome],
               area: Optional[str]) -> List[Slot]:
        name = self.intents[intent] or ""
        free = set(self.values.free_slots.get(name, []))
        fixed = frame.fixed_slots
        entity_domain = None
        out: List[Slot] = []
        listed: List[Slot] = []  # valued from the slot's list once the domain is known
        # each token's probability of its tag (the slots' confidence)
        tag_conf: List[float] = (1.0 / np.exp(tag_z - tag_z.max(-1, keepdims=True)).sum(-1)
                                 ).tolist() if said else []
        for slot, a, b in said:
            raw = text[a:b]
            half = tidy.half_unit(text, slot, a, b) if slot in tidy.UNIT_SLOTS else None
            if half is not None:
                slot = half
            elif slot in tidy.UNIT_SLOTS and self.values.number(raw) is not None:
                slot = tidy.by_unit(text, slot, b)  # "half" an hour is 30 minutes
            if slot in PLACE_SLOTS and slot not in free:
                value: Optional[Value] = _canonical(slot, raw, home, extra)
                if slot == "name" and entity_domain is None:
                    entity_domain = home.domain_of(str(value))
            elif slot in free:
                value = raw.strip()
            elif half is not None:
                value = tidy.HALF_VALUE
            else:
                value = None  # after the entity's domain is known (below)
            if any(s.name == slot and s.raw.casefold() == raw.casefold() for s in out):
                continue  # said twice ("on on the first floor"): once is the slot
            inside = [k for k, (s, e) in enumerate(offsets) if s < b and e > a]
            c = sum(tag_conf[k] for k in inside) / len(inside) if inside else 0.0
            out.append(Slot(slot, raw if value is None else value, raw, a, b,
                            c if math.isfinite(c) else 0.0))
            if value is None:
                listed.append(out[-1])
        fixed_domain = fixed.get("domain")
        domain = (entity_domain or (str(fixed_domain) if fixed_domain else None)
                  or self._class_domain(out, fixed))
        for s in listed:
            s.value = self.values.value(s.name, s.raw, text, domain)
        have = {s.name for s in out}
        # a setting said ("to min brightness") stands for the frame's own ("brightness down")
        need = NEEDS_ONE_OF.get(name, ())
        settings = need if have & set(need) else ()
        for slot, fixed_value in fixed.items():
            if slot in have or (slot in TARGET_SLOTS and "name" in have) or slot in settings:
                continue
            out.append(Slot(slot, fixed_value, "", None, None, f_conf))
            have.add(slot)
        if "device_class" in have and "domain" not in have and "name" not in have:
            # Home Assistant's device-class templates always say the domain ("the bedroom
            # blinds": domain cover)
            class_domain = self._class_domain(out, {})
            if class_domain:
                out.append(Slot("domain", class_domain, "", None, None, f_conf))
        if frame.area_from_context and area and not have & set(PLACE_SLOTS):
            out.append(Slot("area", _canonical("area", area, home, extra), "", None, None,
                            f_conf))
        return out

    def _class_domain(self, said: List[Slot], fixed: Mapping[str, Value]) -> Optional[str]:
        """The domain a said or fixed device class belongs to (garage -> cover)."""
        for s in said:
            if s.name == "device_class":
                said_class = self.values.value("device_class", s.raw)
                return self.values.class_domains.get(str(said_class))
        dc = fixed.get("device_class")
        return self.values.class_domains.get(str(dc)) if dc is not None else None


_WORD = re.compile(r"[^\W_]+")


def intent_probs(li: np.ndarray, temperature: float) -> np.ndarray:
    """The intent softmax at `temperature`, in the model's own precision, as the answer reads
    it (a threshold fitted elsewhere on these numbers holds here to the last bit)."""
    z = li / temperature
    ip = np.exp(z - z.max())
    ip /= ip.sum()
    return ip


def device_words(labels: Labels, values: ValueTables) -> FrozenSet[str]:
    """The words and phrases for kinds of devices a bundle knows, lower case, each also with
    a plural "s": the domains and device classes of its frames, the device classes of its
    values (their surface forms, as the corpus says them) and the domains an intent's name may
    be."""
    kinds = set(values.class_domains) | set(values.vocab.get("device_class", []))
    kinds |= {d for domains in values.name_domains.values() for d in domains}
    for frame in labels.frames:
        kinds |= {str(v) for k, v in frame.fixed if k in TARGET_SLOTS and v}
    words = {" ".join(_WORD.findall(k.replace("_", " ").casefold())) for k in kinds}
    words.discard("")
    return frozenset(words | {w + "s" for w in words})


def _home_name(text: str, spans: Sequence[Span], home: KnownHome
               ) -> Optional[Tuple[Span, str]]:
    """(span, domain) of the longest name of the home said word for word outside the places
    in `spans`, when that entity has a domain; free text the model read ("play corner lights"
    as a song) and values do not hide a name."""
    found = home.find("name", text, [(a, b) for slot, a, b in spans if slot in PLACE_SLOTS])
    if found is None:
        return None
    domain = home.domain_of(home.canonical("name", text[found[1]:found[2]]) or "")
    return (found, domain) if domain else None


def _splits(text: str, a: int, b: int) -> List[Tuple[Tuple[int, int], Tuple[int, int]]]:
    """(rest, value) ways to read the words of text[a:b] as a value with the rest before or
    after it: the whole as the value (rest empty), then its last and first one or two words."""
    words = [(m.start() + a, m.end() + a) for m in re.finditer(r"\S+", text[a:b])]
    out = [((b, b), (a, b))] if words else []
    for k in (1, 2):
        if len(words) > k:
            out.append(((words[0][0], words[-k - 1][1]), (words[-k][0], b)))
            out.append(((words[k][0], b), (a, words[k - 1][1])))
    return out


def _cut(text: str, spans: List[Span], start: int, end: int) -> List[Span]:
    """`spans` without what overlaps start:end (a span starting before it keeps its head)."""
    out = []
    for slot, a, b in spans:
        if b <= start or a >= end:
            out.append((slot, a, b))
        elif a < start:
            head = text[a:start].rstrip()
            if head:
                out.append((slot, a, a + len(head)))
    return out


def _query_home(names: Optional[NameTable]) -> Optional[KnownHome]:
    """Names given for one query (a record's own home in evaluation) as a home of their own,
    its entities of no known domain; None when there are none."""
    if not names or not any(names.values()):
        return None

    def rows(kind: str) -> List[List[str]]:
        out = []
        for item in names.get(kind, []):
            row = [s for s in (item if isinstance(item, list) else [item])
                   if isinstance(s, str) and s.strip()]
            if row:
                out.append(row)
        return out
    return KnownHome(Inventory(floors=[Floor(r[0], tuple(r[1:])) for r in rows("floor")],
                               areas=[Area(r[0], tuple(r[1:])) for r in rows("area")],
                               entities=[Entity(r[0], "", aliases=tuple(r[1:]))
                                         for r in rows("name")]), user=True)


def _canonical(slot: str, raw: str, home: KnownHome,
               extra: Optional[KnownHome]) -> str:
    """The home's spelling of a name, area or floor (the words as said when unknown)."""
    own = extra.canonical(slot, raw) if extra is not None else None
    return own or home.canonical(slot, raw) or raw.strip()
