"""Compound sentences: two or three commands joined as people join them ("turn off the
kitchen lights and lock the front door", "what time is it, then set a timer for 5 minutes").

Made from records of one split (the held-out templates, to measure), each command keeping its
intent, its slots with exact spans in the joined text and its fixed slots: a record with
`commands` is what `runtime.metrics.evaluate` scores as "every command right".
"""

from __future__ import annotations

import random
from typing import Any, Dict, List, Sequence

from .fillers import load_fillers

#: How the commands are joined (lower case: the second command is not a new sentence).
JOINERS = (" and ", " and then ", ", then ", " then ", ", and ", " and also ", ", ", "; ",
           " and ", " and ")
#: Augmentations a part may carry (no wake word, filler or typo in the middle of a sentence:
#: the noise of whole sentences is measured on the single held-out commands).
_KEEP = {"casing", "punctuation", "contraction", "number"}
#: Intents that are no command to execute (chat, "never mind"): not parts of a compound.
_CHAT = {"HassRespond", "HassNevermind"}


def _usable(rec: Dict[str, Any]) -> bool:
    return bool(rec.get("intent")) and rec["intent"] not in _CHAT \
        and set(rec.get("augment") or ()) <= _KEEP \
        and not (rec.get("context") or {}).get("area")


def _open_ended(rec: Dict[str, Any]) -> bool:
    """Whether free text ends the sentence ("add {item}", "broadcast {message}"): such a
    part goes last, or the next command would be read as more of its free text."""
    text = rec["text"].rstrip(" .?!")
    wildcards = load_fillers(rec.get("lang") or "en")  # the free-text lists, by name
    return any(s.get("list") in wildcards and s["end"] >= len(text)
               for s in rec.get("slots") or [])


def make_compounds(records: Sequence[Dict[str, Any]], n: int, seed: int = 0,
                   three: float = 0.2) -> List[Dict[str, Any]]:
    """`n` compound sentences from the command records (two commands each; three with
    probability `three`), deterministic for a seed."""
    pool = [r for r in records if _usable(r)]
    closed = [r for r in pool if not _open_ended(r)]
    if len(closed) < 3:
        return []
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = 3 if rng.random() < three else 2
        parts = rng.sample(closed, k - 1) + [rng.choice(pool)]
        out.append(join(parts, [rng.choice(JOINERS) for _ in parts[1:]]))
    return out


def join(parts: Sequence[Dict[str, Any]], joiners: Sequence[str]) -> Dict[str, Any]:
    """One compound record: the parts' texts joined (a trailing full stop or question mark of
    a part that is not the last dropped), their slots moved to where they now stand."""
    text, commands = "", []
    for i, rec in enumerate(parts):
        piece = rec["text"]
        if i < len(parts) - 1:
            piece = piece.rstrip(" .?!")
        if i:
            text += joiners[i - 1]
        at = len(text)
        text += piece
        slots = [dict(s, start=s["start"] + at, end=s["end"] + at)
                 for s in rec.get("slots") or [] if s["end"] <= len(piece)]
        commands.append({"intent": rec["intent"], "slots": slots,
                         "fixed_slots": dict(rec.get("fixed_slots") or {}),
                         "template": rec.get("template")})
    return {"text": text, "intent": commands[0]["intent"], "slots": commands[0]["slots"],
            "commands": commands, "source": "compound", "split": parts[0].get("split")}
