"""Keras student -> float TFLite, with embeddings the quantizer can reach.

    Student --ExportArchive--> SavedModel (signature `serve`: ids int32 [1, T])
            --TFLiteConverter--> float .tflite (outputs `intent_logits`, `tag_logits`,
                                 `frame_logits`)
            --rewrite_gathers--> GATHER(table, ids) replaced by
                                 RESHAPE(ids, [-1]) -> EMBEDDING_LOOKUP -> RESHAPE(.., [1, T, D])

TensorFlow emits GATHER for every embedding table, and the LiteRT quantizer leaves GATHER
weights in float; EMBEDDING_LOOKUP it quantizes (see docs/convert.md). The rewrite computes
exactly the same values (tested).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional

import numpy as np

if TYPE_CHECKING:
    from ..model.student import Student

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Names of the model's outputs in the TFLite signature (the runtime maps outputs by name).
INTENT_OUTPUT = "intent_logits"
TAG_OUTPUT = "tag_logits"
FRAME_OUTPUT = "frame_logits"
INPUT_NAME = "ids"
SIGNATURE = "serve"


def export_saved_model(model: Student, out: Path, length: Optional[int] = None) -> Path:
    """Write `model` as a SavedModel with one fixed-shape int32 signature of `length` tokens
    (default: the model's longest)."""
    import keras
    import tensorflow as tf

    t = length or model.config.max_len
    if not 0 < t <= model.config.max_len:
        raise ValueError(f"length {t}: the model takes 1 to {model.config.max_len} tokens")

    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(ids: tf.Tensor) -> Dict[str, tf.Tensor]:
        intent, tags, frames = model(ids, training=False)
        return {INTENT_OUTPUT: intent, TAG_OUTPUT: tags, FRAME_OUTPUT: frames}

    archive.add_endpoint(name=SIGNATURE, fn=serve,
                         input_signature=[tf.TensorSpec([1, t], tf.int32, name=INPUT_NAME)])
    archive.write_out(str(out), verbose=False)
    return Path(out)


def float_tflite(model: Student, length: Optional[int] = None) -> bytes:
    """The float TFLite flatbuffer of a student for inputs of `length` tokens (default: its
    longest), embeddings as EMBEDDING_LOOKUP."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="edge-slm-export-") as tmp:
        export_saved_model(model, Path(tmp) / "saved", length)
        conv = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "saved"),
                                                        signature_keys=[SIGNATURE])
        conv.optimizations = []
        flat = conv.convert()
    return rewrite_gathers(flat)


def rewrite_gathers(flat: bytes) -> bytes:
    """Replace each GATHER of a constant table by RESHAPE -> EMBEDDING_LOOKUP -> RESHAPE."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    model = fbu.convert_bytearray_to_object(bytearray(flat))
    ops_enum = schema.BuiltinOperator

    def opcode_index(builtin: int) -> int:
        for i, oc in enumerate(model.operatorCodes):
            if max(oc.builtinCode, oc.deprecatedBuiltinCode) == builtin:
                return i
        oc = schema.OperatorCodeT()
        oc.builtinCode = builtin
        oc.deprecatedBuiltinCode = min(builtin, 127)
        oc.version = 1
        model.operatorCodes.append(oc)
        return len(model.operatorCodes) - 1

    def const_int32(graph: schema.SubGraphT, values: List[int], name: str) -> int:
        buf = schema.BufferT()
        buf.data = np.asarray(values, np.int32).tobytes()
        model.buffers.append(buf)
        ten = schema.TensorT()
        ten.shape = [len(values)]
        ten.type = schema.TensorType.INT32
        ten.buffer = len(model.buffers) - 1
        ten.name = name.encode()
        graph.tensors.append(ten)
        return len(graph.tensors) - 1

    def new_tensor(graph: schema.SubGraphT, shape: List[int], dtype: int, name: str) -> int:
        buf = schema.BufferT()
        model.buffers.append(buf)
        ten = schema.TensorT()
        ten.shape = list(shape)
        ten.type = dtype
        ten.buffer = len(model.buffers) - 1
        ten.name = name.encode()
        graph.tensors.append(ten)
        return len(graph.tensors) - 1

    def is_const(tensor: schema.TensorT) -> bool:
        buf = model.buffers[tensor.buffer]
        return buf is not None and buf.data is not None and len(buf.data) > 0

    gather = ops_enum.GATHER
    for g_i, graph in enumerate(model.subgraphs):
        new_ops = []
        for op in graph.operators:
            oc = model.operatorCodes[op.opcodeIndex]
            code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
            if code != gather or len(op.inputs) != 2:
                new_ops.append(op)
                continue
            table, idx = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
            opts = op.builtinOptions
            axis = getattr(opts, "axis", 0) if opts is not None else 0
            if not is_const(table) or len(table.shape) != 2 or axis != 0 \
                    or idx.type != schema.TensorType.INT32:
                new_ops.append(op)
                continue
            out_t = graph.tensors[op.outputs[0]]
            n = int(np.prod(idx.shape)) if len(idx.shape) else 1
            tag = f"emb{g_i}_{len(new_ops)}"
            flat_shape = const_int32(graph, [n], f"{tag}/flat_shape")
            flat_idx = new_tensor(graph, [n], schema.TensorType.INT32, f"{tag}/flat_ids")
            looked = new_tensor(graph, [n, int(table.shape[1])], out_t.type, f"{tag}/lookup")
            out_shape = const_int32(graph, [int(d) for d in out_t.shape], f"{tag}/out_shape")

            def mk(builtin: int, inputs: List[int], outputs: List[int], opts_type: int = 0,
                   options: object = None) -> schema.OperatorT:
                o = schema.OperatorT()
                o.opcodeIndex = opcode_index(builtin)
                o.inputs, o.outputs = inputs, outputs
                o.builtinOptionsType, o.builtinOptions = opts_type, options
                return o

            r1 = schema.ReshapeOptionsT()
            r1.newShape = [n]
            r2 = schema.ReshapeOptionsT()
            r2.newShape = [int(d) for d in out_t.shape]
            opt_reshape = schema.BuiltinOptions.ReshapeOptions
            new_ops.append(mk(ops_enum.RESHAPE, [op.inputs[1], flat_shape], [flat_idx],
                              opt_reshape, r1))
            new_ops.append(mk(ops_enum.EMBEDDING_LOOKUP, [flat_idx, op.inputs[0]], [looked]))
            new_ops.append(mk(ops_enum.RESHAPE, [looked, out_shape], [op.outputs[0]],
                              opt_reshape, r2))
        graph.operators = new_ops
    return bytes(fbu.convert_object_to_bytearray(model))


def op_names(flat: bytes) -> List[str]:
    """Builtin operator names used by a flatbuffer, in graph order (for reports and TFLM)."""
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    model = fbu.convert_bytearray_to_object(bytearray(flat))
    names = []
    for graph in model.subgraphs:
        for op in graph.operators:
            oc = model.operatorCodes[op.opcodeIndex]
            names.append(fbu.opcode_to_name(model, op.opcodeIndex)
                         if hasattr(fbu, "opcode_to_name") else str(oc.builtinCode))
    return names
