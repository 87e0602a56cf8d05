"""Structured pruning: whole attention heads, FFN channels and unused vocabulary.

Importance is measured, not guessed: a head's importance is the rise of the validation loss
when that head alone is masked out; an FFN channel's is the first-order Taylor estimate
|sum(w * dL/dw)| over its input and output weights; a token is unused when the training texts
never produce it. The result is a new, smaller `Student` (fewer heads, narrower FFNs, a
smaller embedding table) with the surviving weights copied in, and a matching tokenizer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from .data import Batch
from .student import Student, build_student

_LOGGER = logging.getLogger(__name__)


@dataclass
class PruneConfig:
    """How much to remove."""

    head_fraction: float = 0.25
    """Share of all attention heads removed (at least one head stays in each layer)."""
    ffn_fraction: float = 0.3
    """Share of each layer's FFN channels removed."""
    ffn_multiple: int = 8
    """Each layer keeps a multiple of this many FFN channels: int4 kernels pack two weights a
    byte and SIMD kernels work in whole vectors (a width of 403 ran the int4 model 3 times
    slower than int8; 400 does not)."""
    prune_vocab: bool = True
    """Drop tokens that the training texts never produce."""
    eval_rows: int = 2000
    """Validation rows used to measure importance."""


def _loss(model: Student, batch: Batch, head_masks: Optional[List[np.ndarray]] = None) -> float:
    import tensorflow as tf

    li, lt, lf = model(batch.ids, training=False, head_masks=head_masks)
    ce_i = tf.keras.losses.sparse_categorical_crossentropy(batch.intents, li, from_logits=True)
    ce_i += tf.keras.losses.sparse_categorical_crossentropy(batch.frames, lf, from_logits=True)
    mask = tf.cast(batch.tags >= 0, tf.float32)
    ce_t = tf.keras.losses.sparse_categorical_crossentropy(tf.maximum(batch.tags, 0), lt,
                                                           from_logits=True)
    ce_t = tf.reduce_sum(ce_t * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
    return float(tf.reduce_mean(ce_i) + ce_t)


def head_importance(model: Student, batch: Batch) -> List[np.ndarray]:
    """Per layer, the loss increase when each head is masked alone."""
    ones = [np.ones((h,), np.float32) for h in model.config.n_heads]
    base = _loss(model, batch, ones)
    out = []
    for i, h in enumerate(model.config.n_heads):
        scores = np.zeros((h,), np.float32)
        for j in range(h):
            masks = [m.copy() for m in ones]
            masks[i][j] = 0.0
            scores[j] = _loss(model, batch, masks) - base
        out.append(scores)
    return out


def ffn_importance(model: Student, batch: Batch) -> List[np.ndarray]:
    """Per layer, the Taylor importance of each FFN channel."""
    import tensorflow as tf

    blocks = model.blocks
    watched = [w for b in blocks for w in (b.w1, b.b1, b.w2)]
    with tf.GradientTape() as tape:
        li, lt, lf = model(batch.ids, training=False)
        ce_i = tf.keras.losses.sparse_categorical_crossentropy(batch.intents, li, from_logits=True)
        ce_i += tf.keras.losses.sparse_categorical_crossentropy(batch.frames, lf,
                                                                from_logits=True)
        mask = tf.cast(batch.tags >= 0, tf.float32)
        ce_t = tf.keras.losses.sparse_categorical_crossentropy(tf.maximum(batch.tags, 0), lt,
                                                               from_logits=True)
        loss = tf.reduce_mean(ce_i) + tf.reduce_sum(ce_t * mask) / tf.maximum(
            tf.reduce_sum(mask), 1.0)
    grads = tape.gradient(loss, watched)
    out = []
    for i, b in enumerate(blocks):
        g1, gb1, g2 = (np.asarray(g) for g in grads[3 * i:3 * i + 3])
        w1, b1, w2 = np.asarray(b.w1), np.asarray(b.b1), np.asarray(b.w2)
        score = (np.abs((w1 * g1).sum(0)) + np.abs(b1 * gb1) + np.abs((w2 * g2).sum(1)))
        out.append(score)
    return out


def used_tokens(ids_batches: Iterable[np.ndarray], vocab_size: int,
                keep: Iterable[int]) -> np.ndarray:
    """Sorted ids that occur in `ids_batches` or are in `keep`."""
    used = np.zeros((vocab_size,), bool)
    for ids in ids_batches:
        used[np.unique(ids)] = True
    used[list(keep)] = True
    return np.flatnonzero(used)


def prune_tokenizer_json(tokenizer_json: str, kept_ids: np.ndarray) -> str:
    """The tokenizer.json with only `kept_ids`, renumbered in order."""
    data = json.loads(tokenizer_json)
    inv = {i: t for t, i in data["model"]["vocab"].items()}
    data["model"]["vocab"] = {inv[int(old)]: new for new, old in enumerate(kept_ids)}
    for tok in data.get("added_tokens") or []:
        tok["id"] = data["model"]["vocab"].get(tok["content"], tok["id"])
    return json.dumps(data, ensure_ascii=False)


def prune(model: Student, val: Batch, config: PruneConfig, train_ids: Iterable[np.ndarray],
          keep_tokens: Iterable[int]) -> Tuple[Student, np.ndarray, Dict[str, Any]]:
    """A smaller student; also the kept vocabulary ids (old numbering) and a report."""
    c = model.config
    rows = min(len(val), config.eval_rows)
    sub = Batch(val.ids[:rows], val.intents[:rows], val.tags[:rows], val.offsets[:rows],
                val.frames[:rows] if val.frames is not None else None)
    h_imp = head_importance(model, sub)
    f_imp = ffn_importance(model, sub)

    # Heads: remove the globally least important, keeping at least one per layer.
    n_remove = int(round(config.head_fraction * sum(c.n_heads)))
    ranked = sorted((float(s), i, j) for i, sc in enumerate(h_imp) for j, s in enumerate(sc))
    keep_heads = [list(range(h)) for h in c.n_heads]
    for _, i, j in ranked:
        if n_remove == 0:
            break
        if len(keep_heads[i]) > 1:
            keep_heads[i].remove(j)
            n_remove -= 1
    keep_ffn = []
    step = max(1, config.ffn_multiple)
    for i, sc in enumerate(f_imp):
        n_keep = max(step, int(round(c.ffn_dims[i] * (1 - config.ffn_fraction) / step)) * step)
        n_keep = min(n_keep, c.ffn_dims[i])
        keep_ffn.append(np.sort(np.argsort(-sc)[:n_keep]))
    kept_vocab = (used_tokens(train_ids, c.vocab_size, keep_tokens) if config.prune_vocab
                  else np.arange(c.vocab_size))

    new_cfg = replace(c, n_heads=[len(k) for k in keep_heads],
                      ffn_dims=[len(k) for k in keep_ffn], vocab_size=int(len(kept_vocab)))
    small = build_student(new_cfg)
    small.tok_emb.embeddings.assign(np.asarray(model.tok_emb.embeddings)[kept_vocab])
    small.pos_emb.assign(np.asarray(model.pos_emb))
    hd = c.head_dim
    for i, (big, little) in enumerate(zip(model.blocks, small.blocks)):
        cols = np.concatenate([np.arange(h * hd, (h + 1) * hd) for h in keep_heads[i]])
        for name in ("wq", "wk", "wv"):
            getattr(little, name).assign(np.asarray(getattr(big, name))[:, cols])
        for name in ("bq", "bk", "bv"):
            getattr(little, name).assign(np.asarray(getattr(big, name))[cols])
        little.wo.assign(np.asarray(big.wo)[cols, :])
        little.bo.assign(np.asarray(big.bo))
        f = keep_ffn[i]
        little.w1.assign(np.asarray(big.w1)[:, f])
        little.b1.assign(np.asarray(big.b1)[f])
        little.w2.assign(np.asarray(big.w2)[f, :])
        little.b2.assign(np.asarray(big.b2))
        for ln in ("ln1", "ln2"):
            for a, b in zip(getattr(big, ln).weights, getattr(little, ln).weights):
                b.assign(np.asarray(a))
    for big_l, little_l in ((model.ln_f, small.ln_f), (model.intent_head, small.intent_head),
                            (model.slot_head, small.slot_head),
                            (model.frame_head, small.frame_head)):
        for a, b in zip(big_l.weights, little_l.weights):
            b.assign(np.asarray(a))
    report = {
        "heads_before": list(c.n_heads), "heads_after": new_cfg.n_heads,
        "ffn_before": list(c.ffn_dims), "ffn_after": new_cfg.ffn_dims,
        "vocab_before": c.vocab_size, "vocab_after": new_cfg.vocab_size,
        "head_importance": [s.round(5).tolist() for s in h_imp],
    }
    _LOGGER.info("pruned: %s", report)
    return small, kept_vocab, report


def remap_ids(ids: np.ndarray, kept_vocab: np.ndarray, unk_new: int) -> np.ndarray:
    """Token ids in the old numbering -> the pruned numbering (dropped tokens -> [UNK])."""
    table = np.full((int(kept_vocab.max()) + 1 if len(kept_vocab) else 1,), unk_new, np.int32)
    table[kept_vocab] = np.arange(len(kept_vocab), dtype=np.int32)
    out = np.where(ids < len(table), table[np.minimum(ids, len(table) - 1)], unk_new)
    return out.astype(np.int32)
