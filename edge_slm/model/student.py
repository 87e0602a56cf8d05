"""The student: a tiny pre-LN transformer encoder with intent, frame and slot heads.

    ids (B, T) -> token + position embeddings (B, T, D)
               -> n_layers x [x + MHA(LN(x)); x + FFN(LN(x))]
               -> LN -> intent logits from [CLS] (B, I), slot logits per token (B, T, K),
                        frame logits from [CLS] (B, F): the fixed slots and context a
                        sentence implies (edge_slm/runtime/labels.py)

Heads and FFN widths are per layer (`n_heads[i]`, `ffn_dims[i]`), so structured pruning yields
a genuinely smaller model of the same class. Defined in Keras so it converts to TFLite.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import ops  # noqa: E402

if TYPE_CHECKING:
    import tensorflow as tf

MASK_NEG = -1e9


@dataclass
class ModelConfig:
    """Sizes of the student; saved in every checkpoint and bundle."""

    vocab_size: int = 3000
    """Tokens in the WordPiece vocabulary."""
    max_len: int = 32
    """Sequence length including [CLS]."""
    d_model: int = 160
    """Width of the residual stream."""
    n_heads: List[int] = field(default_factory=lambda: [5, 5, 5, 5])
    """Attention heads of each layer (the number of layers is its length)."""
    head_dim: int = 32
    """Width of one head."""
    ffn_dims: List[int] = field(default_factory=lambda: [576, 576, 576, 576])
    """Hidden width of each layer's feed-forward block."""
    n_intents: int = 2
    """Intent classes including "no intent"."""
    n_tags: int = 1
    """BIO slot tags including O."""
    n_frames: int = 1
    """Frames (fixed slots and context) including the empty one."""
    dropout: float = 0.0
    """Dropout in training."""

    @property
    def n_layers(self) -> int:
        """Number of transformer blocks."""
        return len(self.n_heads)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ModelConfig":
        """Inverse of to_dict (unknown keys are an error)."""
        return cls(**data)


