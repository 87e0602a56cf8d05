"""Word evidence: a second, independent opinion on whether a sentence is a command at all.

    word pieces of the sentence ─► each piece and each pair of neighbouring pieces (hashed
    into `buckets`) ─► a linear model's log-odds of "a command" against "not one"
                                        ─► `weight` x that, added to the model's log-odds

The transformer's "no intent" class decides alone which sentences are commands, and it
doubts real commands in wording it never saw ("which is the status of my vacuum") as much
as chat. A linear model over the same word pieces, trained on the same commands and
out-of-scope sentences, errs elsewhere: it weighs every word it knows on its own, so the
device and the request still count when the wrapping around them is new. The engine adds
its log-odds, scaled by `weight` (fitted on the validation split, beside the model's own),
to the model's log-odds of a command before the threshold, which is fitted on the
combination (model/evidence.py trains it; docs/model.md, "Word evidence").

Stored in a bundle as `evidence.npz` (numbers only, read without pickle); a bundle without
it is answered on the model's log-odds alone.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import asdict, dataclass
from typing import Iterable, List, Sequence

import numpy as np

from ..bundle import BundleError

#: The bundle member that holds it.
MEMBER = "evidence.npz"
#: Largest hashed table a bundle may declare (a bundle is untrusted input).
MAX_BUCKETS = 1 << 16
#: Most bytes the member's arrays may unpack to (float16 weights for the largest vocabulary
#: and table: 256 KB, with room for npz headers).
MAX_UNPACKED = 1 << 20
#: Multiplier of the pair hash.
_PRIME = 1000003


@dataclass(frozen=True)
class EvidenceConfig:
    """How the features are made and weighed; saved beside the weights."""

    vocab_size: int
    """Word pieces of the tokenizer: one weight each."""
    buckets: int = 8192
    """Hashed pairs of neighbouring pieces (the sentence's start and end count as pieces)."""
    weight: float = 0.0
    """What one unit of this log-odds is worth against one of the model's own."""
    max_pieces: int = 0
    """Word pieces read, from the start (the model's own length less [CLS]: the evidence
    reads what the model reads); 0: all."""


class WordEvidence:
    """The linear model: a weight per word piece, per hashed pair, and a bias."""

    def __init__(self, config: EvidenceConfig, pieces: np.ndarray, pairs: np.ndarray,
                 bias: float) -> None:
        if pieces.shape != (config.vocab_size,) or pairs.shape != (config.buckets,):
            raise ValueError(f"evidence weights of shapes {pieces.shape} and {pairs.shape}, "
                             f"config says ({config.vocab_size},) and ({config.buckets},)")
        if not (0 < config.buckets <= MAX_BUCKETS and math.isfinite(config.weight)
                and math.isfinite(bias) and config.max_pieces >= 0):
            raise ValueError(f"evidence config {config} with bias {bias}")
        if not (np.all(np.isfinite(pieces)) and np.all(np.isfinite(pairs))):
            raise ValueError("evidence weights must be finite numbers")
        self.config = config
        # held at the precision the bundle stores (float16), so that a threshold fitted with
        # it holds for the engine that reads it back
        self.pieces = pieces.astype(np.float16).astype(np.float32)
        self.pairs = pairs.astype(np.float16).astype(np.float32)
        self.bias = float(bias)

    @staticmethod
    def features(ids: Sequence[int], vocab_size: int, buckets: int,
                 max_pieces: int = 0) -> List[int]:
        """Column indices of a sentence's word pieces (`ids`, without [CLS]; the first
        `max_pieces` when that is set): each distinct piece (0 .. vocab_size-1), then each
        distinct hashed pair (vocab_size + bucket)."""
        if max_pieces:
            ids = ids[:max_pieces]
        ids = [int(i) for i in ids if 0 <= int(i) < vocab_size]
        ends = [vocab_size] + ids + [vocab_size + 1]
        out = set(ids)
        out.update(vocab_size + (a * _PRIME + b) % buckets for a, b in zip(ends, ends[1:]))
        return sorted(out)

    def log_odds(self, ids: Sequence[int]) -> float:
        """Its log-odds that the sentence of word pieces `ids` (without [CLS]) is a command."""
        v = self.config.vocab_size
        cols = self.features(ids, v, self.config.buckets, self.config.max_pieces)
        return self.bias + float(sum(self.pieces[c] if c < v else self.pairs[c - v]
                                     for c in cols))

    def shift(self, ids: Sequence[int]) -> float:
        """What it adds to the model's log-odds of a command: weight x its own."""
        return self.config.weight * self.log_odds(ids) if self.config.weight else 0.0

    def apply(self, li: np.ndarray, ids: Sequence[int], temperature: float) -> np.ndarray:
        """A sentence's intent logits (word pieces `ids`, without [CLS]) with the shift: "no
        intent"'s logit lowered by temperature x shift, which moves the log-odds of a
        command by exactly the shift and leaves the intents' odds against each other."""
        out = np.array(li, np.float32)
        out[0] -= temperature * self.shift(ids)
        return out

    # -- storage ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The bundle member: an npz of float16 weights and the config as numbers."""
        buf = io.BytesIO()
        cfg = asdict(self.config)
        np.savez_compressed(buf, pieces=self.pieces.astype(np.float16),
                            pairs=self.pairs.astype(np.float16),
                            bias=np.float64(self.bias),
                            config=np.array([cfg["vocab_size"], cfg["buckets"],
                                             cfg["max_pieces"]], np.int64),
                            weight=np.float64(cfg["weight"]))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, where: str = MEMBER) -> "WordEvidence":
        """Read the member (BundleError for anything but the arrays it must hold)."""
        try:
            # the arrays' sizes as the npz declares them, before any is decompressed
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                size = sum(i.file_size for i in zf.infolist())
            if size > MAX_UNPACKED:
                raise ValueError(f"its arrays unpack to {size} bytes, more than {MAX_UNPACKED}")
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                vocab, buckets, max_pieces = (int(x) for x in z["config"])
                if not 0 < buckets <= MAX_BUCKETS or not 0 < vocab <= MAX_BUCKETS:
                    raise ValueError(f"{vocab} pieces and {buckets} buckets")
                config = EvidenceConfig(vocab, buckets, float(z["weight"]), max_pieces)
                return cls(config, np.asarray(z["pieces"]), np.asarray(z["pairs"]),
                           float(z["bias"]))
        except (OSError, KeyError, ValueError, TypeError, EOFError,
                zipfile.BadZipFile) as err:
            raise BundleError(f"{where}: malformed word evidence ({err})") from err


def combined(log_odds_model: np.ndarray, shifts: Iterable[float]) -> np.ndarray:
    """The model's log-odds of a command plus each sentence's evidence shift."""
    return np.asarray(log_odds_model, np.float64) + np.fromiter(shifts, np.float64)
