"""The systems `scripts/bench.py` compares, each behind the engine's own interface: `parse(text,
names=None, strict=None, area=None) -> ParseResult`, `set_home(inventory or None)` and `home`
(`.inventory`, `.user`), so that `edge_slm.runtime.metrics.evaluate` and
`edge_slm.runtime.ha_suite.run_suite` score every one of them the same way.

    edge-slm-float/-int8/-int4  the engine on a bundle (float: built from a run, see bench.py)
    hassil                      Home Assistant's matcher (recognize_best, as HA's agent calls
                                it) over home-assistant-intents, the home as slot lists
    teacher-minilm              the run's fine-tuned MiniLM (PyTorch, float, one thread); its
                                outputs go through the engine's own answer step
    fuzzywuzzy                  Rhasspy's approach: Home Assistant's templates expanded into
                                sentences with the home's values, the best rapidfuzz ratio wins
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge_slm.home import Inventory, default_inventory
from edge_slm.runtime.result import ParseResult, Slot

FUZZY_MIN_SCORE = 75.0
"""Best rapidfuzz ratio (0-100) below which fuzzywuzzy answers "not recognized"."""
FUZZY_PER_TEMPLATE = 30
"""Sentences expanded per Home Assistant template (distinct ones kept)."""
FUZZY_SEED = 1
BLOCK = 100
"""Sentences a system parses in a row when the systems are timed in turn (`paired`)."""
REWARM = 10
"""Untimed sentences before each block (the previous block's last)."""


@dataclass
class Home:
    """What `run_suite` reads of a system's home."""

    inventory: Inventory
    user: bool


def make_system(name: str, spec: Dict[str, Any]) -> Any:
    """The system `name`, loaded (what the worker times as its cold start)."""
    if name.startswith("edge-slm-"):
        from edge_slm.runtime.engine import IntentEngine

        quant = name.rsplit("-", 1)[1]
        return IntentEngine.load(spec["bundles"][quant], check_golden=quant != "float")
    if name == "hassil":
        return HassilSystem()
    if name == "teacher-minilm":
        return TeacherSystem(Path(spec["run"]), spec["bundles"]["int8"])
    if name == "fuzzywuzzy":
        return FuzzySystem()
    raise ValueError(f"unknown system {name}")


def _said(text: str, name: str, value: Any, raw: str) -> Slot:
    """A slot said in `text` (its span where the words are found, else at 0)."""
    at = text.casefold().find(raw.casefold()) if raw else -1
    start = max(at, 0)
    return Slot(name, value, raw, start, start + len(raw), 1.0)


def _answer(text: str, intent: Optional[str], conf: float, slots: List[Slot]) -> ParseResult:
    return ParseResult(text, intent, conf, slots if intent else [], [], intent)


class HassilSystem:
    """hassil 3 over Home Assistant's English intents; areas, floors and names from the
    home (a name carries its domain and device class as context, as in Home Assistant)."""

    def __init__(self) -> None:
        from hassil.intents import Intents

        from edge_slm.corpus.hassil_lists import slot_lists
        from edge_slm.corpus.templates import package_intents

        self.slot_lists = slot_lists
        self.intents = Intents.from_dict(package_intents("en"))
        self.default = default_inventory("en")
        self._extra: Dict[Tuple[str, ...], Dict[str, Any]] = {}
        self.set_home(None)

    def set_home(self, inventory: Optional[Inventory]) -> None:
        self.home = Home(inventory or self.default, inventory is not None)
        self.lists = self.slot_lists(self.home.inventory)
        self._extra.clear()

    def parse(self, text: str, names: Optional[Dict[str, List[str]]] = None,
              strict: Optional[bool] = None, area: Optional[str] = None) -> ParseResult:
        from hassil.recognize import recognize_best

        lists = self.lists
        if names and any(names.values()):
            key = tuple(f"{k}={v}" for k in sorted(names) for v in names[k])
            if key not in self._extra:
                if len(self._extra) > 64:
                    self._extra.clear()
                self._extra[key] = self.slot_lists(self.home.inventory, names)
            lists = self._extra[key]
        try:
            r = recognize_best(text, self.intents, slot_lists=lists,
                               intent_context={"area": area} if area else None,
                               language="en", best_slot_name="name")
        except Exception:  # hassil raises several types on odd input: no match
            r = None
        if r is None:
            return _answer(text, None, 1.0, [])
        slots = []
        for name, ent in r.entities.items():
            raw = str(ent.text or "").strip()
            slots.append(_said(text, name, ent.value, raw) if raw
                         else Slot(name, ent.value, "", None, None, 1.0))
        return _answer(text, r.intent.name, 1.0, slots)


class TeacherSystem:
    """The teacher checkpoint (`RUN/teacher/teacher.pt`) on one thread: its intent, frame and
    tag distributions (tags re-expressed on the student's tokens, as distillation does) answered
    by the int8 bundle's own answer step at the teacher's calibration (`RUN/report.json`)."""

    def __init__(self, run: Path, bundle: str) -> None:
        import json
        import sys
        import types

        import torch

        # teacher.py imports the distillation module (Keras, TensorFlow) for a type only
        # training uses: stood in for, so that the teacher's memory and cold start are what
        # PyTorch and transformers take, not TensorFlow's
        if "edge_slm.model.distill" not in sys.modules:
            stub = types.ModuleType("edge_slm.model.distill")
            stub.SoftLabels = object  # type: ignore[attr-defined]
            sys.modules["edge_slm.model.distill"] = stub
        from edge_slm.model.teacher import JointTeacher
        from edge_slm.runtime.engine import IntentEngine

        torch.set_num_threads(1)
        self.teacher = JointTeacher.load(run / "teacher" / "teacher.pt")
        self.engine = IntentEngine.load(bundle)
        lab = self.teacher.labels
        if (list(lab.intents)[1:] != list(self.engine.intents)[1:]
                or list(lab.tags) != list(self.engine.tags)
                or len(lab.frames) != len(self.engine.labels.frames)):
            raise ValueError(f"{run}: the teacher's labels are not the bundle's")
        cal = json.loads((run / "report.json").read_text())["results"]["teacher"]["calibration"]
        self.temperature, self.threshold = float(cal["temperature"]), float(cal["threshold"])

    @property
    def home(self) -> Any:
        return self.engine.home

    def set_home(self, inventory: Optional[Inventory]) -> None:
        self.engine.set_home(inventory)

    def parse(self, text: str, names: Optional[Dict[str, List[str]]] = None,
              strict: Optional[bool] = None, area: Optional[str] = None) -> ParseResult:
        from edge_slm.model.teacher import align_to_student

        e = self.engine
        _, offsets = e.encode(text)
        pred = self.teacher.predict([text])[0]
        tags = align_to_student(pred, offsets, self.teacher.labels)
        lt = np.full((e.max_len, len(e.tags)), np.log(1e-8), np.float32)
        lt[:, 0] = 0.0
        lt[1:1 + len(offsets)] = np.log(np.maximum(tags, 1e-8))
        li = np.log(np.maximum(pred["intent"].astype(np.float32), 1e-8))
        lf = np.log(np.maximum(pred["frame"].astype(np.float32), 1e-8))
        if strict is None:
            strict = e.home.user or bool(names and any(names.values()))
        return e.answerer.answer(text, li, lt, lf, offsets, e.home, names, strict, area,
                                 self.temperature, self.threshold)


class FuzzySystem:
    """Rhasspy's fuzzywuzzy recognizer, rebuilt on rapidfuzz: every Home Assistant template
    expanded (FUZZY_PER_TEMPLATE walks, with the home's names, areas and list values), the
    sentence with the best `fuzz.ratio` is the answer, with its intent, slots and fixed slots;
    below FUZZY_MIN_SCORE, "not recognized"."""

    def __init__(self) -> None:
        from edge_slm.corpus.templates import load_templates

        self.tset = load_templates("en", include_extended=False)
        self.default = default_inventory("en")
        self._cache: Dict[int, Tuple[List[str], List[Tuple[Any, ...]]]] = {}
        self.set_home(None)

    def set_home(self, inventory: Optional[Inventory]) -> None:
        self.home = Home(inventory or self.default, inventory is not None)
        key = id(self.home.inventory)
        if key not in self._cache:
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[key] = self._expand(self.home.inventory)
        self.choices, self.meta = self._cache[key]

    def _expand(self, inv: Inventory) -> Tuple[List[str], List[Tuple[Any, ...]]]:
        from rapidfuzz.utils import default_process

        from edge_slm.corpus.sampler import Sampler

        sampler = Sampler(self.tset, inv)
        rng = random.Random(FUZZY_SEED)
        seen: Dict[str, Tuple[Any, ...]] = {}
        for tpl in self.tset.templates:
            if not sampler.usable(tpl):
                continue
            for _ in range(FUZZY_PER_TEMPLATE):
                try:
                    s = sampler.sample(tpl, rng)
                except Exception:  # a template this home cannot fill
                    break
                text = s.draft.text
                slots = tuple((row[0], row[1], text[row[2]:row[3]]) for row in s.draft.slots)
                seen.setdefault(default_process(text),
                                (tpl.intent, slots, dict(tpl.fixed_slots), bool(s.context)))
        return list(seen), list(seen.values())

    @property
    def sentences(self) -> int:
        return len(self.choices)

    def text_bytes(self) -> int:
        return sum(len(c.encode("utf-8")) for c in self.choices)

    def parse(self, text: str, names: Optional[Dict[str, List[str]]] = None,
              strict: Optional[bool] = None, area: Optional[str] = None) -> ParseResult:
        from rapidfuzz import fuzz, process
        from rapidfuzz.utils import default_process

        best = process.extractOne(default_process(text), self.choices, scorer=fuzz.ratio,
                                  processor=None)
        if best is None or best[1] < FUZZY_MIN_SCORE:
            return _answer(text, None, 1.0 - (best[1] / 100 if best else 0.0), [])
        intent, slots, fixed, heard = self.meta[best[2]]
        out = [Slot(n, v, raw, 0, len(raw), 1.0) for n, v, raw in slots]
        out += [Slot(n, v, "", None, None, 1.0) for n, v in fixed.items()]
        if heard and area:
            out.append(Slot("area", area, "", None, None, 1.0))
        return _answer(text, intent, best[1] / 100, out)


def paired(names: List[str], spec: Dict[str, Any], warmup: int) -> Dict[str, Dict[str, Any]]:
    """Every system in one process, timed in turn, so that a burst of the machine's own noise
    falls on all of them alike and the ratios between them hold (timed alone, in separate
    processes a minute apart, a system's p50 moved by up to half on this shared machine):

    - warm: the timed sentences in blocks of BLOCK; each system in turn (the order rotating
      from block to block) parses the block after re-warming on the previous block's last
      REWARM sentences (untimed), `rounds` times over: a steady stream of commands;
    - cold: once over the sentences, every system parses each one in turn: each parse comes
      after the other systems evicted its code and weights from the caches (a command that
      arrives after the house did something else).

    Per system: p50, p99 and commands/s (warm), the CPU time per command, cold p50 and p99.
    `warmup`: untimed sentences each system parses first."""
    systems = {name: make_system(name, spec) for name in names}
    texts = spec["latency_texts"]
    for system in systems.values():
        for t in texts[:warmup]:
            system.parse(t)
    warm: Dict[str, List[float]] = {name: [] for name in names}
    cold: Dict[str, List[float]] = {name: [] for name in names}
    cpu = dict.fromkeys(names, 0.0)
    order = list(names)
    blocks = [texts[i:i + BLOCK] for i in range(0, len(texts), BLOCK)]
    for _ in range(spec.get("rounds", 1)):
        for k, block in enumerate(blocks):
            order = order[1:] + order[:1]
            for name in order:
                for t in blocks[k - 1][-REWARM:]:
                    systems[name].parse(t)
                c0 = time.process_time()
                for t in block:
                    t0 = time.perf_counter()
                    systems[name].parse(t)
                    warm[name].append(time.perf_counter() - t0)
                cpu[name] += time.process_time() - c0
    for t in texts:
        order = order[1:] + order[:1]
        for name in order:
            t0 = time.perf_counter()
            systems[name].parse(t)
            cold[name].append(time.perf_counter() - t0)
    out = {}
    for name, times in warm.items():
        ms, cold_ms = np.asarray(times) * 1000, np.asarray(cold[name]) * 1000
        out[name] = {"p50_ms": float(np.percentile(ms, 50)),
                     "p99_ms": float(np.percentile(ms, 99)),
                     "per_s": len(ms) / float(np.sum(times)),
                     "cpu_ms_per_command": 1000 * cpu[name] / len(ms), "timed": len(ms),
                     "cold_p50_ms": float(np.percentile(cold_ms, 50)),
                     "cold_p99_ms": float(np.percentile(cold_ms, 99))}
    return out
