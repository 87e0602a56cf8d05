"""From corpus records to arrays: the label space, token ids and BIO slot tags.

Token 0 of every row is [CLS] (its final state feeds the intent and frame heads; a frame is
what a sentence implies, see edge_slm/runtime/labels.py); tags are BIO over slot
names, one per student token, aligned through character offsets, with -1 where no loss applies
([CLS] and padding).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Set,
                    Tuple)

import numpy as np

from ..errors import CorpusInputError
# Span decoding lives with the runtime (the device decodes the same way); re-exported here.
from ..runtime.decode import decode_spans, words_of  # noqa: F401
from ..runtime.labels import EMPTY_FRAME, LABELS_FORMAT, NONE_INTENT, Frame, frame_of
from ..runtime.resolve import HomeNames

if TYPE_CHECKING:
    from tokenizers import Tokenizer
IGNORE = -1


@dataclass
class LabelSpace:
    """Intents (index 0 is "no intent"), frames (what a sentence implies: fixed slots and the
    satellite's area; index 0 is the empty frame) and BIO tags (index 0 is "O")."""

    intents: List[str] = field(default_factory=lambda: [NONE_INTENT])
    """Intent names; `intents[0]` is the out-of-scope class."""
    slots: List[str] = field(default_factory=list)
    """Slot names; tags are O, then B-x and I-x for each x in this order."""
    frames: List[Frame] = field(default_factory=lambda: [EMPTY_FRAME])
    """What the frame head scores (see edge_slm/runtime/labels.py)."""
    intent_frames: Dict[str, List[int]] = field(default_factory=dict)
    """Per intent, the frames its sentences had."""

    def __post_init__(self) -> None:
        self._frame_index = {f: i for i, f in enumerate(self.frames)}

    @property
    def tags(self) -> List[str]:
        """All tags: O, B-slot, I-slot, ..."""
        out = ["O"]
        for s in self.slots:
            out += [f"B-{s}", f"I-{s}"]
        return out

    @classmethod
    def from_records(cls, records: Iterable[Dict[str, Any]]) -> "LabelSpace":
        """Every intent, frame and slot name in `records`, sorted."""
        intents: Set[str] = set()
        slots: Set[str] = set()
        pairs: Set[Tuple[str, Frame]] = set()
        for r in records:
            if r["intent"]:
                intents.add(r["intent"])
                pairs.add((r["intent"], frame_of(r)))
            slots.update(s["name"] for s in r["slots"])
        frames = [EMPTY_FRAME] + sorted({f for _, f in pairs} - {EMPTY_FRAME},
                                        key=lambda f: f.key())
        index = {f: i for i, f in enumerate(frames)}
        table: Dict[str, List[int]] = {}
        for intent, f in pairs:
            table.setdefault(intent, []).append(index[f])
        return cls([NONE_INTENT] + sorted(intents), sorted(slots), frames,
                   {k: sorted(v) for k, v in sorted(table.items())})

    def intent_id(self, name: Optional[str]) -> int:
        """Index of an intent name (None -> 0); unknown names map to 0."""
        if not name:
            return 0
        try:
            return self.intents.index(name)
        except ValueError:
            return 0

    def frame_id(self, rec: Dict[str, Any]) -> int:
        """Index of a record's frame (the empty frame when this space lacks it)."""
        return self._frame_index.get(frame_of(rec), 0)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form (labels.json, format 2)."""
        return {"format": LABELS_FORMAT, "intents": self.intents, "slots": self.slots,
                "tags": self.tags, "frames": [f.to_dict() for f in self.frames],
                "intent_frames": self.intent_frames}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "LabelSpace":
        """Inverse of to_dict (format 1, without frames: the empty frame only)."""
        frames = [Frame.from_dict(f) for f in data.get("frames", [{}])]
        return cls(list(data["intents"]), list(data["slots"]), frames,
                   {k: list(v) for k, v in data.get("intent_frames", {}).items()})


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
    frames: Optional[np.ndarray] = None
    """(N,) int32 frame ids (LabelSpace.frames); None: all the empty frame."""

    def __post_init__(self) -> None:
        if self.frames is None:
            self.frames = np.zeros((len(self.ids),), np.int32)

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass
class Sets:
    """The encoded sets of a training run (student tokens)."""

    labels: LabelSpace
    """The run's label space."""
    train: Batch
    """Labelled training rows of the students."""
    train_recs: List[Dict[str, Any]]
    extra: Batch
    """Extra sentences only the teacher labels (no gold labels)."""
    extra_recs: List[Dict[str, Any]]
    valid: Batch
    """Validation split (temperature, pruning importance)."""
    valid_recs: List[Dict[str, Any]]
    evals: Dict[str, Tuple[Batch, List[Dict[str, Any]]]]
    """Held-out sets by name (`heldout_templates`, `heldout_oos`, `dev`)."""
    calib: Batch
    """Out-of-scope validation sentences that set the rejection threshold."""
    calib_recs: List[Dict[str, Any]]
    home: Optional[HomeNames] = None
    """The names of the home the corpus was sampled in (for slot resolution)."""


def read_jsonl(path: Path) -> Iterator[Dict[str, Any]]:
    """Records of a JSON-lines file (a corpus, a dev set); CorpusInputError when a line is
    not JSON."""
    with Path(path).open(encoding="utf-8") as fh:
        try:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except ValueError as err:
                        raise CorpusInputError(str(path), f"line {n}: not JSON ({err})") \
                            from None
                    yield record
        except UnicodeDecodeError as err:
            raise CorpusInputError(str(path), f"not UTF-8 text ({err})") from None


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


def encode(records: Sequence[Dict[str, Any]], fast_tokenizer: Tokenizer, labels: LabelSpace,
           max_len: int, cls_id: int) -> Batch:
    """Tokenize and label `records` (texts longer than max_len-1 tokens are truncated)."""
    n = len(records)
    ids = np.zeros((n, max_len), dtype=np.int32)
    tags = np.full((n, max_len), IGNORE, dtype=np.int32)
    intents = np.zeros((n,), dtype=np.int32)
    frames = np.zeros((n,), dtype=np.int32)
    all_offsets: List[List[Tuple[int, int]]] = []
    encodings = fast_tokenizer.encode_batch([r["text"] for r in records],
                                            add_special_tokens=False)
    for i, (rec, enc) in enumerate(zip(records, encodings)):
        tok_ids = enc.ids[: max_len - 1]
        offs = [(a, b) for a, b in enc.offsets[: max_len - 1]]
        ids[i, 0] = cls_id
        ids[i, 1: 1 + len(tok_ids)] = tok_ids
        tags[i, 1: 1 + len(tok_ids)] = tags_for(offs, rec.get("slots") or [], labels)
        intents[i] = labels.intent_id(rec.get("intent"))
        frames[i] = labels.frame_id(rec)
        all_offsets.append(offs)
    return Batch(ids, intents, tags, all_offsets, frames)


#: Batches sorted by length together (`length_batches`): large enough that a batch's rows are
#: of nearly equal length, small enough that an epoch's batches still mix every kind of row.
BUCKET_POOL = 50


def row_lengths(ids: np.ndarray) -> np.ndarray:
    """(N,) tokens up to and including each row's last non-padding one ([CLS] counts)."""
    real = ids != 0
    last = ids.shape[1] - np.argmax(real[:, ::-1], axis=1)
    return np.where(real.any(axis=1), last, 1).astype(np.int64)


def length_batches(rng: np.random.Generator, lengths: np.ndarray, batch_size: int,
                   steps: int, pool: int = BUCKET_POOL) -> List[np.ndarray]:
    """One epoch's batches (`steps` of them, `batch_size` rows each): a random permutation
    cut into pools of `pool` batches, each pool sorted by length and cut into batches, the
    batches then shuffled. A batch's rows are of nearly equal length, so trimming it to its
    longest row drops most padding (the mean row is a third of `max_len`) without changing
    the loss: padding is masked out of attention and of every term."""
    order = rng.permutation(len(lengths))[:steps * batch_size]
    span = pool * batch_size
    batches: List[np.ndarray] = []
    for a in range(0, len(order), span):
        chunk = order[a:a + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
