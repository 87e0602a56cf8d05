"""Several commands in one sentence: "turn off the kitchen lights and lock the front door".

The model reads one command at a time. A sentence with joining words ("and", "then", "and
then", "also", "plus", a comma or a semicolon) is also read as its pieces: every way of
cutting it at those joins (at most `MAX_JOINS` of them) is scored, and a cut qualifies only
when every piece is a command and one of them at least a command the engine answers on its
own (above the bundle's threshold), or every one of them nearly so (`PAIR_THRESHOLD`); the
finest qualifying cut wins, then the surest (a piece that is itself two commands is one cut
short). "add salt and pepper to my list" stays one command: "pepper to my list" is not one
on its own. (The pieces need not be as sure as the whole: a whole that reads "hoover please
and switch on the porch light" as one sure command is no evidence against its pieces, and a
floor under them lost 1.6 points of the held-out compounds without saving a single
command.)

Beside a piece the engine answers on its own, another piece is a command at a lower bar
(`PIECE_THRESHOLD`, passed in as `parse_piece`): said together with a clear command, "and
will it rain tomorrow" is addressed to the home, although alone it is as short and plain as
chat. Greetings, thanks and "never mind" (`CHAT_INTENTS`) are what a preamble sounds like
("before I forget, ...", "hey there, ..."), so they take the bundle's own threshold.

A piece that only makes sense with a neighbour's words borrows them, and its slots still point
at the words of the sentence:
- the head of the piece before it (its words before its first said slot: "turn off the
  lights and the fan" reads "turn off" + "the fan");
- the tail of the piece after it (its words after its last said slot: "add eggs and remove
  cheese from my shopping list" reads "add eggs" + "from my shopping list").
A piece read with borrowed words must still say a slot of its own: "go ahead and the garage
is too bright" is one command, not "go ahead" + "is too bright" beside it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .result import Command, ParseResult, Slot

#: Where a sentence may join two commands (a match is the joining words and the spaces).
JOINS = re.compile(r"\s*(?:[,;]\s*(?:and\s+then|and\s+also|and|then|also|plus)?|"
                   r"\s(?:and\s+then|and\s+also|and|then|also|plus))\s+", re.IGNORECASE)
#: First words after a join that go on with a number, not a new command.
CONTINUES = re.compile(r"(?:\d|a\b|an\b|half|quarter|one|two|three|four|five|six|seven|"
                       r"eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
                       r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
                       r"seventy|eighty|ninety|hundred)", re.IGNORECASE)
#: Words joined by "and" that make one phrase ("each and every light", "rock and roll").
PAIRS = {"each every", "on off", "off on", "up down", "back forth", "in out", "black white",
         "rock roll", "more more", "over over", "now then", "safe sound", "peace quiet"}
#: Joins considered (2^MAX_JOINS cuts at most; each distinct piece is parsed once).
MAX_JOINS = 4
#: Least 1 - p(no intent) of a piece beside one the engine answers on its own.
PIECE_THRESHOLD = 0.9
#: Pieces that are each a command at least this sure qualify together without one the engine
#: answers on its own: "what's switched on and then what's the dew point tonight", two
#: questions each a hair under the bundle's threshold (0.995 and 0.998), is two commands,
#: where the whole is none.
PAIR_THRESHOLD = 0.99
#: Intents a piece is only at the bundle's own threshold (what preambles sound like).
CHAT_INTENTS = frozenset({"HassRespond", "HassNevermind"})

#: (start, end) spans of the sentence a piece's text is made of, joined by single spaces.
Pieces = Tuple[Tuple[int, int], ...]
#: Parses a piece's text (the engine's one-command parse, with its home and area).
ParseOne = Callable[[str], ParseResult]


def joins(text: str) -> List[Tuple[int, int]]:
    """The (start, end) of each place the sentence may join two commands, in order: not
    where a number goes on ("1 hour and 30 minutes", "an hour and a half"), and not before or
    after a single word ("hey, turn on the lights"), nor at a bare comma after two words
    ("hey nabu, turn on the lights")."""
    out = []
    for m in JOINS.finditer(text):
        before, after = text[:m.start()].split(), text[m.end():].split()
        pair = f"{before[-1] if before else ''} {after[0] if after else ''}".lower()
        # a bare comma also ends a greeting or wake word ("hey nabu, ..."); a semicolon
        # does not ("hoover now; skip this song")
        least = 3 if m.group().strip() == "," else 2
        if len(after) > 1 and len(before) >= least and not CONTINUES.match(after[0]) \
                and pair not in PAIRS:
            out.append((m.start(), m.end()))
    return out[:MAX_JOINS]


def split(text: str, whole: ParseResult, parse_one: ParseOne,
          parse_piece: Optional[ParseOne] = None) -> List[Command]:
    """The commands of `text` in spoken order: its pieces' when a cut wins, else the whole
    sentence's (one command, or none when it is not recognized). `parse_one` answers at the
    bundle's threshold, `parse_piece` (default: the same) at the bar of a piece beside one
    that passes it."""
    found = joins(text)
    best: Optional[List[Command]] = None
    best_score: Tuple[int, float] = (0, -1.0)
    if found:
        cache: Dict[Pieces, Optional[Command]] = {}
        # commands at the bundle's threshold (the same as `cache` without a lower bar)
        sure: Dict[Pieces, Optional[Command]] = cache if parse_piece is None else {}
        piece = parse_one if parse_piece is None else _lower_bar(parse_one, parse_piece)
        for cut in _cuts(len(found)):
            spans = _segments(text, found, cut)
            read = _read(text, spans, piece, cache)
            if read is None:
                continue
            commands = [c for c, _ in read]
            if not any(_command(text, key, parse_one, sure) for _, key in read) and not all(
                    c.confidence >= PAIR_THRESHOLD for c in commands):
                continue
            score = (len(commands), min(c.confidence for c in commands))
            if score > best_score:  # the finest cut, then the surest
                best, best_score = commands, score
    if best is not None:
        return best
    return [Command(whole.intent, whole.confidence, whole.slots)] if whole.intent else []


def _lower_bar(parse_one: ParseOne, parse_piece: ParseOne) -> ParseOne:
    """`parse_piece`, except that a chat intent takes the bundle's threshold (`parse_one`)."""
    def parse(words: str) -> ParseResult:
        res = parse_piece(words)
        return parse_one(words) if res.intent in CHAT_INTENTS else res
    return parse


