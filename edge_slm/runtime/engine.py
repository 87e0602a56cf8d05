"""The intent engine: text in, Home Assistant intent with slots out.

    engine = IntentEngine.load()                    # the shipped default bundle
    result = engine.parse("turn off the kitchen lights")
    result.intent, result.confidence, result.slots, result.alternatives

One call: pure-Python WordPiece -> the TFLite student (one thread) -> calibrated softmax ->
BIO tags decoded to word spans on the original text -> place spans resolved against the home
-> values normalized. Below the calibrated threshold the answer is "not recognized" (intent
None). Needs only numpy and ai-edge-litert.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from ..bundle import Bundle, BundleError, read_bundle
from ..errors import EdgeSlmError
from ..tokenizer import CLS, WordPieceTokenizer
from .decode import decode_spans
from .model import TFLiteModel
from .resolve import HomeNames, resolve_spans
from .values import HomeIndex, ValueTables

#: Longest text a query may carry; a longer one is refused (a command is a sentence).
MAX_TEXT_CHARS = 1000
#: Alternatives listed beside the best intent.
N_BEST = 3
PLACE_SLOTS = ("name", "area", "floor")


class InputError(EdgeSlmError):
    """A text the engine cannot parse (not a string, empty, too long)."""


@dataclass
class Slot:
    """One slot of a parse."""

    name: str
    """Slot name ("name", "area", "brightness", ...)."""
    value: Any
    """Canonical value (a number, a list value, the home's spelling of a name)."""
    raw: str
    """The words as said."""
    start: int
    """Character span in the original text."""
    end: int
    confidence: float
    """Mean probability of the span's tags."""


@dataclass
class Alternative:
    """A runner-up intent."""

    intent: Optional[str]
    confidence: float


@dataclass
class ParseResult:
    """What `parse` answers."""

    text: str
    intent: Optional[str]
    """Intent name, or None when not recognized (out of scope or below the threshold)."""
    confidence: float
    """Calibrated probability of the best intent (of "no intent" when that wins)."""
    slots: List[Slot] = field(default_factory=list)
    alternatives: List[Alternative] = field(default_factory=list)
    top_intent: Optional[str] = None
    """The model's best guess before the threshold (None: "no intent" won)."""

    def to_dict(self) -> Dict[str, Any]:
        """The `parse --jsonl` object."""
        return {"text": self.text, "intent": self.intent,
                "confidence": round(self.confidence, 4),
                "slots": [dict(asdict(s), confidence=round(s.confidence, 4))
                          for s in self.slots],
                "alternatives": [{"intent": a.intent, "confidence": round(a.confidence, 4)}
                                 for a in self.alternatives]}


def default_bundle_path(quant: str = "int8", lang: str = "en") -> Path:
    """The shipped bundle of a language and quantization."""
    return Path(__file__).resolve().parent.parent / "data" / "models" / f"{lang}-{quant}.slm"


def shipped_bundles() -> List[Path]:
    """Every bundle inside the package."""
    folder = Path(__file__).resolve().parent.parent / "data" / "models"
    return sorted(folder.glob("*.slm")) if folder.is_dir() else []


class IntentEngine:
    """A loaded bundle, ready to parse."""

    def __init__(self, bundle: Bundle, home: Optional[Dict[str, List[Any]]] = None,
                 num_threads: int = 1, check_golden: bool = True) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        labels = bundle.json("labels.json")
        self.intents: List[Optional[str]] = [None] + list(labels["intents"][1:])
        self.tags: List[str] = list(labels["tags"])
        config = bundle.json("config.json")
        cal = config.get("calibration") or {}
        self.temperature = float(cal.get("temperature", 1.0))
        self.threshold = float(cal.get("threshold", 0.0))
        try:
            self.tokenizer = WordPieceTokenizer.from_json(
                bundle.members["tokenizer.json"].decode("utf-8"))
        except (ValueError, KeyError, UnicodeDecodeError) as err:
            raise BundleError(f"{bundle.where}: tokenizer.json unreadable ({err})") from err
        self.cls_id = self.tokenizer.vocab[CLS]
        self.values = ValueTables.from_dict(bundle.json("values.json"))
        names = bundle.json("home.json")
        self.strict = bool(home)
        """Whether the home is the user's own (then places it does not have are dropped)."""
        if home:
            names = {k: list(names.get(k, [])) + list(home.get(k, []))
                     for k in set(names) | set(home)}
        self.set_home(names)
        self.model = TFLiteModel(bundle.model, num_threads=num_threads)
        self.max_len = self.model.max_len
        if check_golden:
            self.check_golden()

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, bundle: Union[str, Path, Bundle, None] = None,
             home: Optional[Dict[str, List[Any]]] = None, num_threads: int = 1,
             check_golden: bool = True) -> "IntentEngine":
        """Load a bundle (a path, a read Bundle, or None for the shipped default)."""
        if bundle is None:
            bundle = default_bundle_path()
        if not isinstance(bundle, Bundle):
            bundle = read_bundle(bundle)
        return cls(bundle, home=home, num_threads=num_threads, check_golden=check_golden)

    def set_home(self, names: Dict[str, List[Any]]) -> None:
        """Use these names ({"name"|"area"|"floor": [name or [name, alias...]]}) to resolve."""
        self.home = _home_names(names)
        self.home_index = HomeIndex({k: list(v) for k, v in names.items()})

    def check_golden(self) -> None:
        """Run the manifest's golden inputs; raise BundleError unless this runtime reproduces
        their outputs within tolerance (a runtime that silently miscomputes is caught here)."""
        golden = self.manifest.get("golden") or {}
        cases = golden.get("cases") or []
        if not cases:
            raise BundleError(f"{self.bundle.where}: manifest has no golden cases")
        tol = float(golden.get("tolerance", 0.05))
        worst = 0.0
        for case in cases:
            li, lt = self.model.run(np.asarray(case["ids"], np.int32))
            want = np.asarray(case["intent_logits"], np.float32)
            diff = float(np.max(np.abs(li - want))) / max(1.0, float(np.max(np.abs(want))))
            worst = max(worst, diff)
            tags_ok = np.mean(lt.argmax(-1)[:len(case["tags"])] == np.asarray(case["tags"]))
            if int(li.argmax()) != int(want.argmax()) or diff > tol or tags_ok < 0.97:
                raise BundleError(
                    f"{self.bundle.where}: golden outputs not reproduced by {self.model.runtime} "
                    f"(case {case.get('text')!r}: intent logits off by {diff:.3f} relative, "
                    f"tolerance {tol}; tag agreement {tags_ok:.2f}). This runtime computes "
                    "this model wrongly: install ai-edge-litert 2.3 or newer")
        self.golden_max_diff = worst

    # -- parsing ---------------------------------------------------------------------------

    def encode(self, text: str) -> tuple:
        """(ids row, offsets) of a text, truncated to the model's length."""
        enc = self.tokenizer.encode(text)
        n = min(len(enc.ids), self.max_len - 1)
        ids = np.zeros(self.max_len, np.int32)
        ids[0] = self.cls_id
        ids[1:1 + n] = enc.ids[:n]
        return ids, enc.offsets[:n]

    def parse(self, text: Any, names: Optional[Dict[str, List[Any]]] = None,
              strict: Optional[bool] = None) -> ParseResult:
        """Parse one text; raise InputError when it is not a sentence the engine can take.

        `names` adds names for this query only ({"name"|"area"|"floor": [...]}), as Hermes
        `customEntities` or a record's own home do. `strict` drops a name, area or floor the
        home does not have (default: when the user's home was given at load, or `names`).
        """
        if not isinstance(text, str):
            raise InputError(f"text must be a string, not {type(text).__name__}")
        if len(text) > MAX_TEXT_CHARS:
            raise InputError(f"text too long ({len(text)} characters; at most "
                             f"{MAX_TEXT_CHARS})")
        if not text.strip():
            raise InputError("text is empty")
        ids, offsets = self.encode(text)
        li, lt = self.model.run(ids)
        if strict is None:
            strict = self.strict or bool(names and any(names.values()))
        return self._result(text, li, lt, offsets, names, strict)

    def parse_batch(self, texts: Sequence[Any]) -> List[Union[ParseResult, InputError]]:
        """Parse each text; a bad one gives its InputError in its place, never an exception."""
        out: List[Union[ParseResult, InputError]] = []
        for t in texts:
            try:
                out.append(self.parse(t))
            except InputError as err:
                out.append(err)
        return out

    def _result(self, text: str, li: np.ndarray, lt: np.ndarray, offsets: List[Any],
                names: Optional[Dict[str, List[Any]]] = None, strict: bool = False
                ) -> ParseResult:
        z = li / self.temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        order = np.argsort(-p)
        top = int(order[0])
        # accepted when it is a command at all (1 - p(no intent)), however the intents share
        # the rest (see edge_slm/model/calibrate.py)
        accepted = top != 0 and 1.0 - float(p[0]) >= self.threshold
        intent = self.intents[top] if accepted else None
        conf = float(p[top])
        alternatives = [Alternative(self.intents[int(i)], float(p[int(i)]))
                        for i in order[1:1 + N_BEST]]
        if not accepted and top != 0:
            alternatives.insert(0, Alternative(self.intents[top], conf))
            alternatives = alternatives[:N_BEST]
        slots: List[Slot] = []
        if intent is not None and offsets:
            n = len(offsets)
            tag_z = lt[1:1 + n]
            tag_p = np.exp(tag_z - tag_z.max(-1, keepdims=True))
            tag_p /= tag_p.sum(-1, keepdims=True)
            tag_ids = tag_p.argmax(-1)
            spans = decode_spans(tag_ids.tolist(), offsets, self.tags, text)
            home, index = self.home, None
            if names and any(names.values()):
                home = home.union(_home_names(names))
                index = HomeIndex({k: list(v) for k, v in names.items()})
            spans = resolve_spans(text, spans, home, strict=strict)
            for name, a, b in spans:
                inside = [k for k, (s, e) in enumerate(offsets) if s < b and e > a]
                c = float(np.mean([tag_p[k, tag_ids[k]] for k in inside])) if inside else 0.0
                slots.append(Slot(name, self._value(name, text[a:b], text, index), text[a:b],
                                  a, b, c if math.isfinite(c) else 0.0))
        return ParseResult(text, intent, conf, slots, alternatives,
                           top_intent=self.intents[top])

    def _value(self, slot: str, raw: str, text: str, index: Optional[HomeIndex] = None) -> Any:
        if slot in PLACE_SLOTS:
            own = index.canonical(slot, raw) if index is not None else None
            return own or self.home_index.canonical(slot, raw) or raw.strip()
        return self.values.value(slot, raw, text)

    def info(self) -> Dict[str, Any]:
        """What `edge-slm models` and the daemon's status report about this model."""
        return {"model_id": self.bundle.model_id, "quantization": self.bundle.quantization,
                "bytes": sum(len(v) for v in self.bundle.members.values()),
                "runtime": self.model.runtime, "metrics": self.manifest.get("metrics", {})}


def _home_names(names: Dict[str, List[Any]]) -> HomeNames:
    def flat(items: Sequence[Any]) -> List[str]:
        return [s for it in items for s in (it if isinstance(it, list) else [it])
                if isinstance(s, str)]
    return HomeNames.build(flat(names.get("name", [])), flat(names.get("area", [])),
                           flat(names.get("floor", [])))


def home_from_inventory(path: Union[str, Path]) -> Dict[str, List[Any]]:
    """A home's names from an inventory YAML or JSON file (entities, areas, floors with
    aliases), in the shape `IntentEngine(home=...)` takes."""
    from ..corpus.inventory import load_inventory

    inv = load_inventory(Path(path), "en")
    return home_names_of(inv)


def home_names_of(inventory: Any) -> Dict[str, List[Any]]:
    """{"name"|"area"|"floor": [[canonical, alias...], ...]} of an Inventory."""
    def rows(items: Sequence[Any]) -> List[List[str]]:
        return [[it.name, *it.aliases] for it in items]
    return {"name": rows(inventory.entities), "area": rows(inventory.areas),
            "floor": rows(inventory.floors)}
