"""What `IntentEngine.parse` answers: the intent, its confidence and its slots.

A slot is said (a span of the text: `raw` the words, `start`/`end` where they are) or implied:
a fixed slot of the sentence's intent class (`domain: light` for "the kitchen lights") or the
satellite's area ("in here"). An implied slot has `raw` "" and `start`/`end` None: there are no
words to point at (Hermes gets no `range` for it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from .values import Value


@dataclass
class Slot:
    """One slot of a parse."""

    name: str
    """Slot name ("name", "area", "brightness", "domain", ...)."""
    value: Value
    """Canonical value (a number, a list value, the home's spelling of a name)."""
    raw: str
    """The words as said ("" for an implied slot)."""
    start: Optional[int]
    """Character span in the original text (None for an implied slot)."""
    end: Optional[int]
    confidence: float
    """Mean probability of the span's tags (of the intent class, for an implied slot)."""

    @property
    def said(self) -> bool:
        """Whether the slot is words of the text (not implied)."""
        return self.start is not None


@dataclass
class Alternative:
    """A runner-up intent."""

    intent: Optional[str]
    confidence: float


@dataclass
class Command:
    """One command of a sentence (a sentence may hold several: "... and lock the door")."""

    intent: Optional[str]
    confidence: float
    slots: List[Slot] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        """The element of `commands` in the `parse --jsonl` object."""
        return {"intent": self.intent, "confidence": round(self.confidence, 4),
                "slots": [_slot_dict(s) for s in self.slots]}


@dataclass
class ParseResult:
    """What `parse` answers."""

    text: str
    intent: Optional[str]
    """Intent name, or None when not recognized (out of scope or below the threshold)."""
    confidence: float
    """Calibrated probability of the intent (of "no intent" when that wins)."""
    slots: List[Slot] = field(default_factory=list)
    """Said slots in text order, then implied ones (fixed slots, the satellite's area)."""
    alternatives: List[Alternative] = field(default_factory=list)
    top_intent: Optional[str] = None
    """The model's best guess before the threshold (None: "no intent" won)."""
    commands: List[Command] = field(default_factory=list)
    """Every command of the sentence in spoken order: one for a single command (the
    top-level fields), several for "turn off the lights and lock the door" (the top-level
    fields are the first's), none when nothing is recognized."""

    def __post_init__(self) -> None:
        if not self.commands and self.intent is not None:
            self.commands = [Command(self.intent, self.confidence, self.slots)]

    def to_dict(self) -> Dict[str, Any]:
        """The `parse --jsonl` object."""
        return {"text": self.text, "intent": self.intent,
                "confidence": round(self.confidence, 4),
                "slots": [_slot_dict(s) for s in self.slots],
                "alternatives": [{"intent": a.intent, "confidence": round(a.confidence, 4)}
                                 for a in self.alternatives],
                "commands": [c.to_dict() for c in self.commands]}

    def slot_values(self) -> Dict[str, Value]:
        """{slot name: value} (the first of each name): what Home Assistant executes."""
        out: Dict[str, Value] = {}
        for s in self.slots:
            out.setdefault(s.name, s.value)
        return out


def _slot_dict(slot: Slot) -> Dict[str, Any]:
    return dict(asdict(slot), confidence=round(slot.confidence, 4))
