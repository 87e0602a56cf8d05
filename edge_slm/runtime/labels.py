"""What a bundle's `labels.json` says: the intents, the frames and the slot tags a model
chooses between.

A frame is what a sentence implies without saying it in so many words: Home Assistant's fixed
slots ("turn off the kitchen lights" is `HassTurnOff` with `domain: light`; "open the garage"
adds `device_class: garage`) and whether the area comes from the satellite ("turn on the lights
in here"). The model has a head for each: intent, frame and slot tags. A frame is only chosen
among those its intent was seen with (`intent_frames`), so that an answer is always a
combination Home Assistant's templates make (docs/labelling.md, "Fixed slots and the
satellite's area").

    {"format": 2, "intents": ["<none>", "HassTurnOff", ...], "slots": [...], "tags": [...],
     "frames": [{}, {"fixed": {"domain": "light"}, "area_from_context": true}, ...],
     "intent_frames": {"HassTurnOff": [0, 1, ...], ...}}

Format 1 had no frames (a model without a frame head): every intent has the empty frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .values import Value

LABELS_FORMAT = 2
#: The name of "no intent" in label lists (index 0 everywhere).
NONE_INTENT = "<none>"


@dataclass(frozen=True)
class Frame:
    """What a sentence implies: fixed slots and whether its area is the satellite's."""

    fixed: Tuple[Tuple[str, Value], ...] = ()
    """Fixed slots as sorted (name, value) pairs (`domain`, `device_class`, ...)."""
    area_from_context: bool = False
    """The sentence names no place and means the satellite's area ("lights on in here")."""

    @classmethod
    def make(cls, fixed: Optional[Mapping[str, Any]] = None,
             area_from_context: bool = False) -> "Frame":
        """A frame from a plain dict of fixed slots."""
        return cls(tuple(sorted((str(k), v) for k, v in (fixed or {}).items())),
                   bool(area_from_context))

    @property
    def fixed_slots(self) -> Dict[str, Value]:
        """The fixed slots as a dict."""
        return dict(self.fixed)

    def key(self) -> str:
        """A stable text key (sorting, reports)."""
        return json.dumps([list(map(list, self.fixed)), self.area_from_context],
                          sort_keys=True, default=str)

    def to_dict(self) -> Dict[str, Any]:
        """labels.json form (empty parts left out)."""
        out: Dict[str, Any] = {}
        if self.fixed:
            out["fixed"] = self.fixed_slots
        if self.area_from_context:
            out["area_from_context"] = True
        return out

    @classmethod
    def from_dict(cls, data: object) -> "Frame":
        """Inverse of to_dict; raises ValueError on a malformed entry."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a frame must be an object, got {data!r}")
        fixed = data.get("fixed") or {}
        if not isinstance(fixed, Mapping):
            raise ValueError("a frame's 'fixed' must be an object")
        return cls.make(fixed, bool(data.get("area_from_context", False)))


#: The frame of a sentence that implies nothing.
EMPTY_FRAME = Frame()


def frame_of(rec: Mapping[str, Any]) -> Frame:
    """The frame a corpus record teaches: the fixed slots its words do not say as a span (a
    span carries its own value), and whether its area comes from the satellite (a template
    with `requires_context: {area: {slot: true}}` and no place said)."""
    if not rec.get("intent"):
        return EMPTY_FRAME
    spans = {s["name"] for s in rec.get("slots") or []}
    fixed = {k: v for k, v in (rec.get("fixed_slots") or {}).items() if k not in spans}
    context = rec.get("context") or {}
    from_context = bool(context.get("area")) and not spans & {"area", "floor", "name"}
    return Frame.make(fixed, from_context)


@dataclass
class Labels:
    """The label spaces of one model (the runtime's view of `labels.json`)."""

    intents: List[Optional[str]]
    """Intent names; index 0 is None ("no intent")."""
    tags: List[str]
    """BIO tags of the slot head; index 0 is "O"."""
    frames: List[Frame] = field(default_factory=lambda: [EMPTY_FRAME])
    """The frame head's classes; index 0 is the empty frame."""
    intent_frames: Dict[str, List[int]] = field(default_factory=dict)
    """Per intent, the frames it was seen with (none listed: the empty frame only)."""

    def __post_init__(self) -> None:
        if not self.frames or self.frames[0] != EMPTY_FRAME:
            raise ValueError("frame 0 must be the empty frame")
        for intent, ids in self.intent_frames.items():
            if not all(isinstance(i, int) and 0 <= i < len(self.frames) for i in ids):
                raise ValueError(f"intent_frames[{intent!r}] names frames that do not exist")

    @classmethod
    def from_json(cls, data: object) -> "Labels":
        """Read `labels.json` (format 1 or 2); raises ValueError when malformed."""
        if not isinstance(data, Mapping):
            raise ValueError("labels.json must be an object")
        names = data.get("intents")
        tags = data.get("tags")
        if not isinstance(names, list) or not names or not isinstance(tags, list):
            raise ValueError("labels.json needs 'intents' and 'tags' lists")
        intents: List[Optional[str]] = [None] + [str(n) for n in names[1:]]
        frames = data.get("frames", [{}])
        table = data.get("intent_frames", {})
        if not isinstance(frames, list) or not isinstance(table, Mapping):
            raise ValueError("labels.json: 'frames' must be a list, 'intent_frames' an object")
        return cls(intents, [str(t) for t in tags], [Frame.from_dict(f) for f in frames],
                   {str(k): list(v) for k, v in table.items()})

    def frames_of(self, intent: Optional[str]) -> List[int]:
        """The frames `intent` may take (at least the empty one)."""
        return list(self.intent_frames.get(intent or "", [])) or [0]
