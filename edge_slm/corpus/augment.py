"""Augmentations that mirror real input, each keeping every slot span exact.

A `Draft` is a sentence under construction: its text and its slots as mutable
`[name, value, start, end, list_name]` rows. Every augmentation goes through `Draft.edit`, which
shifts or stretches the spans it touches and refuses edits that would cut a slot boundary or
empty a slot, so spans stay exact by construction (and the tests check it over many samples).
"""

from __future__ import annotations

import random
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from .numbers import number_digits, number_words
from .substitute import WORD, Neighbours, teacher_neighbours

SlotRow = List[Any]  # [name, value, start, end, list_name]
T = TypeVar("T")


class Draft:
    """A sentence and its slot spans, edited in place."""

    __slots__ = ("text", "slots")

    def __init__(self, text: str, slots: List[SlotRow]) -> None:
        self.text = text
        self.slots = slots

    def edit(self, start: int, end: int, new: str) -> bool:
        """Replace text[start:end] by `new`, keeping spans exact; False (no change) if unsafe."""
        delta = len(new) - (end - start)
        moves: List[Tuple[SlotRow, int, int]] = []
        for row in self.slots:
            s, e = row[2], row[3]
            if end <= s:  # wholly before the slot (an insertion at its start stays outside)
                moves.append((row, s + delta, e + delta))
            elif start >= e:  # wholly after
                continue
            elif s <= start and end <= e and not (start == end and start in (s, e)):
                if e + delta <= s:
                    return False  # would empty the slot
                moves.append((row, s, e + delta))
            else:
                return False  # straddles a boundary
        self.text = self.text[:start] + new + self.text[end:]
        for row, s, e in moves:
            row[2], row[3] = s, e
        return True

    def words(self) -> List[Tuple[int, int]]:
        """(start, end) of every whitespace-separated word."""
        return [m.span() for m in re.finditer(r"\S+", self.text)]


Augmenter = Callable[[Draft, random.Random, str], bool]

# ----------------------------------------------------------------------------- English tables
# How people wrap a request: [preamble] [politeness or question frame] REQUEST [trailer]
# [thanks]. `filler` composes them, so the model sees the wrappers in many combinations and
# learns that they never make a sentence a command (out-of-scope sentences get them too).
PREAMBLES_EN = (
    "sorry, ", "ok so ", "okay so ", "alright, ", "alright so ", "right, ", "oh and ",
    "and also ", "one more thing, ", "also, ", "oh, ", "hmm, ", "well, ", "so, ", "um, ",
    "uh, ", "i wasn't talking to you. ", "never mind that. ", "forget that. ", "ok. ",
    "quick question, ", "hi, ", "hello, ", "good morning, ", "hey there, ", "excuse me, ",
    "listen, ", "ok then ", "actually, ", "wait, ", "yes, ", "no, ", "and ", "then ",
    "sorry about that, ", "real quick, ", "before i forget, ", "while you're at it, ",
    "let's see, ", "yeah, ", "ok google no wait, ",
)
PREFIXES_EN = (
    "please ", "can you ", "could you ", "would you ", "can you please ", "could you please ",
    "will you ", "hey, ", "hey ", "um ", "uh ", "okay ", "ok ", "so ", "i want to ", "i'd like to ",
    "i need you to ", "go ahead and ", "quickly ", "yo ", "right, ", "now ", "kindly ",
    "tell home assistant to ", "ask home assistant to ", "i want you to ", "hey can you ",
    "please can you ", "can you go ahead and ", "would you mind ", "would you please ",
    "do me a favor and ", "be a dear and ", "i'd like you to ", "i need to ", "let's ",
    "can i ask you to ", "is it possible to ", "any chance you could ", "just ",
    "could you just ", "if you could ", "you can ", "i was wondering if you could ",
    "can you tell me ", "could you tell me ", "tell me ", "do you know ", "i want to know ",
    "i'd like to know ", "let me know ", "can you check ", "check ", "find out ",
)
SUFFIXES_EN = (
    " please", " thanks", " thank you", " for me", " now", " right now", " please thanks",
    " for me please", " asap", " ok", " thx", " if you can", " quickly",
    " when you get a chance", " if you don't mind", " if that's ok", " real quick",
    " for a bit", " for now", " please and thank you", " thanks a lot", " cheers",
    " thank you so much", " would you", " will you", " could you", " ok?", " right away",
    " immediately", " at once", " if possible", " before i forget", " for us", " again",
    " too", " as well", " okay thanks", " mate", " buddy", " thanks buddy", " when you can",
    " thanks so much", " that'd be great", " much appreciated", " ta", " before i go",
    " no rush",
)
WAKE_WORDS_EN = (
    "hey jarvis", "ok nabu", "okay nabu", "hey nabu", "alexa", "hey google", "ok google",
    "computer", "hey mycroft", "jarvis", "hey home assistant", "hey rhasspy", "hey siri",
    "home assistant", "hey computer", "porcupine", "hey assistant",
)
WAKE_JOINERS = (" ", ", ", ". ", " ,", "! ")

