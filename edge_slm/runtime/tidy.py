"""Spans tidied for the intent they answer: what the intent's own slots and lists allow.

The tagger reads words; the intent knows which slots it takes and the lists some of them come
from (`values.json`: `intent_slots`, `vocab`). After resolution against the home:

- a slot the intent never takes is a misreading: `hours` for a timer status is its
  `start_hours` (the twin the intent takes), anything else is dropped;
- a span of a closed list ends where its phrase does ("off on the first floor": the state is
  "off"), and goes on to the end of a phrase of its list that the word or two after it
  complete ("day" + "light": the colour temperature "day light");
- two spans of one free-text slot a word apart are one (no intent takes an item twice:
  "Make" + "Doctor's Appointment" is "Make A Doctor's Appointment");
- a search that starts with a media class is that class and the search ("play the movie
  Inception": media_class movie, search Inception);
- a number's duration slot is the unit said after it ("1 hour 5 minutes");
- a half said after a whole number and before its unit ("2 and a half hours", "84 and a 1/2
  minutes"), or alone before its unit ("a half hour", "half an hour", "a 1/2 minute"), is 30
  of the next smaller unit, as the timer templates say it (minutes 30, seconds 30), never a
  second "hours" or "minutes";
- a duration that names the timer ("from the 1 hour timer") is its start_ slot, when the intent
  takes one;
- a media class followed by the words that complete a longer class ("tv" + "show Breaking
  Bad") is that class;
- a search is what follows "play", article included ("play The Office": "The Office", as
  Home Assistant's "play {search_query}" reads it); an article alone is no search.

Every function takes and returns (slot, start, end) spans in text order.
"""

from __future__ import annotations

import itertools
import re
from typing import Collection, Dict, Iterable, List, Mapping, Optional, Sequence

from .resolve import Span, norm

#: Duration units said after a number decide which timer slot the number fills.
UNITS = {"hour": "hours", "hours": "hours", "hr": "hours", "hrs": "hours",
         "minute": "minutes", "minutes": "minutes", "min": "minutes", "mins": "minutes",
         "second": "seconds", "seconds": "seconds", "sec": "seconds", "secs": "seconds"}
UNIT_SLOTS = frozenset(["hours", "minutes", "seconds", "start_hours", "start_minutes",
                        "start_seconds"])
#: A half of a unit, as it is said.
HALVES = frozenset(["half", "1/2", "½"])
#: What may sit between a number and its unit ("1 and a half hours", "5-minute").
_TO_UNIT = re.compile(r"(?:[\s-]+and\s+(?:an?\s+)?(?:quarter|%s))?[\s-]*([A-Za-z]+)"
                      % "|".join(re.escape(h) for h in sorted(HALVES)))
_WORDS = re.compile(r"\S+")
#: What such a half is worth in the next smaller unit.
HALF_VALUE = 30
_SMALLER = {"hours": "minutes", "minutes": "seconds"}
#: Before a half that follows a whole number: "and", "and a", "and an".
_AND_A = re.compile(r"\band\s+(?:an?\s+)?$", re.IGNORECASE)
#: After a half said alone: its unit ("half an hour", "a half hour", "1/2-minute").
_A_UNIT = re.compile(r"[\s-]+(?:an?\s+)?([A-Za-z]+)")
#: Words a closed-list span may grow by to finish a phrase of its list.
GROW_WORDS = 2
#: Most words between two pieces of one free-text span ("make" + "a" + "doctor's ...").
JOIN_GAP = 1
#: Words a search may start with before a media class ("play the artist Queen").
_ARTICLES = frozenset(["the", "a", "an", "some", "my"])
_START = "start_"
#: After a number and its unit: the timer it names ("1 hour timer", "5-minute timer").
_NAMES_TIMER = re.compile(r"[\s-]*timer\b", re.IGNORECASE)


#: Slots of a level in percent, one per intent that takes one: a level the tagger read as
#: another intent's is the chosen intent's own.
LEVEL_SLOTS = ("brightness", "volume_level", "percentage", "position")


