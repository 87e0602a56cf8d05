"""Student checkpoints: a folder with the config, labels, tokenizer and weights.

    DIR/checkpoint.json   {"format": 1, "model_config": {...}, "labels": {...}, "calibration": ...}
    DIR/tokenizer.json    the WordPiece tokenizer (tokenizers format)
    DIR/weights.npz       every weight, in the model's order, keyed "NNN:path"
    DIR/evidence.npz      the word evidence fitted at calibration (runtime/evidence.py), if any

`load_checkpoint` rebuilds `ModelConfig(**meta["model_config"])` and the exact same outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from ..bundle import BundleError
from ..errors import ModelFormatError
from ..runtime.evidence import MEMBER as EVIDENCE, WordEvidence
from .data import LabelSpace
from .student import ModelConfig, Student, build_student

CHECKPOINT_FORMAT = 1


@dataclass
class Checkpoint:
    """A student with everything needed to use it."""

    model: Student
    """The Keras model."""
    labels: LabelSpace
    """Intents and tags."""
    tokenizer_json: str
    """tokenizer.json text."""
    meta: Dict[str, Any] = field(default_factory=dict)
    """Calibration, metrics, provenance."""
    evidence: Optional[WordEvidence] = None
    """The word evidence its threshold was fitted with (None: the model alone)."""


def save_checkpoint(ckpt: Checkpoint, out: Path) -> None:
    """Write `ckpt` to the folder `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(ckpt.meta)
    meta.update({"format": CHECKPOINT_FORMAT, "model_config": ckpt.model.config.to_dict(),
                 "labels": ckpt.labels.to_dict()})
    (out / "checkpoint.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    (out / "tokenizer.json").write_text(ckpt.tokenizer_json, encoding="utf-8")
    arrays = {f"{i:03d}:{w.path}": np.asarray(w) for i, w in enumerate(ckpt.model.weights)}
    np.savez(out / "weights.npz", allow_pickle=False, **arrays)  # numbers only
    if ckpt.evidence is not None:
        (out / EVIDENCE).write_bytes(ckpt.evidence.to_bytes())
    elif (out / EVIDENCE).exists():
        (out / EVIDENCE).unlink()


def load_checkpoint(path: Path) -> Checkpoint:
    """Rebuild a checkpoint written by save_checkpoint."""
    path = Path(path)
    try:
        meta = json.loads((path / "checkpoint.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelFormatError(f"{path}: not a checkpoint ({err})") from err
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ModelFormatError(f"{path}: checkpoint format {meta.get('format')!r}, "
                               f"expected {CHECKPOINT_FORMAT}")
    model = build_student(ModelConfig.from_dict(meta["model_config"]))
    with np.load(path / "weights.npz") as data:
        keys = sorted(data.files)
        if len(keys) != len(model.weights):
            raise ModelFormatError(f"{path}: {len(keys)} weights saved, model has "
                                   f"{len(model.weights)}")
        for key, w in zip(keys, model.weights):
            arr = data[key]
            if tuple(arr.shape) != tuple(w.shape):
                raise ModelFormatError(f"{path}: weight {key} has shape {arr.shape}, "
                                       f"expected {tuple(w.shape)}")
            w.assign(arr)
    labels = LabelSpace.from_dict(meta["labels"])
    tok = (path / "tokenizer.json").read_text(encoding="utf-8")
    extra = {k: v for k, v in meta.items() if k not in ("format", "model_config", "labels")}
    evidence = None
    if (path / EVIDENCE).exists():
        try:
            evidence = WordEvidence.from_bytes((path / EVIDENCE).read_bytes(),
                                               str(path / EVIDENCE))
        except BundleError as err:
            raise ModelFormatError(str(err)) from err
    return Checkpoint(model, labels, tok, extra, evidence)
