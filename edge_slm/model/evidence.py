"""Training the word evidence (runtime/evidence.py): a logistic regression over word pieces
and hashed pairs of them, commands against out-of-scope sentences, and its weight beside the
model's own log-odds.

    train split: commands (label 1), out-of-scope sentences of the corpus and of the
    calibration pool (label 0), as many of each ─► L2-regularized logistic regression
    (full-batch, L-BFGS, torch) ─► WordEvidence
    validation split: the model's log-odds and the evidence's ─► a two-feature logistic
    regression ─► weight = its evidence coefficient / its model coefficient
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import numpy as np

from ..runtime.evidence import EvidenceConfig, WordEvidence
from ..tokenizer import WordPieceTokenizer


#: The evidence is a second opinion: never worth more than the model's own log-odds. (A weak
#: model, such as the small profile's, gets a ratio of 50 from the fit: the sum then
#: saturates, and a threshold on probabilities that round to 1 cannot tell sentences apart.)
MAX_WEIGHT = 1.0


@dataclass
class EvidenceTrainConfig:
    """Settings of the word evidence's training; saved in the training config."""

    enabled: bool = True
    """Train it and let it count (false: the model's log-odds alone, as before)."""
    buckets: int = 8192
    """Hashed pairs of neighbouring word pieces."""
    sentences: int = 80000
    """Most sentences of each class it is fitted on."""
    l2: float = 1e-4
    """L2 penalty per weight, against the mean log-loss. Weaker penalties fit the corpus's
    own wording closer (held-out commands answered right rise a little) but let more chat
    through in a home, where a device's name counts as evidence too: on the shipped int8
    model 1e-5 let 1.07% of the held-out out-of-scope sentences through in the example home,
    1e-4 0.96%, 1e-3 0.81% (docs/model.md, "Word evidence")."""
    seed: int = 0


def training_sentences(train: Iterable[Dict[str, Any]], pool: Iterable[Dict[str, Any]]
                       ) -> Tuple[List[str], List[str]]:
    """(commands, out-of-scope sentences) the word evidence learns from: the training split's
    records `train`, and the out-of-scope sentences of the calibration pool's training split
    (`pool`, the records of a run's calibration.jsonl: chat and near-misses the model never
    learned from)."""
    commands: List[str] = []
    oos: List[str] = []
    for r in train:
        (commands if r["intent"] else oos).append(r["text"])
    oos += [r["text"] for r in pool if r["split"] == "train" and not r["intent"]]
    return commands, oos


def _rows(tok: WordPieceTokenizer, texts: Sequence[str], vocab: int, buckets: int,
          max_pieces: int) -> Tuple[np.ndarray, np.ndarray]:
    """(flat column indices, offsets) of each sentence's features."""
    cols: List[int] = []
    offsets: List[int] = []
    for t in texts:
        offsets.append(len(cols))
        cols.extend(WordEvidence.features(tok.encode(t).ids, vocab, buckets, max_pieces))
    return np.asarray(cols, np.int64), np.asarray(offsets, np.int64)


def fit_evidence(tokenizer: WordPieceTokenizer, commands: Sequence[str],
                 out_of_scope: Sequence[str], config: EvidenceTrainConfig,
                 max_pieces: int = 0) -> WordEvidence:
    """The logistic regression of commands against out-of-scope sentences, reading the first
    `max_pieces` word pieces of each (0: all; the model's length less [CLS], so that it reads
    what the model reads) (weight 0: set it with `stack_weight`)."""
    import torch

    rng = random.Random(config.seed)
    n = min(config.sentences, len(commands), len(out_of_scope))
    if n == 0:
        raise ValueError("word evidence needs commands and out-of-scope sentences")
    pos = rng.sample(list(commands), n)
    neg = rng.sample(list(out_of_scope), n)
    vocab = tokenizer.vocab_size
    cols, offsets = _rows(tokenizer, pos + neg, vocab, config.buckets, max_pieces)
    y = torch.tensor([1.0] * n + [0.0] * n)
    torch.manual_seed(config.seed)
    bag = torch.nn.EmbeddingBag(vocab + config.buckets, 1, mode="sum")
    torch.nn.init.zeros_(bag.weight)
    bias = torch.zeros(1, requires_grad=True)
    params = [bag.weight, bias]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=200, history_size=20,
                            line_search_fn="strong_wolfe")
    c, o = torch.from_numpy(cols), torch.from_numpy(offsets)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = bag(c, o).squeeze(1) + bias
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(z, y)
                + config.l2 * bag.weight.pow(2).sum())
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    w = bag.weight.detach().numpy()[:, 0]
    return WordEvidence(EvidenceConfig(vocab, config.buckets, 0.0, max_pieces), w[:vocab],
                        w[vocab:], float(bias.detach()[0]))


def stack_weight(model_log_odds: np.ndarray, evidence_log_odds: np.ndarray,
                 is_command: np.ndarray) -> float:
    """How much one unit of the evidence's log-odds is worth against one of the model's: the
    ratio of their coefficients in a logistic regression of `is_command` on both (0 when the
    evidence adds nothing, or the fit gives the model no positive weight), at most
    MAX_WEIGHT."""
    import torch

    x = torch.tensor(np.stack([np.clip(model_log_odds, -30, 30),
                               np.clip(evidence_log_odds, -30, 30)], 1), dtype=torch.float64)
    y = torch.tensor(np.asarray(is_command, np.float64))
    coef = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([coef], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = x @ coef[:2] + coef[2]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    a, b = (float(v) for v in coef.detach()[:2])
    return min(MAX_WEIGHT, b / a) if a > 0 and b > 0 else 0.0


def with_weight(evidence: WordEvidence, weight: float) -> WordEvidence:
    """The same evidence, weighed `weight` against the model."""
    return WordEvidence(replace(evidence.config, weight=float(weight)), evidence.pieces,
                        evidence.pairs, evidence.bias)
