"""`edge-slm train`: the training config and the chain of stages.

    corpus -> tokenizer -> teacher -> teacher labels -> student -> distillation -> pruning
           -> calibration

`run_training` runs the stages of `stages.py` in order over one `RunContext`. Every stage
writes its result into the output folder and is skipped when that result is already there for
the same config, so an interrupted run resumes (the teacher's fine-tuning and its soft labels
are the expensive part and are cached). Every stage reports its own figures (a log line, the
report's `stages`). The run ends with a table: teacher / student without the teacher /
distilled student / pruned student, on held-out templates, out-of-scope sentences never
trained on, and (where present) a dev set of real commands.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Type, TypeVar

from ..corpus.build import CorpusConfig
from ..errors import ConfigError
from .distill import DistillConfig
from .evidence import EvidenceTrainConfig
from .prune import PruneConfig
# `_encoder_for` is the older name of `report.encoder_for` (tests import it from here).
from .report import encoder_for as _encoder_for  # noqa: F401
from .report import format_stage, format_stages, format_table
from .student import ModelConfig
from .teacher import TeacherConfig

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")

_LOGGER = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """Which corpus rows each stage uses."""

    student_sentences: int = 100000
    """Labelled training rows for the students."""
    extra_sentences: int = 50000
    """Extra heavily augmented sentences that only the teacher labels."""
    extra_augment_probs: Dict[str, float] = field(default_factory=lambda: {
        "substitute": 0.5, "asr": 0.45, "typo": 0.45, "filler": 0.5, "wake_word": 0.2,
        "contraction": 0.5, "number": 0.5, "casing": 0.5, "punctuation": 0.5})
    """Augmenter probabilities of the extra sentences."""
    eval_sentences: int = 5000
    """Held-out rows evaluated (per set)."""
    vocab_size: int = 3000
    """WordPiece vocabulary before pruning."""
    calibration_sentences: int = 200000
    """Out-of-scope sentences sampled for the rejection threshold (those of the calibration
    split are kept: about 10,000 for 200,000)."""
    target_false_accept: float = 0.005
    """Rejection threshold target on those sentences. They are of templates and lines never
    trained on, like the held-out ones the gate measures (at most 1%); held-out false accepts
    still come out higher, give or take which templates fell where (docs/model.md,
    Calibration)."""
    baseline_student: bool = False
    """Also train the student without the teacher, on hard labels only: the table's
    `student_no_teacher` row, which shows what distillation adds (as long as the distilled
    student takes to train; off by default, on in the small profile)."""


@dataclass
class TrainConfig:
    """The whole training run."""

    corpus: CorpusConfig = field(default_factory=lambda: CorpusConfig(count=160000, seed=1))
    """The corpus to sample."""
    data: DataConfig = field(default_factory=DataConfig)
    """Row budgets and calibration target."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Student sizes (vocab_size and label counts are filled in)."""
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    """Teacher fine-tuning."""
    distill: DistillConfig = field(default_factory=DistillConfig)
    """Student training (with and without the teacher)."""
    prune: PruneConfig = field(default_factory=PruneConfig)
    """Structured pruning."""
    recover: DistillConfig = field(default_factory=lambda: DistillConfig(epochs=2.0, lr=1e-3))
    """Distillation after pruning."""
    evidence: EvidenceTrainConfig = field(default_factory=EvidenceTrainConfig)
    """The word evidence beside the final model's own log-odds (fitted at calibration)."""

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TrainConfig":
        """Build from a parsed YAML/JSON file; unknown keys are an error."""
        return _from_dict(cls, data or {})

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _from_dict(cls: Type[C], data: object, default: Optional[C] = None) -> C:
    """`default` (else `cls()`) with the keys of `data` replaced; a nested section only
    replaces the keys it names, so `corpus: {seed: 2}` keeps the run's corpus count (160,000)
    instead of falling back to `CorpusConfig`'s own."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a mapping, got {data!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    kwargs: Dict[str, Any] = {}  # keyword arguments of `cls` (a type per key)
    base = cls() if default is None else default
    for name, value in data.items():
        current = getattr(base, name)
        nested = is_dataclass(current) and not isinstance(current, type)
        kwargs[name] = _from_dict(type(current), value, current) if nested else value
    return replace(base, **kwargs)


def load_train_config(path: Optional[Path]) -> TrainConfig:
    """Read a YAML training config (None: defaults)."""
    if path is None:
        return TrainConfig()
    import yaml

    return TrainConfig.from_dict(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})


def run_training(config: TrainConfig, out: Path, dev_path: Optional[Path] = None,
                 progress: bool = True, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run (or resume) the whole chain; return the report."""
    import tensorflow as tf

    from .run import RunContext
    from .stages import STAGES

    tf.keras.utils.set_random_seed(config.distill.seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(config.to_dict(), indent=1))
    t_start = time.perf_counter()
    timings_path = out / "timings.json"
    previous = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    ctx = RunContext(config, out, dev_path, progress, log, previous_timings=previous)
    for name, stage in STAGES:
        t0 = time.perf_counter()
        done = ctx.stages[name] = stage(ctx)
        done.seconds = round(time.perf_counter() - t0, 1)
        log(format_stage(name, done))

    timings = ctx.timings
    timings["this_run"] = round(time.perf_counter() - t_start, 1)
    timings["total_uncached"] = round(sum(v for k, v in timings.items() if k != "this_run"), 1)
    results = ctx.results
    report = {"results": results, "timings_s": timings, "cached_stages": ctx.cached,
              "params": {k: v.get("params") for k, v in results.items()},
              "calibration": ctx.calibration,
              "stages": {k: asdict(v) for k, v in ctx.stages.items()}}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    table = format_table(results)
    (out / "report.md").write_text(f"{table}\n\n{format_stages(ctx.stages)}\n")
    log(table)
    return report
