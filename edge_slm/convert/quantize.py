"""Quantized variants of a float TFLite student.

- `int8`, `int4`: dynamic range (weights int8 / int4 per channel, activations float) through
  the LiteRT quantizer, over every FULLY_CONNECTED and EMBEDDING_LOOKUP weight, the token
  embedding table included (export.py rewrites GATHER so the quantizer reaches it). int4
  scales are chosen by the quantizer's MSE search, not min/max: on the dev set of real
  commands min/max int4 lost 0.55 points of intent accuracy, MSE 0.41 (the same on the
  held-out templates as float).
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
from typing import TYPE_CHECKING, Dict, Iterator, Tuple

import numpy as np

if TYPE_CHECKING:
    from ..model.student import Student

#: Variant name -> (weight bits, LiteRT quantizer algorithm).
DYNAMIC_RECIPES: Dict[str, Tuple[int, str]] = {"int8": (8, "min_max_uniform_quantize"),
                                               "int4": (4, "MSE")}
#: Every variant `edge-slm convert --quant` accepts.
VARIANTS = ("float", "int8", "int4", "int8-full")


def dynamic(float_flat: bytes, variant: str) -> bytes:
    """Dynamic-range quantization of every weight (`variant` is "int8" or "int4")."""
    if variant not in DYNAMIC_RECIPES:
        raise ValueError(f"unknown dynamic variant {variant!r}; choose from "
                         f"{', '.join(DYNAMIC_RECIPES)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe_manager

    bits, algorithm = DYNAMIC_RECIPES[variant]
    rm = recipe_manager.RecipeManager()
    rm.add_dynamic_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                          num_bits=bits, granularity=qtyping.QuantGranularity.CHANNELWISE,
                          algorithm_key=algorithm_manager.AlgorithmName(algorithm))
    q = quantizer.Quantizer(float_flat)
    q.load_quantization_recipe(rm.get_quantization_recipe())
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = q.quantize()
    return bytes(result.quantized_model)


def full_integer(model: Student, representative: np.ndarray) -> bytes:
    """Full-integer int8 (weights and activations), calibrated on `representative` id rows."""
    import tensorflow as tf

    from .export import SIGNATURE, export_saved_model

    def samples() -> Iterator[Dict[str, np.ndarray]]:
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