#: Speech-recognition confusions: word -> what a recognizer or a hurried typist writes instead.
HOMOPHONES_EN: Dict[str, Tuple[str, ...]] = {
    "to": ("two", "too", "2"), "for": ("four", "4", "fore"), "off": ("of", "of"),
    "on": ("an", "own"), "the": ("da", "tha", "a"), "lights": ("lites", "lice", "light"),
    "light": ("lite", "lights", "like"), "right": ("write",), "one": ("won",),
    "two": ("to", "too"), "four": ("for",), "eight": ("ate",), "whole": ("hole",),
    "there": ("their", "they're"), "their": ("there",), "hear": ("here",), "here": ("hear",),
    "weather": ("whether",), "whether": ("weather",), "blinds": ("blind",),
    "temperature": ("temp", "temprature", "tempreture"), "turn": ("tern", "torn"),
    "switch": ("swich", "which"), "fan": ("van", "fun"), "lamp": ("lamb",),
    "living": ("leaving",), "room": ("rum",), "kitchen": ("kitchin",), "set": ("sit", "said"),
    "what's": ("what is", "whats", "wats"), "is": ("his", "as"), "it": ("at",),
    "music": ("muzak", "music's"), "volume": ("valium",), "timer": ("time", "tymer"),
    "open": ("opened",), "close": ("clothes",), "garage": ("garbage",), "door": ("dour",),
    "minutes": ("minute",), "please": ("pleas", "plz", "pls"), "you": ("u", "ya"),
    "are": ("r",), "lock": ("look",), "heat": ("hit",),
}
#: Words a recognizer drops without changing the meaning ("on"/"off" carry it, so never them).
DROPPABLE_EN = frozenset({"the", "a", "an", "my", "to", "in", "of", "is", "are", "please",
                          "all", "our"})

#: (pattern, replacement) pairs applied in both directions by `contraction`.
CONTRACTIONS_EN: Tuple[Tuple[str, str], ...] = (
    ("what is", "what's"), ("it is", "it's"), ("do not", "don't"), ("i am", "i'm"),
    ("is not", "isn't"), ("are not", "aren't"), ("that is", "that's"), ("how is", "how's"),
    ("where is", "where's"), ("let us", "let's"), ("i would", "i'd"), ("who is", "who's"),
    ("there is", "there's"), ("we are", "we're"), ("cannot", "can't"), ("what's", "whats"),
    ("it's", "its"), ("don't", "dont"), ("i'm", "im"), ("how's", "hows"), ("let's", "lets"),
    ("i'd", "id"), ("what are", "what're"), ("you are", "you're"),
)
_CONTRACTION_RES = [
    (re.compile(rf"\b{re.escape(a)}\b"), b) for a, b in CONTRACTIONS_EN
] + [(re.compile(rf"(?<![\w']){re.escape(b)}(?![\w'])"), a) for a, b in CONTRACTIONS_EN]

_KEYBOARD = "qwertyuiop asdfghjkl zxcvbnm"
_NEIGHBOURS: Dict[str, str] = {}
for _row in _KEYBOARD.split():
    for _i, _ch in enumerate(_row):
        _NEIGHBOURS[_ch] = _row[max(0, _i - 1): _i] + _row[_i + 1: _i + 2]


def _pick(rng: random.Random, seq: Sequence[T]) -> T:
    return seq[int(rng.random() * len(seq))]


