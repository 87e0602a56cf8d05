"""Training the student: hard labels plus temperature-scaled KL to the teacher's distributions.

    loss = alpha * [CE(intent) + f * CE(frame) + s * CE(tags)]        (sentences with labels)
         + (1 - alpha) * T^2 * [KL(intent) + f * KL(frame) + s * KL(tags)]   (teacher's view)

(KL(p_t || p_s) per head; f = `frame_weight`, s = `slot_weight`.)

Teacher slot distributions are stored per real token only (`SoftLabels.tag_probs` is ragged,
row `i` at `tag_rows[i]:tag_rows[i+1]`), which keeps 100k sentences in ~150 MB of float16.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

import numpy as np

from .data import Batch, length_batches, row_lengths
from .student import Student

if TYPE_CHECKING:
    import tensorflow as tf

_LOGGER = logging.getLogger(__name__)


@dataclass
class DistillConfig:
    """How the student is trained."""

    epochs: float = 5.0
    """Passes over the training rows (fractions allowed)."""
    batch_size: int = 32
    """Rows per step."""
    lr: float = 1.5e-3
    """Peak learning rate (AdamW), after a linear warm-up, then cosine decay to 5%."""
    warmup_frac: float = 0.05
    """Share of steps spent warming up."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    alpha: float = 0.5
    """Weight of the hard-label loss; 1 - alpha goes to distillation (when a teacher exists)."""
    temperature: float = 2.0
    """Distillation temperature."""
    slot_weight: float = 2.0
    """Weight of the slot terms relative to the intent terms."""
    frame_weight: float = 1.0
    """Weight of the frame terms (fixed slots, the satellite's area) relative to the intent
    terms."""
    seed: int = 0
    """Shuffling and initialization seed."""


@dataclass
class SoftLabels:
    """The teacher's predictions for rows of a Batch."""

    intent_probs: np.ndarray
    """(N, I) float16 intent distribution."""
    tag_probs: np.ndarray
    """(sum of real tokens, K) float16 tag distributions, per student token."""
    tag_rows: np.ndarray
    """(N + 1,) int64 row starts into tag_probs."""
    frame_probs: Optional[np.ndarray] = None
    """(N, F) float16 frame distribution (None: the teacher has no frame head)."""

    def dense_tags(self, rows: np.ndarray, max_len: int) -> np.ndarray:
        """(len(rows), max_len, K) float32 with the distributions at positions 1..n."""
        k = self.tag_probs.shape[1]
        out = np.zeros((len(rows), max_len, k), dtype=np.float32)
        for j, r in enumerate(rows):
            a, b = self.tag_rows[r], self.tag_rows[r + 1]
            n = min(b - a, max_len - 1)
            out[j, 1:1 + n] = self.tag_probs[a:a + n]
        return out


def kd_kl(student_logits: tf.Tensor, teacher_probs: tf.Tensor, temperature: float) -> tf.Tensor:
    """KL(teacher || student) per row over the last axis, both softened by T, times T^2."""
    import tensorflow as tf

    T = temperature
    t = tf.nn.softmax(tf.math.log(tf.maximum(teacher_probs, 1e-8)) / T, axis=-1)
    kl = tf.reduce_sum(t * (tf.math.log(tf.maximum(t, 1e-8))
                            - tf.nn.log_softmax(student_logits / T, axis=-1)), -1)
    return kl * T * T


def kd_terms(student_intent: tf.Tensor, student_tags: tf.Tensor, t_intent: tf.Tensor,
             t_tags: tf.Tensor, tok_mask: tf.Tensor,
             temperature: float) -> Tuple[tf.Tensor, tf.Tensor]:
    """(intent KL, tag KL) per row, each scaled by T^2; zero when the student equals the teacher.

    `t_intent`/`t_tags` are probabilities at temperature 1; both sides are softened by T.
    """
    import tensorflow as tf

    T = temperature
    kl_i = kd_kl(student_intent, t_intent, T)
    t_tag = tf.nn.softmax(tf.math.log(tf.maximum(t_tags, 1e-8)) / T, axis=-1)
    kl_t = tf.reduce_sum(t_tag * (tf.math.log(tf.maximum(t_tag, 1e-8))
                                  - tf.nn.log_softmax(student_tags / T, axis=-1)), -1)
    kl_t = tf.reduce_sum(kl_t * tok_mask, -1) / tf.maximum(tf.reduce_sum(tok_mask, -1), 1.0)
    return kl_i, kl_t * T * T


