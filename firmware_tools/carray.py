"""Export a bundle for TensorFlow Lite Micro: the model as an aligned C array, the operators a
`MicroMutableOpResolver` needs, and the tokenizer, labels and calibration as C tables.

    firmware-tools export-c model.slm --out firmware/ [--name edge_slm]

writes `<name>_model_data.h/.cc` (`g_<name>_model_data`, `g_<name>_model_data_len`, 16-byte
aligned, TFLM naming), `<name>_ops.h` (`<name>_register_ops(resolver)` and the op count) and
`<name>_tables.h/.cc` (vocabulary, intents, BIO tags, max length, temperature, threshold).

TFLM runs float and full-integer models; it has no hybrid (dynamic-range) kernels, so the
int8 and int4 bundles the converter ships for Linux devices cannot run there: the exporter
says so, as it says which operators TFLM has no kernel for (see docs/tflm.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Union

from edge_slm.bundle import Bundle, BundleError, read_bundle

#: TFLite builtin operator -> the MicroMutableOpResolver method that registers it (TFLM's
#: micro_mutable_op_resolver.h); an operator missing here has no TFLM kernel.
TFLM_RESOLVER: Dict[str, str] = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul", "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs", "BROADCAST_TO": "AddBroadcastTo",
    "CAST": "AddCast", "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D", "COS": "AddCos", "CUMSUM": "AddCumSum",
    "DEPTH_TO_SPACE": "AddDepthToSpace", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv", "ELU": "AddElu",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup", "EQUAL": "AddEqual", "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv", "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "L2_NORMALIZATION": "AddL2Normalization",
    "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic", "LOG_SOFTMAX": "AddLogSoftmax",
    "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D", "MEAN": "AddMean",
    "MINIMUM": "AddMinimum", "MIRROR_PAD": "AddMirrorPad", "MUL": "AddMul", "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad", "PADV2": "AddPadV2",
    "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize", "REDUCE_MAX": "AddReduceMax",
    "REDUCE_MIN": "AddReduceMin", "RELU": "AddRelu", "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound", "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2",
    "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice", "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQRT": "AddSqrt", "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference", "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf",
    "TANH": "AddTanh", "TRANSPOSE": "AddTranspose", "TRANSPOSE_CONV": "AddTransposeConv",
    "UNPACK": "AddUnpack", "ZEROS_LIKE": "AddZerosLike",
}
#: Bundle quantizations TFLM can run (hybrid dynamic-range int8/int4 it cannot).
TFLM_QUANTIZATIONS = ("float", "int8-full")
_BYTES_PER_LINE = 16


@dataclass
class ExportResult:
    """What `export_c` wrote and what it found."""

    files: List[Path] = field(default_factory=list)
    """The files written."""
    ops: List[str] = field(default_factory=list)
    """Every builtin operator the model uses."""
    unsupported_ops: List[str] = field(default_factory=list)
    """Operators TFLM has no kernel for."""
    warnings: List[str] = field(default_factory=list)
    """Why the model will not run on TFLM as it is (empty when it should)."""


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise BundleError(f"--name {name!r}: use letters, digits and underscores")
    return name


def _c_string(s: str) -> str:
    out = []
    for b in s.encode("utf-8"):
        ch = chr(b)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= b < 127:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")  # octal: never swallows a following hex digit
    return '"' + "".join(out) + '"'


def _byte_lines(data: bytes) -> str:
    return "\n".join("  " + ", ".join(f"0x{b:02x}" for b in data[i:i + _BYTES_PER_LINE]) + ","
                     for i in range(0, len(data), _BYTES_PER_LINE))


def _strings(name: str, items: List[str]) -> str:
    body = "\n".join(f"  {_c_string(s)}," for s in items)
    return f"const char* const {name}[] = {{\n{body}\n}};\n"


def export_c(source: Union[str, Path, bytes], out: Union[str, Path],
             name: str = "edge_slm") -> ExportResult:
    """Write the C sources for `source` (a bundle) into the folder `out`."""
    name = _ident(name)
    bundle = read_bundle(source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = bundle.model
    ops = sorted(bundle.manifest.get("metrics", {}).get("ops") or [])
    if not ops:
        raise BundleError(f"{bundle.where}: the manifest lists no operators; convert the model "
                          "again with this version")
    result = ExportResult(ops=ops, unsupported_ops=[o for o in ops if o not in TFLM_RESOLVER])
    if bundle.quantization not in TFLM_QUANTIZATIONS:
        result.warnings.append(
            f"{bundle.quantization} is a hybrid (dynamic-range) model: TFLM has no hybrid "
            "kernels and will refuse it; convert with --quant int8-full (or float) for a "
            "microcontroller")
    if result.unsupported_ops:
        result.warnings.append("TFLM has no kernel for " + ", ".join(result.unsupported_ops)
                               + ": the model cannot run there as it is")
    guard = name.upper()
    md = f"g_{name}_model_data"
    files = {
        f"{name}_model_data.h": (
            f"// Generated by firmware-tools export-c from {bundle.model_id}. Do not edit.\n"
            f"#ifndef {guard}_MODEL_DATA_H_\n#define {guard}_MODEL_DATA_H_\n\n"
            f"extern const unsigned char {md}[];\nextern const unsigned int {md}_len;\n\n"
            f"#endif  // {guard}_MODEL_DATA_H_\n"),
        f"{name}_model_data.cc": (
            f"// Generated by firmware-tools export-c from {bundle.model_id}. Do not edit.\n"
            f'#include "{name}_model_data.h"\n\n'
            f"alignas(16) const unsigned char {md}[] = {{\n{_byte_lines(model)}\n}};\n"
            f"const unsigned int {md}_len = {len(model)};\n"),
        f"{name}_ops.h": _ops_header(name, bundle.model_id, result),
    }
    files.update(_tables(name, bundle))
    for fname, text in files.items():
        path = out / fname
        path.write_text(text, encoding="utf-8")
        result.files.append(path)
    return result


def _ops_header(name: str, model_id: str, result: ExportResult) -> str:
    guard = name.upper()
    supported = [o for o in result.ops if o in TFLM_RESOLVER]
    calls = "\n".join(f"  if (resolver.{TFLM_RESOLVER[o]}() != kTfLiteOk) return kTfLiteError;"
                      for o in supported)
    missing = "".join(f"// NO TFLM KERNEL: {o}\n" for o in result.unsupported_ops)
    return (f"// Generated by firmware-tools export-c from {model_id}. Do not edit.\n"
            f"// Operators of the model: {', '.join(result.ops)}\n{missing}"
            f"#ifndef {guard}_OPS_H_\n#define {guard}_OPS_H_\n\n"
            '#include "tensorflow/lite/c/common.h"\n\n'
            f"constexpr unsigned int k{_camel(name)}OpCount = {len(supported)};\n\n"
            "// Use with tflite::MicroMutableOpResolver<k...OpCount> resolver;\n"
            f"template <typename Resolver>\nTfLiteStatus {name}_register_ops(Resolver& resolver)"
            f" {{\n{calls}\n  return kTfLiteOk;\n}}\n\n#endif  // {guard}_OPS_H_\n")


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


def _tables(name: str, bundle: Bundle) -> Dict[str, str]:
    tok = json.loads(bundle.members["tokenizer.json"])
    vocab = tok["model"]["vocab"]
    words = [w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    labels = bundle.json("labels.json")
    cfg = bundle.json("config.json")
    cal = cfg.get("calibration") or {}
    max_len = int(cfg.get("model_config", {}).get("max_len", 32))
    g, guard = f"g_{name}", name.upper()
    header = (f"// Generated by firmware-tools export-c from {bundle.model_id}. Do not edit.\n"
              f"#ifndef {guard}_TABLES_H_\n#define {guard}_TABLES_H_\n\n"
              f"// WordPiece vocabulary (id -> token; \"##\" marks a continuation).\n"
              f"extern const char* const {g}_vocab[];\nextern const unsigned int "
              f"{g}_vocab_len;\n// Intents; index 0 is \"no intent\".\n"
              f"extern const char* const {g}_intents[];\nextern const unsigned int "
              f"{g}_intents_len;\n// BIO slot tags; index 0 is \"O\".\n"
              f"extern const char* const {g}_tags[];\nextern const unsigned int {g}_tags_len;\n"
              f"// Frames (output frame_logits): what a sentence implies, \"slot=value ...\" and\n"
              f"// \"@area\" when the area is the satellite's; index 0 is the empty frame. An\n"
              f"// intent takes only its own: bit f of {g}_intent_frames[i] set.\n"
              f"extern const char* const {g}_frames[];\nextern const unsigned int "
              f"{g}_frames_len;\nextern const unsigned long long {g}_intent_frames[];\n"
              f"// Token ids per input row, [CLS] first, 0-padded.\n"
              f"constexpr unsigned int k{_camel(name)}MaxLen = {max_len};\n"
              f"// Accept when argmax != 0 and 1 - softmax(logits / T)[0] >= threshold.\n"
              f"extern const float {g}_temperature;\nextern const float {g}_threshold;\n\n"
              f"#endif  // {guard}_TABLES_H_\n")
    intents = ["<none>"] + list(labels["intents"][1:])
    frames = [" ".join([f"{k}={v}" for k, v in sorted((f.get("fixed") or {}).items())]
                       + (["@area"] if f.get("area_from_context") else []))
              for f in labels.get("frames", [{}])]
    if len(frames) > 64:
        raise BundleError(f"{bundle.where}: {len(frames)} frames; the C tables hold 64")
    table = labels.get("intent_frames", {})
    masks = [sum(1 << f for f in table.get(i, [0]) or [0]) for i in intents]
    body = (f"// Generated by firmware-tools export-c from {bundle.model_id}. Do not edit.\n"
            f'#include "{name}_tables.h"\n\n'
            + _strings(f"{g}_vocab", words)
            + f"const unsigned int {g}_vocab_len = {len(words)};\n\n"
            + _strings(f"{g}_intents", intents)
            + f"const unsigned int {g}_intents_len = {len(intents)};\n\n"
            + _strings(f"{g}_tags", list(labels["tags"]))
            + f"const unsigned int {g}_tags_len = {len(labels['tags'])};\n\n"
            + _strings(f"{g}_frames", frames)
            + f"const unsigned int {g}_frames_len = {len(frames)};\n"
            + f"const unsigned long long {g}_intent_frames[] = {{"
            + ", ".join(f"0x{m:x}ULL" for m in masks) + "};\n\n"
            + f"const float {g}_temperature = {float(cal.get('temperature', 1.0))!r}f;\n"
            + f"const float {g}_threshold = {float(cal.get('threshold', 0.0))!r}f;\n")
    return {f"{name}_tables.h": header, f"{name}_tables.cc": body}