# ----------------------------------------------------------------------------- augmenters
def casing(d: Draft, rng: random.Random, lang: str) -> bool:
    """Sentence case, Title Case, UPPER or lower, as people and ASR engines write."""
    r = rng.random()
    if r < 0.6:
        new = d.text[:1].upper() + d.text[1:]
    elif r < 0.8:
        new = d.text.title()
    elif r < 0.9:
        new = d.text.upper()
    else:
        new = d.text.lower()
    if new == d.text or len(new) != len(d.text):
        return False
    d.text = new  # same length, spans unchanged
    return True


def punctuation(d: Draft, rng: random.Random, lang: str) -> bool:
    """Add or remove final punctuation."""
    stripped = d.text.rstrip(".?!")
    if stripped != d.text and rng.random() < 0.5:
        return d.edit(len(stripped), len(d.text), "")
    mark = _pick(rng, ("?", ".", "!", "?", ".", " ?", "...", "??"))
    return d.edit(len(d.text), len(d.text), mark)


def filler(d: Draft, rng: random.Random, lang: str) -> bool:
    """Wrappers around the request: a preamble, a politeness or question frame, a trailing
    clause or thanks, composed ("sorry, could you turn off the lights for me thanks")."""
    if not lang.startswith("en"):
        return False
    roll = rng.random()
    done = False
    if roll < 0.7:
        done = d.edit(0, 0, _pick(rng, PREFIXES_EN)) or done
    if roll >= 0.45:
        done = d.edit(len(d.text), len(d.text), _pick(rng, SUFFIXES_EN)) or done
    if rng.random() < 0.2:
        done = d.edit(0, 0, _pick(rng, PREAMBLES_EN)) or done
    return done


def wake_word(d: Draft, rng: random.Random, lang: str) -> bool:
    """A wake word left in the transcript."""
    return d.edit(0, 0, _pick(rng, WAKE_WORDS_EN) + _pick(rng, WAKE_JOINERS))


def asr_confusion(d: Draft, rng: random.Random, lang: str) -> bool:
    """Homophones, dropped words and merged words, as speech recognition produces them."""
    words = d.words()
    if not words:
        return False
    r = rng.random()
    if r < 0.5 and lang.startswith("en"):
        cands = [(s, e) for s, e in words if d.text[s:e].lower() in HOMOPHONES_EN]
        if cands:
            s, e = _pick(rng, cands)
            return d.edit(s, e, _pick(rng, HOMOPHONES_EN[d.text[s:e].lower()]))
    if r < 0.8 and len(words) > 2:
        cands = [(s, e) for s, e in words if d.text[s:e].lower() in DROPPABLE_EN]
        if cands:
            s, e = _pick(rng, cands)
            if e < len(d.text) and d.text[e] == " ":
                return d.edit(s, e + 1, "")
            return d.edit(s - 1 if s > 0 else s, e, "")
    # Merge two words, but never at a slot's edge: "offdriveway" would leave the area a piece
    # of a word, which no word-level tagger (nor a reader) can mark.
    edges = {row[2] for row in d.slots} | {row[3] for row in d.slots}
    gaps = [(words[i][1], words[i + 1][0]) for i in range(len(words) - 1)
            if words[i][1] not in edges and words[i + 1][0] not in edges]
    if gaps:
        gap_start, gap_end = _pick(rng, gaps)
        return d.edit(gap_start, gap_end, "")
    return False


def typo(d: Draft, rng: random.Random, lang: str) -> bool:
    """One keyboard slip in one word: swap, drop, double or hit a neighbouring key."""
    words = [(s, e) for s, e in d.words() if e - s >= 3]
    if not words:
        return False
    s, e = _pick(rng, words)
    i = s + int(rng.random() * (e - s - 1))
    ch, nxt = d.text[i], d.text[i + 1]
    op = rng.random()
    if op < 0.3 and ch != nxt:
        return d.edit(i, i + 2, nxt + ch)
    if op < 0.55:
        return d.edit(i, i + 1, "")
    if op < 0.75:
        return d.edit(i, i + 1, ch + ch)
    near = _NEIGHBOURS.get(ch.lower())
    if near:
        return d.edit(i, i + 1, _pick(rng, near))
    return False


def contraction(d: Draft, rng: random.Random, lang: str) -> bool:
    """Contract or expand ("what is" <-> "what's", "what's" -> "whats")."""
    if not lang.startswith("en"):
        return False
    found = []
    for pattern, repl in _CONTRACTION_RES:
        for m in pattern.finditer(d.text):
            found.append((m.start(), m.end(), repl))
    if not found:
        return False
    s, e, repl = _pick(rng, found)
    return d.edit(s, e, repl)