def fit(model: Student, data: Batch, config: DistillConfig,
        soft: Optional[SoftLabels] = None, hard_mask: Optional[np.ndarray] = None,
        progress: bool = True, desc: str = "student",
        on_epoch: Optional[Callable[[int, Dict[str, float]], None]] = None) -> Dict[str, float]:
    """Train `model` in place on `data` (and the teacher's `soft` labels if given)."""
    import tensorflow as tf

    n = len(data)
    if hard_mask is None:
        hard_mask = np.ones((n,), dtype=np.float32)
    steps_per_epoch = max(1, n // config.batch_size)
    total = max(1, int(round(config.epochs * steps_per_epoch)))
    warm = max(1, int(total * config.warmup_frac))

    def lr_at(step: int) -> float:
        if step < warm:
            return config.lr * (step + 1) / warm
        p = (step - warm) / max(1, total - warm)
        return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))

    opt = tf.keras.optimizers.AdamW(learning_rate=config.lr, weight_decay=config.weight_decay,
                                    clipnorm=1.0)
    alpha = config.alpha if soft is not None else 1.0
    use_kd = soft is not None
    sw = config.slot_weight

    fw = config.frame_weight
    frame_probs = soft.frame_probs if soft is not None else None
    kd_frames = frame_probs is not None

    def spec(rank: int, dtype: tf.DType) -> tf.TensorSpec:
        return tf.TensorSpec([None] * rank, dtype)

    # One graph for every batch length (batches are trimmed to their longest row).
    @tf.function(input_signature=[spec(2, tf.int32), spec(1, tf.int32), spec(1, tf.int32),
                                  spec(2, tf.int32), spec(1, tf.float32), spec(2, tf.float32),
                                  spec(3, tf.float32), spec(2, tf.float32), spec(0, tf.float32)])
    def step(ids, intents, frames, tags, hw, t_int, t_tags, t_frames, lr):
        opt.learning_rate.assign(lr)
        with tf.GradientTape() as tape:
            li, ls, lf = model(ids, training=True)
            tag_mask = tf.cast(tags >= 0, tf.float32)
            ce_i = tf.keras.losses.sparse_categorical_crossentropy(intents, li, from_logits=True)
            ce_f = tf.keras.losses.sparse_categorical_crossentropy(frames, lf, from_logits=True)
            ce_t = tf.keras.losses.sparse_categorical_crossentropy(
                tf.maximum(tags, 0), ls, from_logits=True)
            ce_t = tf.reduce_sum(ce_t * tag_mask, -1) / tf.maximum(tf.reduce_sum(tag_mask, -1), 1.)
            hard = tf.reduce_sum((ce_i + fw * ce_f + sw * ce_t) * hw) / tf.maximum(
                tf.reduce_sum(hw), 1.0)
            loss = alpha * hard
            if use_kd:
                pos = tf.range(tf.shape(ids)[1])[None, :] > 0
                tok_mask = tf.cast(tf.logical_and(ids != 0, pos), tf.float32)
                kl_i, kl_t = kd_terms(li, ls, t_int, t_tags, tok_mask, config.temperature)
                kl = kl_i + sw * kl_t
                if kd_frames:
                    kl = kl + fw * kd_kl(lf, t_frames, config.temperature)
                loss = loss + (1 - alpha) * tf.reduce_mean(kl)
        grads = tape.gradient(loss, model.trainable_weights)
        opt.apply_gradients(zip(grads, model.trainable_weights))
        return loss

    rng = np.random.default_rng(config.seed)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit="step", mininterval=1.0)
    k = soft.tag_probs.shape[1] if soft is not None else 1
    dummy_int = np.zeros((config.batch_size, 1), np.float32)
    dummy_tags = np.zeros((config.batch_size, 1, k), np.float32)
    frames = (data.frames if data.frames is not None else np.zeros((n,), np.int32)
              ).astype(np.int32)
    ids, intents, tags = (a.astype(np.int32) for a in (data.ids, data.intents, data.tags))
    hard_mask = hard_mask.astype(np.float32)
    lengths = row_lengths(data.ids)
    done, t0, ema = 0, time.perf_counter(), None
    epoch = 0
    while done < total:
        for rows in length_batches(rng, lengths, config.batch_size, steps_per_epoch):
            if done >= total:
                break
            t = int(lengths[rows].max())  # padding beyond the longest row is masked anyway
            if soft is not None:
                t_int = soft.intent_probs[rows].astype(np.float32)
                t_tags = soft.dense_tags(rows, t)
            else:
                t_int, t_tags = dummy_int[:len(rows)], dummy_tags[:len(rows)]
            t_frames = (frame_probs[rows].astype(np.float32) if frame_probs is not None
                        else dummy_int[:len(rows)])
            loss = float(step(ids[rows, :t], intents[rows], frames[rows], tags[rows, :t],
                              hard_mask[rows], t_int, t_tags, t_frames,
                              np.float32(lr_at(done))))
            ema = loss if ema is None else 0.98 * ema + 0.02 * loss
            done += 1
            if bar is not None:
                bar.update(1)
                if done % 50 == 0:
                    bar.set_postfix(loss=f"{ema:.4f}")
        epoch += 1
        if on_epoch is not None:
            on_epoch(epoch, {"loss": float(ema or 0.0)})
    if bar is not None:
        bar.close()
    return {"steps": float(total), "loss": float(ema or 0.0),
            "seconds": time.perf_counter() - t0}


def predict(model: Student, ids: np.ndarray, batch_size: int = 512
            ) -> Tuple[np.ndarray, np.ndarray]:
    """(intent logits (N, I), tag logits (N, T, K)) as numpy, in inference mode."""
    li, lt, _ = predict_all(model, ids, batch_size)
    return li, lt


def predict_all(model: Student, ids: np.ndarray, batch_size: int = 512
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(intent logits (N, I), tag logits (N, T, K), frame logits (N, F)), inference mode."""
    outs: List[List[np.ndarray]] = [[], [], []]
    for a in range(0, len(ids), batch_size):
        for out, part in zip(outs, model(ids[a:a + batch_size], training=False)):
            out.append(np.asarray(part))
    return np.concatenate(outs[0]), np.concatenate(outs[1]), np.concatenate(outs[2])
