"""A bundle's own model back to float, one model per sentence length: what the converter
quantizes again when the float checkpoint is gone (`edge-slm convert --bundle`).

    bundle model.tflite (float, or int8 dynamic range: int8 weights, one scale per channel)
        ─► every int8 weight times its channel's scale, stored as float32 (exactly the values
           the int8 model computes with)
        ─► one single-signature model per length (`serve`, `serve_16`, ...: signatures.py)
                                     ─► the converter's int8 / int4 path, as from a checkpoint

Re-quantizing int8 weights to int4 rounds twice: each int4 weight may be off by half an
int8 step more than when rounded from float, 1/36 of a per-channel int4 step (254 levels
against 14 over the same range; relatively more in a block whose weights are all small):
small beside int4's own rounding. From an int4 or a
full-integer model it would compound coarse errors or miss the activations' ranges; those
are refused.
"""

from __future__ import annotations

import copy
from typing import Any, Dict

import numpy as np

from ..errors import ConfigError
from ..runtime.model import SIGNATURE
from .signatures import _inline

#: Bundle kinds whose model can be brought back to float here.
SOURCES = ("float", "int8")


def dequantized_lengths(flat: bytes, quantization: str) -> Dict[int, bytes]:
    """{sentence length: a float single-signature model (`serve`)} from a bundle's model
    `flat` (its manifest's `quantization` in SOURCES)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    if quantization not in SOURCES:
        raise ConfigError(f"a {quantization} bundle cannot be quantized again: its weights "
                          "lost more than int4 keeps, or its activations' ranges are fixed; "
                          f"start from a {' or '.join(SOURCES)} bundle")
    try:
        if flat[4:8] != b"TFL3":  # the flatbuffer's file identifier
            raise ValueError("no TFL3 identifier")
        # constants the LiteRT quantizer stored after the flatbuffer, brought inside
        model = _inline(fbu.convert_bytearray_to_object(bytearray(flat)), flat)
        if not model.subgraphs:
            raise ValueError("no subgraphs")
    except Exception as err:  # flatbuffers raises whatever a damaged buffer leads it to
        raise ConfigError(f"the bundle's model.tflite is not a TFLite model ({err})") from None
    floats: Dict[int, Any] = {}  # buffer -> its float32 bytes (buffers are shared by lengths)
    for graph in model.subgraphs:
        for t in graph.tensors:
            data = model.buffers[t.buffer].data
            if t.type == schema.TensorType.FLOAT32 or data is None or not len(data):
                continue
            q = t.quantization
            if t.type != schema.TensorType.INT8 or q is None or q.scale is None:
                continue  # integer constants (shapes, axes) stay as they are
            if t.buffer not in floats:
                values = np.frombuffer(bytes(data), np.int8).reshape(t.shape).astype(np.float32)
                scale = np.asarray(q.scale, np.float32)
                zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.float32)
                shape = [1] * values.ndim
                if scale.size > 1:
                    shape[q.quantizedDimension] = -1
                values = (values - zero.reshape(shape)) * scale.reshape(shape)
                floats[t.buffer] = np.frombuffer(values.astype(np.float32).tobytes(), np.uint8)
            t.type, t.quantization = schema.TensorType.FLOAT32, None
    for index, data in floats.items():
        model.buffers[index].data = data
    out: Dict[int, bytes] = {}
    for sig in model.signatureDefs or []:
        graph = model.subgraphs[sig.subgraphIndex]
        one = copy.copy(model)
        only = copy.copy(sig)
        only.subgraphIndex, only.signatureKey = 0, SIGNATURE
        one.subgraphs, one.signatureDefs = [graph], [only]
        length = int(graph.tensors[graph.inputs[0]].shape[-1])
        out[length] = bytes(fbu.convert_object_to_bytearray(one))
    if not out:
        raise ConfigError("the bundle's model has no signature to run; convert it anew from "
                          "its checkpoint")
    return out