def number_format(d: Draft, rng: random.Random, lang: str) -> bool:
    """Numbers as digits or words, "50%" or "50 percent"."""
    cands = [row for row in d.slots if isinstance(row[1], (int, float))
             and not isinstance(row[1], bool)]
    if not cands:
        return False
    row = _pick(rng, cands)
    s, e = row[2], row[3]
    surface = d.text[s:e]
    after = d.text[e:]
    if lang.startswith("en") and after.startswith("%") and rng.random() < 0.5:
        return d.edit(e, e + 1, _pick(rng, (" percent", " per cent", " pct")))
    if lang.startswith("en") and after.startswith(" percent") and rng.random() < 0.5:
        return d.edit(e, e + len(" percent"), _pick(rng, ("%", " %")))
    number = _surface_number(surface, row, lang)
    if number is None:
        return False
    if surface.strip().replace(".", "", 1).isdigit():
        spellings = number_words(lang, number)
        if not spellings:
            return False
        if lang.startswith("en") and after.startswith("%"):
            d.edit(e, e + 1, " percent")  # "eighty%" is nobody's spelling
        return d.edit(s, e, _pick(rng, spellings))
    return d.edit(s, e, number_digits(number))


def _surface_number(surface: str, row: SlotRow, lang: str) -> Optional[float]:
    try:
        return float(surface) if "." in surface else int(surface)
    except ValueError:
        pass
    # Spelled-out: recover the number from the value (undo a range multiplier when present).
    value = row[1]
    if not isinstance(value, (int, float)):
        return None
    for cand in (value, -value):
        if surface in number_words(lang, cand) or surface in number_words(lang, int(cand)):
            return cand
    return None


#: Probability that a word of the sentence is swapped by `substitute` (at least one is).
SUBSTITUTE_P = 0.3


def _cased(new: str, old: str) -> str:
    """`new` in the case of the word it replaces."""
    if old.isupper() and len(old) > 1:
        return new.upper()
    if old[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def substitute(d: Draft, rng: random.Random, lang: str,
               table: Optional[Neighbours] = None) -> bool:
    """Swap each word for one of its nearest words among the teacher's embeddings
    (substitute.py) with probability SUBSTITUTE_P, at least one word; False when no word has
    neighbours (or the language is not English)."""
    if not lang.startswith("en"):
        return False
    table = table or teacher_neighbours()
    found = [(m.start(), m.end()) for m in WORD.finditer(d.text)]
    cands = [(s, e, table.of(d.text[s:e])) for s, e in found]
    cands = [c for c in cands if c[2]]
    if not cands:
        return False
    chosen = [c for c in cands if rng.random() < SUBSTITUTE_P] or [_pick(rng, cands)]
    changed = False
    for s, e, near in reversed(chosen):  # from the end: earlier spans stay where they are
        new = _pick(rng, near)
        changed = d.edit(s, e, _cased(new, d.text[s:e])) or changed
    return changed


#: Every augmenter by the flag it leaves in a record, with its default probability.
AUGMENTERS: Dict[str, Tuple[Augmenter, float]] = {
    # off unless asked for (the extra sentences only the teacher labels: substitute.py); first,
    # so that the noise below falls on the words it brings
    "substitute": (substitute, 0.0),
    "number": (number_format, 0.35),
    "contraction": (contraction, 0.3),
    "asr": (asr_confusion, 0.12),
    "typo": (typo, 0.15),
    "filler": (filler, 0.25),
    "wake_word": (wake_word, 0.07),
    "punctuation": (punctuation, 0.35),
    "casing": (casing, 0.3),
}


def augment(d: Draft, rng: random.Random, lang: str,
            probs: Optional[Dict[str, float]] = None) -> List[str]:
    """Apply each augmenter with its probability (in a fixed order); return the flags applied."""
    applied: List[str] = []
    for name, (fn, default_p) in AUGMENTERS.items():
        p = default_p if probs is None else probs.get(name, default_p)
        if p <= 0.0:
            continue  # no draw: an augmenter that is off leaves the others' draws alone
        if rng.random() < p and fn(d, rng, lang):
            applied.append(name)
    return applied
