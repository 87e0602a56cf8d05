"""From corpus records to arrays: the label space, token ids and BIO slot tags.

Token 0 of every row is [CLS] (its final state feeds the intent head); tags are BIO over slot
names, one per student token, aligned through character offsets, with -1 where no loss applies
([CLS] and padding).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

NONE_INTENT = "<none>"
IGNORE = -1


@dataclass
class LabelSpace:
    """Intents (index 0 is "no intent") and BIO tags (index 0 is "O")."""

    intents: List[str] = field(default_factory=lambda: [NONE_INTENT])
    """Intent names; `intents[0]` is the out-of-scope class."""
    slots: List[str] = field(default_factory=list)
    """Slot names; tags are O, then B-x and I-x for each x in this order."""

    @property
    def tags(self) -> List[str]:
        """All tags: O, B-slot, I-slot, ..."""
        out = ["O"]
        for s in self.slots:
            out += [f"B-{s}", f"I-{s}"]
        return out

    @classmethod
    def from_records(cls, records: Iterable[Dict[str, Any]]) -> "LabelSpace":
        """Every intent and slot name in `records`, sorted."""
        intents, slots = set(), set()
        for r in records:
            if r["intent"]:
                intents.add(r["intent"])
            slots.update(s["name"] for s in r["slots"])
        return cls([NONE_INTENT] + sorted(intents), sorted(slots))

    def intent_id(self, name: Optional[str]) -> int:
        """Index of an intent name (None -> 0); unknown names map to 0."""
        if not name:
            return 0
        try:
            return self.intents.index(name)
        except ValueError:
            return 0

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return {"intents": self.intents, "slots": self.slots, "tags": self.tags}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "LabelSpace":
        """Inverse of to_dict."""
        return cls(list(data["intents"]), list(data["slots"]))


@dataclass
class Batch:
    """Encoded sentences."""

    ids: np.ndarray
    """(N, T) int32 token ids, [CLS] first, 0-padded."""
    intents: np.ndarray
    """(N,) int32 intent ids."""
    tags: np.ndarray
    """(N, T) int32 tag ids, IGNORE on [CLS] and padding."""
    offsets: List[List[Tuple[int, int]]]
    """Character span of each real token (position 1.. of the row)."""

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def read_jsonl(path: Path) -> Iterator[Dict[str, Any]]:
    """Records of a JSON-lines file."""
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def tags_for(offsets: Sequence[Tuple[int, int]], slots: Sequence[Dict[str, Any]],
             labels: LabelSpace) -> List[int]:
    """BIO tag id for each token span, from the record's slot spans."""
    tag_index = {t: i for i, t in enumerate(labels.tags)}
    out = []
    seen = set()
    for a, _ in offsets:
        tag = 0
        for k, s in enumerate(slots):
            if s["start"] <= a < s["end"] and s["name"] in labels.slots:
                tag = tag_index[("I-" if k in seen else "B-") + s["name"]]
                seen.add(k)
                break
        out.append(tag)
    return out


def encode(records: Sequence[Dict[str, Any]], fast_tokenizer: Any, labels: LabelSpace,
           max_len: int, cls_id: int) -> Batch:
    """Tokenize and label `records` (texts longer than max_len-1 tokens are truncated)."""
    n = len(records)
    ids = np.zeros((n, max_len), dtype=np.int32)
    tags = np.full((n, max_len), IGNORE, dtype=np.int32)
    intents = np.zeros((n,), dtype=np.int32)
    all_offsets: List[List[Tuple[int, int]]] = []
    encodings = fast_tokenizer.encode_batch([r["text"] for r in records],
                                            add_special_tokens=False)
    for i, (rec, enc) in enumerate(zip(records, encodings)):
        tok_ids = enc.ids[: max_len - 1]
        offs = [tuple(o) for o in enc.offsets[: max_len - 1]]
        ids[i, 0] = cls_id
        ids[i, 1: 1 + len(tok_ids)] = tok_ids
        tags[i, 1: 1 + len(tok_ids)] = tags_for(offs, rec.get("slots") or [], labels)
        intents[i] = labels.intent_id(rec.get("intent"))
        all_offsets.append(offs)  # type: ignore[arg-type]
    return Batch(ids, intents, tags, all_offsets)


#: Characters that end a word even when no space follows ("50%", "20°", "on?").
_BREAKING = frozenset('%°?!.,:;"()[]{}')


def words_of(offsets: Sequence[Tuple[int, int]], text: str,
             tag_ids: Optional[Sequence[int]] = None) -> List[List[int]]:
    """Token indices grouped into words: a token glued to the previous one (no space between,
    neither of them breaking punctuation) continues its word ("kitch" + "##n", "twenty-six").
    A glued token that starts with a symbol ("-seconds", "°") opens a word of its own when one
    side is tagged O and the other is not ("11" + "-seconds" stays apart); word pieces that
    start with a letter or digit never do ("cu" + "##mi" + "##n" is one word, whatever the
    model says about "##mi")."""
    words: List[List[int]] = []
    for i, (a, b) in enumerate(offsets):
        glued = (i > 0 and offsets[i - 1][1] == a and text[a:b] not in _BREAKING
                 and text[offsets[i - 1][0]:offsets[i - 1][1]] not in _BREAKING)
        if (glued and tag_ids is not None and a < len(text) and not text[a].isalnum()
                and (tag_ids[i] == 0) != (tag_ids[words[-1][0]] == 0)):
            glued = False
        if words and glued:
            words[-1].append(i)
        else:
            words.append([i])
    return words


def decode_spans(tag_ids: Sequence[int], offsets: Sequence[Tuple[int, int]],
                 labels: LabelSpace, text: Optional[str] = None) -> List[Tuple[str, int, int]]:
    """(slot, start, end) spans from per-token tag ids.

    Decisions are per word (see `words_of`), an "O" word closes a span, and
    when `text` is given, neighbouring words of the same slot with only spaces between are one
    span (a model often starts every word of a multi-word value with B-).
    """
    tags = labels.tags
    groups = (words_of(offsets, text, tag_ids) if text is not None
              else [[i] for i in range(len(offsets))])
    spans: List[List[Any]] = []
    for group in groups:
        # A word's tag is its first token's, or its first tagged piece's when the first
        # piece is O ("wi" O + "##pe" B-item: the word "wipe" starts the item).
        tag_id = next((tag_ids[k] for k in group if tag_ids[k] != 0), 0)
        if text is not None and all(text[offsets[k][0]:offsets[k][1]] in _BREAKING
                                    for k in group):
            a, b = offsets[group[0]][0], offsets[group[-1]][1]
            inside = 0 < a and b < len(text) and text[a - 1].isalnum() and text[b].isalnum()
            if not inside:
                tag_id = 0  # trailing punctuation ("20°", "50%", "on?") is not part of a value
        a, b = offsets[group[0]][0], offsets[group[-1]][1]
        tag = tags[tag_id] if 0 <= tag_id < len(tags) else "O"
        if tag == "O":
            if spans:
                spans[-1][3] = False  # an "O" closes the open span
            continue
        kind, name = tag.split("-", 1)
        if spans and spans[-1][0] == name and spans[-1][3] and (
                kind == "I" or (text is not None and not text[spans[-1][2]:a].strip())):
            spans[-1][2] = b
            continue
        if spans:
            spans[-1][3] = False
        spans.append([name, a, b, True])
    return [(name, a, b) for name, a, b, _ in spans]