def for_intent(spans: Sequence[Span], takes: Optional[Iterable[str]]) -> List[Span]:
    """Spans of slots `takes` (the intent's); a duration slot becomes its start_ twin when
    only that one is taken, a level in percent (LEVEL_SLOTS) the intent's own level. All pass
    when the intent's slots are not known."""
    if not takes:
        return list(spans)
    taken = set(takes)
    levels = [s for s in LEVEL_SLOTS if s in taken]
    out = []
    for slot, a, b in spans:
        if slot not in taken:
            twin = slot[len(_START):] if slot.startswith(_START) else _START + slot
            if slot in UNIT_SLOTS and twin in taken:
                slot = twin
            elif slot in LEVEL_SLOTS and len(levels) == 1:
                slot = levels[0]  # "turn bedroom to 50%" set as a light: 50 is its brightness
            else:
                continue
        out.append((slot, a, b))
    return out


def timer_starts(text: str, spans: Sequence[Span], takes: Optional[Iterable[str]]
                 ) -> List[Span]:
    """A duration said as the timer's name ("remove 30 seconds from the 1 hour timer") is
    the start_ slot, when the intent takes it."""
    taken = set(takes or ())
    out = []
    for slot, a, b in spans:
        if slot in UNIT_SLOTS and not slot.startswith(_START) and _START + slot in taken:
            m = _TO_UNIT.match(text, b)
            if m and m.group(1).casefold() in UNITS and _NAMES_TIMER.match(text, m.end()):
                slot = _START + slot
        out.append((slot, a, b))
    return out


def by_unit(text: str, slot: str, end: int) -> str:
    """A duration slot named by the unit said after its number (`start_` kept)."""
    m = _TO_UNIT.match(text, end)
    unit = UNITS.get(m.group(1).casefold()) if m else None
    if unit is None:
        return slot
    return (_START if slot.startswith(_START) else "") + unit


def half_unit(text: str, slot: str, start: int, end: int) -> Optional[str]:
    """The slot of a half said after "N and (a)" and before a unit ("2 and a half hours",
    "70 and 1/2 hours"), or alone before one ("a half hour", "half an hour"): the next smaller
    unit (minutes, seconds; `start_` kept). None when the span is no such half ("a minute and
    a half" says no unit after it: the tagger's slot stands)."""
    if norm(text[start:end]) not in HALVES:
        return None
    m = (_TO_UNIT if _AND_A.search(text, 0, start) else _A_UNIT).match(text, end)
    smaller = _SMALLER.get(UNITS.get(m.group(1).casefold(), "")) if m else None
    if smaller is None:
        return None
    return (_START if slot.startswith(_START) else "") + smaller


def trim_closed(text: str, spans: Sequence[Span], vocab: Dict[str, List[str]]) -> List[Span]:
    """Spans of closed-list slots cut back to the longest known phrase they start with (kept
    whole when none)."""
    out = []
    for slot, a, b in spans:
        known = vocab.get(slot)
        if known and norm(text[a:b]) not in known:
            words = [(m.start() + a, m.end() + a) for m in _WORDS.finditer(text[a:b])]
            for k in range(len(words) - 1, 0, -1):
                if norm(text[a:words[k - 1][1]]) in known:
                    b = words[k - 1][1]
                    break
        out.append((slot, a, b))
    return out


def grow_closed(text: str, spans: Sequence[Span], phrases: Mapping[str, Collection[str]]
                ) -> List[Span]:
    """Spans of closed-list slots that are no phrase of their list, grown by the fewest of the
    next `GROW_WORDS` words (none inside another span) that make one ("day" + "light")."""
    out = []
    for slot, a, b in spans:
        known = phrases.get(slot)
        if known and norm(text[a:b]) not in known:
            for m in itertools.islice(_WORDS.finditer(text, b), GROW_WORDS):
                if any(x < m.end() and m.start() < y for _, x, y in spans):
                    break
                if norm(text[a:m.end()]) in known:
                    b = m.end()
                    break
        out.append((slot, a, b))
    return out