class Block(keras.layers.Layer):
    """One pre-LN transformer block with explicit per-head weights."""

    def __init__(self, d_model: int, n_heads: int, head_dim: int, ffn_dim: int,
                 dropout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.d_model, self.n_heads = d_model, n_heads
        self.head_dim, self.ffn_dim = head_dim, ffn_dim
        inner = n_heads * head_dim
        init = keras.initializers.TruncatedNormal(stddev=0.02)
        self.ln1 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln1")
        self.ln2 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln2")
        self.wq = self.add_weight(name="wq", shape=(d_model, inner), initializer=init)
        self.wk = self.add_weight(name="wk", shape=(d_model, inner), initializer=init)
        self.wv = self.add_weight(name="wv", shape=(d_model, inner), initializer=init)
        self.bq = self.add_weight(name="bq", shape=(inner,), initializer="zeros")
        self.bk = self.add_weight(name="bk", shape=(inner,), initializer="zeros")
        self.bv = self.add_weight(name="bv", shape=(inner,), initializer="zeros")
        self.wo = self.add_weight(name="wo", shape=(inner, d_model), initializer=init)
        self.bo = self.add_weight(name="bo", shape=(d_model,), initializer="zeros")
        self.w1 = self.add_weight(name="w1", shape=(d_model, ffn_dim), initializer=init)
        self.b1 = self.add_weight(name="b1", shape=(ffn_dim,), initializer="zeros")
        self.w2 = self.add_weight(name="w2", shape=(ffn_dim, d_model), initializer=init)
        self.b2 = self.add_weight(name="b2", shape=(d_model,), initializer="zeros")
        self.drop = keras.layers.Dropout(dropout)

    def build(self, input_shape: Tuple[Optional[int], ...]) -> None:
        self.ln1.build(input_shape)
        self.ln2.build(input_shape)
        super().build(input_shape)

    def call(self, x: tf.Tensor, mask_bias: tf.Tensor, head_mask: Optional[tf.Tensor] = None,
             training: bool = False) -> tf.Tensor:
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        h, hd = self.n_heads, self.head_dim
        y = self.ln1(x)

        def heads(w: keras.Variable, bias: keras.Variable) -> tf.Tensor:
            # (B, T, D) -> (B, H, T, hd)
            z = ops.matmul(y, w) + bias
            return ops.transpose(ops.reshape(z, (b, t, h, hd)), (0, 2, 1, 3))

        q, k, v = heads(self.wq, self.bq), heads(self.wk, self.bk), heads(self.wv, self.bv)
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * (hd ** -0.5)  # (B, H, T, T)
        att = ops.softmax(scores + mask_bias, axis=-1)
        att = self.drop(att, training=training)
        ctx = ops.matmul(att, v)  # (B, H, T, hd)
        if head_mask is not None:  # (H,) used to measure head importance
            ctx = ctx * ops.reshape(head_mask, (1, h, 1, 1))
        ctx = ops.reshape(ops.transpose(ctx, (0, 2, 1, 3)), (b, t, h * hd))
        x = x + self.drop(ops.matmul(ctx, self.wo) + self.bo, training=training)
        y = self.ln2(x)
        f = ops.gelu(ops.matmul(y, self.w1) + self.b1, approximate=True)  # (B, T, F)
        return x + self.drop(ops.matmul(f, self.w2) + self.b2, training=training)


class Student(keras.Model):
    """The tiny joint intent/slot transformer."""

    def __init__(self, config: ModelConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        c = config
        init = keras.initializers.TruncatedNormal(stddev=0.02)
        self.tok_emb = keras.layers.Embedding(c.vocab_size, c.d_model, embeddings_initializer=init,
                                              name="tok_emb")
        self.pos_emb = self.add_weight(name="pos_emb", shape=(c.max_len, c.d_model),
                                       initializer=init)
        self.blocks = [Block(c.d_model, c.n_heads[i], c.head_dim, c.ffn_dims[i], c.dropout,
                             name=f"block{i}") for i in range(c.n_layers)]
        self.ln_f = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_f")
        self.intent_head = keras.layers.Dense(c.n_intents, kernel_initializer=init,
                                              name="intent_head")
        self.slot_head = keras.layers.Dense(c.n_tags, kernel_initializer=init, name="slot_head")
        self.frame_head = keras.layers.Dense(c.n_frames, kernel_initializer=init,
                                             name="frame_head")
        self.drop = keras.layers.Dropout(c.dropout)

    def call(self, ids: tf.Tensor, training: bool = False,
             head_masks: Optional[Sequence[tf.Tensor]] = None
             ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        t = ops.shape(ids)[1]
        x = self.tok_emb(ids) + self.pos_emb[None, :t, :]  # (B, T, D)
        x = self.drop(x, training=training)
        pad = ops.cast(ops.equal(ids, 0), "float32")  # (B, T)
        mask_bias = pad[:, None, None, :] * MASK_NEG  # (B, 1, 1, T)
        for i, block in enumerate(self.blocks):
            hm = None if head_masks is None else head_masks[i]
            x = block(x, mask_bias, head_mask=hm, training=training)
        x = self.ln_f(x)
        cls = x[:, 0, :]
        return self.intent_head(cls), self.slot_head(x), self.frame_head(cls)  # (B,I) (B,T,K) (B,F)


def build_student(config: ModelConfig, seed: Optional[int] = None) -> Student:
    """A freshly initialized student, built (weights exist) for `config.max_len`; the same
    weights for the same `seed` (Keras' random state is seeded first)."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = Student(config)
    model(ops.zeros((1, config.max_len), dtype="int32"))
    return model


def count_params(model: keras.Model) -> int:
    """Trainable parameters, embeddings included."""
    return int(sum(int(ops.size(w)) for w in model.trainable_weights))
