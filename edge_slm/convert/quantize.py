"""Quantized variants of a float TFLite student.

- `int8`, `int4`: dynamic range (weights int8 / int4 per channel, activations float) through
  the LiteRT quantizer, over every FULLY_CONNECTED and EMBEDDING_LOOKUP weight, the token
  embedding table included (export.py rewrites GATHER so the quantizer reaches it). int4
  scales are chosen by the quantizer's MSE search, not min/max: on the dev set of real
  commands min/max int4 lost 0.55 points of intent accuracy, MSE 0.41 (the same on the
  held-out templates as float). With `block` (int4 only) each FULLY_CONNECTED weight whose
  input width divides by it gets a scale per `block` inputs of each output channel instead of
  one per channel (min/max within a block: the quantizer's MSE search is channel-wise only);
  the others, and the embedding table, stay channel-wise MSE.
- `int8-full`: full-integer int8 (int8 activations too, calibrated on representative
  sentences) through TensorFlow's converter: the only kind TensorFlow Lite Micro runs, offered
  with its measured accuracy (often worse on small transformers; the gate decides).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator, List, Tuple

import numpy as np

if TYPE_CHECKING:
    from ..model.student import Student

#: Variant name -> (weight bits, LiteRT quantizer algorithm).
DYNAMIC_RECIPES: Dict[str, Tuple[int, str]] = {"int8": (8, "min_max_uniform_quantize"),
                                               "int4": (4, "MSE")}
#: Every variant `edge-slm convert --quant` accepts.
VARIANTS = ("float", "int8", "int4", "int8-full")
#: Block sizes (inputs per scale) the LiteRT quantizer offers for int4 weights; 0: per channel.
INT4_BLOCKS = (0, 32, 64, 128, 256)


def unblockable_scopes(float_flat: bytes, block: int) -> List[str]:
    """The quantizer's scope names (output tensor names, each followed by ";") of the
    FULLY_CONNECTED ops of `float_flat` whose weight's input width does not divide by `block`:
    those cannot be quantized in blocks of that size."""
    from ai_edge_quantizer.utils.tfl_flatbuffer_utils import get_op_scope
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    model = fbu.convert_bytearray_to_object(bytearray(float_flat))
    scopes = []
    for graph in model.subgraphs:
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            if builtin != schema.BuiltinOperator.FULLY_CONNECTED or len(op.inputs) < 2:
                continue
            shape = graph.tensors[op.inputs[1]].shape
            if shape is not None and len(shape) and int(shape[-1]) % block:
                scopes.append(get_op_scope(op, graph.tensors))
    return scopes


def dynamic(float_flat: bytes, variant: str, block: int = 0) -> bytes:
    """Dynamic-range quantization of every weight (`variant` is "int8" or "int4"; `block`, for
    int4 only, quantizes FULLY_CONNECTED weights in blocks of that many inputs)."""
    if variant not in DYNAMIC_RECIPES:
        raise ValueError(f"unknown dynamic variant {variant!r}; choose from "
                         f"{', '.join(DYNAMIC_RECIPES)}")
    if block not in INT4_BLOCKS or (block and variant != "int4"):
        raise ValueError(f"block {block!r}: int4 takes one of {', '.join(map(str, INT4_BLOCKS))} "
                         "(0 = per channel); int8 is per channel only")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe_manager

    bits, algorithm = DYNAMIC_RECIPES[variant]
    rm = recipe_manager.RecipeManager()
    rm.add_dynamic_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                          num_bits=bits, granularity=qtyping.QuantGranularity.CHANNELWISE,
                          algorithm_key=algorithm_manager.AlgorithmName(algorithm))
    if block:
        fc = qtyping.TFLOperationName.FULLY_CONNECTED
        # later configs win where their scopes match: blocks, then per channel where they
        # cannot be had
        rm.add_dynamic_config(regex=".*", operation_name=fc, num_bits=bits,
                              granularity=qtyping.QuantGranularity(f"BLOCKWISE_{block}"),
                              algorithm_key=algorithm_manager.AlgorithmName.MIN_MAX_UNIFORM_QUANT)
        for scope in unblockable_scopes(float_flat, block):
            rm.add_dynamic_config(regex="^" + re.escape(scope) + "$", operation_name=fc,
                                  num_bits=bits,
                                  granularity=qtyping.QuantGranularity.CHANNELWISE,
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
