"""One TFLite model, several sentence lengths: signatures that share their weights.

A home command is about ten tokens long and the student's longest input is 32. Every layer
but attention costs in proportion to the tokens it is given, so a command run at 16 tokens
costs about half of one padded to 32 (measured: int8 0.067 ms against 0.114 ms on one core).

    {32: flat, 16: flat, ...}   one single-signature model per length, quantized alike
      --merge-->  one model:  signature `serve`      the longest (subgraph 0, as before)
                              signature `serve_16`   each shorter length, its own subgraph
                  whose constant buffers are shared: a weight stored once, however many
                  lengths read it (the quantizer writes the same bytes for the same weights)

The runtime (runtime/model.py) runs a sentence through the shortest signature it fits; a
runtime that knows only `serve` still runs every bundle. The attention mask makes the padded
positions count for nothing, so each length computes the same logits up to rounding (and to
the dynamic activation scales of int8/int4, which see fewer padded rows); every length is
checked against the golden cases when a bundle loads.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from ..runtime.model import SIGNATURE, length_key


def merge(flats: Mapping[int, bytes]) -> bytes:
    """One flatbuffer holding every model of `flats` (length -> single-signature model, the
    signature named `serve`), each as its own subgraph and signature, constants shared."""
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    if not flats:
        raise ValueError("no models to merge")
    longest = max(flats)
    base = _inline(fbu.convert_bytearray_to_object(bytearray(flats[longest])), flats[longest])
    if len(base.subgraphs) != 1 or len(base.signatureDefs or []) != 1:
        raise ValueError("each model to merge must have one subgraph and one signature")
    base.signatureDefs[0].signatureKey = SIGNATURE.encode()
    known: Dict[bytes, int] = {}
    for i, buf in enumerate(base.buffers):
        data = _data(buf)
        if data:
            known.setdefault(hashlib.sha256(data).digest(), i)
    for length in sorted((n for n in flats if n != longest), reverse=True):
        other = _inline(fbu.convert_bytearray_to_object(bytearray(flats[length])),
                        flats[length])
        if len(other.subgraphs) != 1 or len(other.signatureDefs or []) != 1:
            raise ValueError(f"the length-{length} model must have one subgraph and one "
                             "signature")
        graph = other.subgraphs[0]
        for tensor in graph.tensors:
            tensor.buffer = _buffer_index(base, other.buffers[tensor.buffer], known)
        codes = _opcode_map(base, other)
        for op in graph.operators:
            op.opcodeIndex = codes[op.opcodeIndex]
        base.subgraphs.append(graph)
        sig = other.signatureDefs[0]
        sig.signatureKey = length_key(length).encode()
        sig.subgraphIndex = len(base.subgraphs) - 1
        base.signatureDefs.append(sig)
    return bytes(fbu.convert_object_to_bytearray(base))


def _inline(model: Any, flat: bytes) -> Any:
    """`model` with every buffer's bytes inside its buffer object: the LiteRT quantizer
    stores constants after the flatbuffer (offset and size), which re-serializing would drop."""
    for buf in model.buffers:
        offset, size = int(getattr(buf, "offset", 0) or 0), int(getattr(buf, "size", 0) or 0)
        if offset > 1:
            if offset + size > len(flat):
                raise ValueError(f"a buffer at {offset}+{size} lies outside the model")
            buf.data = (np.frombuffer(flat, np.uint8, size, offset).copy() if size else None)
            buf.offset = buf.size = 0
    return model


def _data(buf: Any) -> bytes:
    data = getattr(buf, "data", None)
    return b"" if data is None else bytes(bytearray(data))


def _buffer_index(base: Any, buf: Any, known: Dict[bytes, int]) -> int:
    """The index in `base` of a buffer with `buf`'s bytes (appended when new); buffer 0, the
    empty sentinel, for a tensor without constant data."""
    data = _data(buf)
    if not data:
        return 0
    key = hashlib.sha256(data).digest()
    if key not in known:
        base.buffers.append(buf)
        known[key] = len(base.buffers) - 1
    return known[key]


def _opcode_map(base: Any, other: Any) -> Dict[int, int]:
    """Index of each of `other`'s operator codes in `base` (appended when new)."""
    codes = base.operatorCodes

    def ident(oc: Any) -> Tuple[Any, ...]:
        return (oc.builtinCode, oc.deprecatedBuiltinCode, oc.customCode, oc.version)

    out = {}
    for i, oc in enumerate(other.operatorCodes):
        match = [j for j, known in enumerate(codes) if ident(known) == ident(oc)]
        if match:
            out[i] = match[0]
        else:
            codes.append(oc)
            out[i] = len(codes) - 1
    return out