def join_free(text: str, spans: Sequence[Span], free: Collection[str]) -> List[Span]:
    """Spans of one free-text slot (`free`: an item, a message, a search) one word apart, as
    one span (a gap of more words may be the sentence's own: "apples to my trader joes")."""
    out: List[Span] = []
    for slot, a, b in spans:
        if out and slot in free and out[-1][0] == slot \
                and len(text[out[-1][2]:a].split()) <= JOIN_GAP:
            out[-1] = (slot, out[-1][1], b)
        else:
            out.append((slot, a, b))
    return out


def split_media_class(text: str, spans: Sequence[Span], classes: Sequence[str]) -> List[Span]:
    """A search that starts with a media class phrase (after "the") split into the class and
    the search, or one said right before it ("play the song Bohemian Rhapsody"); only when
    no media class was tagged."""
    if not classes or any(s[0] == "media_class" for s in spans):
        return list(spans)
    known = {tuple(c.split()) for c in classes}
    out: List[Span] = []
    for slot, a, b in spans:
        before = _class_before(text, a, known, out[-1][2] if out else 0)
        if slot == "search_query" and before is not None:
            out += [("media_class",) + before, (slot, a, b)]
        elif slot == "search_query":
            words = [(m.start() + a, m.end() + a) for m in _WORDS.finditer(text[a:b])]
            said = [norm(text[s:e]) for s, e in words]
            skip = 1 if said and said[0] in _ARTICLES else 0
            for n in (2, 1):
                if len(said) > skip + n and tuple(said[skip:skip + n]) in known:
                    cut = words[skip + n - 1][1]
                    out += [("media_class", words[skip][0], cut),
                            ("search_query", words[skip + n][0], b)]
                    break
            else:
                out.append((slot, a, b))
        else:
            out.append((slot, a, b))
    return out


def extend_media_class(text: str, spans: Sequence[Span], classes: Sequence[str]
                       ) -> List[Span]:
    """A tagged media class that, with the first words of the search after it, is a longer
    known class ("tv" then "show Breaking Bad": the class "tv show", the search "Breaking
    Bad")."""
    known = {tuple(c.split()) for c in classes}
    out = list(spans)
    for i in range(len(out) - 1):
        (cs, ca, cb), (qs, qa, qb) = out[i], out[i + 1]
        if cs != "media_class" or qs != "search_query" or text[cb:qa].strip():
            continue
        cls = tuple(norm(text[ca:cb]).split())
        words = [(m.start() + qa, m.end() + qa) for m in _WORDS.finditer(text[qa:qb])]
        for n in (2, 1):
            if len(words) > n and cls + tuple(norm(text[s:e]) for s, e in words[:n]) in known:
                out[i] = (cs, ca, words[n - 1][1])
                out[i + 1] = (qs, words[n][0], qb)
                break
    return out


_PLAY_ARTICLE = re.compile(r"\bplay\s+(the|a|an)\s+$", re.IGNORECASE)


def search_after_play(text: str, spans: Sequence[Span]) -> List[Span]:
    """Searches as Home Assistant's `play {search_query}` reads them: the article after
    "play" belongs to the search ("play The Office"); a search that is only articles ("the"
    before a media class) is dropped."""
    out: List[Span] = []
    for slot, a, b in spans:
        if slot == "search_query":
            if all(norm(w) in _ARTICLES for w in text[a:b].split()):
                continue
            m = _PLAY_ARTICLE.search(text[:a])
            if m and not (out and out[-1][2] > m.start(1)):
                a = m.start(1)
        out.append((slot, a, b))
    return out


def _class_before(text: str, start: int, known: set, floor: int) -> Optional[tuple]:
    """(start, end) of a media class phrase said just before `start` (after `floor`), or
    None."""
    words = [(m.start() + floor, m.end() + floor) for m in _WORDS.finditer(text[floor:start])]
    said = [norm(text[s:e]) for s, e in words]
    for n in (2, 1):
        if len(said) >= n and tuple(said[-n:]) in known:
            return (words[-n][0], words[-1][1])
    return None