def _cuts(n: int) -> List[Tuple[int, ...]]:
    """Every non-empty subset of the n joins, fewest pieces first."""
    out: List[Tuple[int, ...]] = []
    for k in range(1, n + 1):
        out += list(itertools.combinations(range(n), k))
    return out


def _segments(text: str, found: Sequence[Tuple[int, int]],
              cut: Tuple[int, ...]) -> List[Tuple[int, int]]:
    spans, start = [], 0
    for i in cut:
        spans.append((start, found[i][0]))
        start = found[i][1]
    spans.append((start, len(text)))
    return spans


def _read(text: str, spans: List[Tuple[int, int]], parse_one: ParseOne,
          cache: Dict[Pieces, Optional[Command]]) -> Optional[List[Tuple[Command, Pieces]]]:
    """The command of every segment, with the words it was read from (borrowing a neighbour's
    head or tail where the segment alone is not one, and then saying a slot of its own), or
    None when one of them is no command."""
    plain = [_command(text, ((a, b),), parse_one, cache) for a, b in spans]
    out: List[Tuple[Command, Pieces]] = []
    for i, (a, b) in enumerate(spans):
        key: Pieces = ((a, b),)
        cmd = plain[i]
        before = plain[i - 1] if i > 0 else None
        after = plain[i + 1] if i + 1 < len(spans) else None
        if cmd is None and before is not None:
            head = _head(before, spans[i - 1])
            if head is not None:
                key = (head, (a, b))
                cmd = _own(_command(text, key, parse_one, cache), a, b)
        if cmd is None and after is not None:
            tail = _tail(after, spans[i + 1])
            if tail is not None:
                key = ((a, b), tail)
                cmd = _own(_command(text, key, parse_one, cache), a, b)
        if cmd is None:
            return None
        out.append((cmd, key))
    return out


def _own(cmd: Optional[Command], start: int, end: int) -> Optional[Command]:
    """The command, when it says a slot in the words between start and end (its own)."""
    if cmd is not None and any(s.start is not None and s.end is not None
                               and start <= s.start and s.end <= end for s in cmd.slots):
        return cmd
    return None


def _head(cmd: Command, span: Tuple[int, int]) -> Optional[Tuple[int, int]]:
    """A piece's words before its first said slot (its verb), if it has any."""
    said = [s.start for s in cmd.slots if s.start is not None]
    if not said or min(said) <= span[0]:
        return None
    return (span[0], min(said))


def _tail(cmd: Command, span: Tuple[int, int]) -> Optional[Tuple[int, int]]:
    """A piece's words after its last said slot ("from my shopping list"), if any."""
    said = [s.end for s in cmd.slots if s.end is not None]
    if not said or max(said) >= span[1]:
        return None
    return (max(said), span[1])


def _command(text: str, pieces: Pieces, parse_one: ParseOne,
             cache: Dict[Pieces, Optional[Command]]) -> Optional[Command]:
    """The command the pieces' words make (slots pointing at the sentence), None if none."""
    if pieces in cache:
        return cache[pieces]
    parts = [(a + len(text[a:b]) - len(text[a:b].lstrip()),
              b - (len(text[a:b]) - len(text[a:b].rstrip()))) for a, b in pieces]
    parts = [(a, b) for a, b in parts if b > a]
    cmd: Optional[Command] = None
    if parts:
        joined = " ".join(text[a:b] for a, b in parts)
        res = parse_one(joined)
        if res.intent is not None:
            slots = [m for m in (_moved(s, parts) for s in res.slots) if m is not None]
            cmd = Command(res.intent, res.confidence, slots)
    cache[pieces] = cmd
    return cmd


def _moved(slot: Slot, parts: Sequence[Tuple[int, int]]) -> Optional[Slot]:
    """The slot with its span in the sentence's characters (None: it straddles two pieces)."""
    if slot.start is None or slot.end is None:
        return slot
    at = 0
    for a, b in parts:
        if at <= slot.start and slot.end <= at + (b - a):
            return replace(slot, start=a + slot.start - at, end=a + slot.end - at)
        at += (b - a) + 1
    return None
