"""Quantized variants of a float TFLite student.

- `int8`, `int4`: dynamic range (weights int8 / channel-wise int4, activations float) through
  the LiteRT quantizer, over every FULLY_CONNECTED, BATCH_MATMUL and EMBEDDING_LOOKUP weight,
  the token embedding table included (export.py rewrites GATHER so the quantizer reaches it).
- `int8-full`: full-integer int8 (int8 activations too, calibrated on representative
  sentences) through TensorFlow's converter: the only kind TensorFlow Lite Micro runs, offered
  with its measured accuracy (often worse on small transformers; the gate decides).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np

#: Variant name -> LiteRT quantizer recipe function name.
DYNAMIC_RECIPES: Dict[str, str] = {"int8": "dynamic_wi8_afp32", "int4": "dynamic_wi4_afp32"}
#: Every variant `edge-slm convert --quant` accepts.
VARIANTS = ("float", "int8", "int4", "int8-full")


def dynamic(float_flat: bytes, variant: str) -> bytes:
    """Dynamic-range quantization of every weight (`variant` is "int8" or "int4")."""
    if variant not in DYNAMIC_RECIPES:
        raise ValueError(f"unknown dynamic variant {variant!r}; choose from "
                         f"{', '.join(DYNAMIC_RECIPES)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(float_flat)
    q.load_quantization_recipe(getattr(recipe, DYNAMIC_RECIPES[variant])())
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = q.quantize()
    return bytes(result.quantized_model)


def full_integer(model: Any, representative: np.ndarray) -> bytes:
    """Full-integer int8 (weights and activations), calibrated on `representative` id rows."""
    import tensorflow as tf

    from .export import SIGNATURE, export_saved_model

    def samples() -> Callable[[], Any]:
        for row in representative:
            yield {"ids": row[None, :].astype(np.int32)}

    with tempfile.TemporaryDirectory(prefix="edge-slm-int8-") as tmp:
        export_saved_model(model, Path(tmp) / "saved")
        conv = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "saved"),
                                                        signature_keys=[SIGNATURE])
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = samples
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # int8 GATHER is already quantized by TensorFlow here: no rewrite
        return bytes(conv.convert())
