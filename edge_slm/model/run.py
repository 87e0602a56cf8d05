"""The run a training is: its folder, its config, the markers that let its stages resume, and
what each stage leaves for the stages after it (`RunContext`).

    OUT/.<marker>.done   the digest of what a stage's work depended on (skipped while equal)
    OUT/timings.json     seconds each stage's work took, kept across resumed runs
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional

import numpy as np

from .checkpoint import Checkpoint
from .data import Sets
from .distill import SoftLabels
from .pipeline import TrainConfig
from .report import StageReport
from .student import ModelConfig

if TYPE_CHECKING:
    from tokenizers import Tokenizer

#: A stage whose work finishes faster than this was served from the cache.
CACHED_STAGE_S = 2.0


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Stage:
    """A cached step: skipped when DIR/<name>.done holds the same key."""

    def __init__(self, out: Path, name: str, key: object) -> None:
        self.marker = out / f".{name}.done"
        self.key = _digest(key)

    @property
    def done(self) -> bool:
        """Whether this stage's result is already there."""
        return self.marker.exists() and self.marker.read_text().strip() == self.key

    def finish(self) -> None:
        """Record that the stage completed."""
        self.marker.write_text(self.key)


@dataclass
class RunContext:
    """What the stages share: the run's folder and config, and what each stage leaves for the
    stages after it."""

    config: TrainConfig
    """The whole run's config."""
    out: Path
    """The run folder."""
    dev_path: Optional[Path] = None
    """Real commands reported on, never trained on."""
    progress: bool = True
    """Progress bars."""
    log: Callable[[str], None] = print
    """Where progress lines and the stages' figures go."""
    keys: Dict[str, str] = field(default_factory=dict)
    """Each marker's key by marker name (later keys build on earlier ones)."""
    timings: Dict[str, float] = field(default_factory=dict)
    """Seconds each stage's work took (a cached stage keeps the time it took to build)."""
    previous_timings: Dict[str, float] = field(default_factory=dict)
    """`timings.json` as an earlier run left it."""
    cached: List[str] = field(default_factory=list)
    """Stages whose work was served from the cache (by their time)."""
    stages: Dict[str, StageReport] = field(default_factory=dict)
    """Finished stages in order, with their figures."""
    # corpus
    records: List[Dict[str, Any]] = field(default_factory=list)
    """The corpus, every split."""
    train_all: List[Dict[str, Any]] = field(default_factory=list)
    """Its training split."""
    extra_recs: List[Dict[str, Any]] = field(default_factory=list)
    """Teacher-only sentences (gold labels thrown away)."""
    calib_recs: List[Dict[str, Any]] = field(default_factory=list)
    """Out-of-scope sentences that set the rejection threshold."""
    # tokenizer
    tok_json: str = ""
    """tokenizer.json text."""
    fast: Optional[Tokenizer] = None
    """The `tokenizers` tokenizer."""
    sets: Optional[Sets] = None
    """Everything encoded on the student's tokens."""
    model_config: Optional[ModelConfig] = None
    """The student's config, vocabulary and label counts filled in."""
    # teacher, its labels, the students
    teacher_params: int = 0
    """The teacher's parameters (its row of the table)."""
    soft: Dict[str, np.ndarray] = field(default_factory=dict)
    """The teacher's labels: `<set>.intent`, `.frame`, `.tags`, `.rows`."""
    students: Dict[str, Checkpoint] = field(default_factory=dict)
    """Checkpoints by folder name (`no_teacher`, `distilled`, `pruned`)."""
    results: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    """Rows of the closing table by model."""
    calibration: Dict[str, float] = field(default_factory=dict)
    """The final model's calibration."""

    def marker(self, name: str, key: object) -> Stage:
        """The marker `OUT/.<name>.done` for `key` (remembered for the keys after it)."""
        stage = Stage(self.out, name, key)
        self.keys[name] = stage.key
        return stage

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Time a stage's work into `timings.json`; one served from the cache keeps the time
        it took to build."""
        t0 = time.perf_counter()
        yield
        elapsed = round(time.perf_counter() - t0, 1)
        if elapsed < CACHED_STAGE_S and name in self.previous_timings:
            self.cached.append(name)
            elapsed = self.previous_timings[name]
        self.timings[name] = elapsed
        (self.out / "timings.json").write_text(
            json.dumps({**self.previous_timings, **self.timings}, indent=1))

    def soft_of(self, name: str) -> SoftLabels:
        """The teacher's labels of one set."""
        s = self.soft
        return SoftLabels(s[f"{name}.intent"], s[f"{name}.tags"], s[f"{name}.rows"],
                          s.get(f"{name}.frame"))
