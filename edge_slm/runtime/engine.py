"""The intent engine: text in, a Home Assistant intent with every slot it needs out.

    engine = IntentEngine.load()                          # the shipped default bundle
    engine = IntentEngine.load(home=load_inventory("my_home.yaml"))   # your home decides
    result = engine.parse("turn off the lights", area="Kitchen")     # a satellite's area
    result.intent, result.confidence, result.slots, result.alternatives

One call: pure-Python WordPiece -> the TFLite student (one thread) -> calibrated intent
softmax -> BIO tags decoded to word spans -> spans resolved against the home -> the intent the
home allows -> values in Home Assistant's vocabulary, the fixed slots of the intent's best
frame and the satellite's area (`answer.py`). Below the calibrated threshold the answer is
"not recognized" (intent None). Needs only numpy and ai-edge-litert.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..bundle import Bundle, BundleError, read_bundle
from ..errors import EdgeSlmError
from ..home import Inventory, home_from_bundle_json, load_inventory
from ..tokenizer import CLS, WordPieceTokenizer
from .answer import Answerer
from .known_home import KnownHome
from .labels import Labels
from .model import TFLiteModel
from .result import Alternative, ParseResult, Slot  # noqa: F401  (re-exported)
from .values import NameTable, ValueTables

#: Longest text a query may carry; a longer one is refused (a command is a sentence).
MAX_TEXT_CHARS = 1000


class InputError(EdgeSlmError):
    """A text the engine cannot parse (not a string, empty, too long)."""


def default_bundle_path(quant: str = "int8", lang: str = "en") -> Path:
    """The shipped bundle of a language and quantization."""
    return Path(__file__).resolve().parent.parent / "data" / "models" / f"{lang}-{quant}.slm"


def shipped_bundles() -> List[Path]:
    """Every bundle inside the package."""
    folder = Path(__file__).resolve().parent.parent / "data" / "models"
    return sorted(folder.glob("*.slm")) if folder.is_dir() else []


class IntentEngine:
    """A loaded bundle, ready to parse."""

    def __init__(self, bundle: Bundle, home: Optional[Inventory] = None,
                 num_threads: int = 1, check_golden: bool = True) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        try:
            self.labels = Labels.from_json(bundle.json("labels.json"))
        except ValueError as err:
            raise BundleError(f"{bundle.where}: labels.json: {err}") from err
        self.intents: List[Optional[str]] = list(self.labels.intents)
        self.tags: List[str] = list(self.labels.tags)
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
        try:
            self.shipped_home = home_from_bundle_json(bundle.json("home.json"),
                                                      f"{bundle.where}: home.json")
        except EdgeSlmError as err:
            raise BundleError(str(err)) from err
        self.set_home(home)
        self.model = TFLiteModel(bundle.model, num_threads=num_threads)
        self.max_len = self.model.max_len
        if check_golden:
            self.check_golden()

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, bundle: Union[str, Path, Bundle, None] = None,
             home: Union[Inventory, str, Path, None] = None, num_threads: int = 1,
             check_golden: bool = True) -> "IntentEngine":
        """Load a bundle (a path, a read Bundle, or None for the shipped default), answering
        for `home` (an Inventory or a home file; None: the bundle's shipped fallback)."""
        if bundle is None:
            bundle = default_bundle_path()
        if not isinstance(bundle, Bundle):
            bundle = read_bundle(bundle)
        if home is not None and not isinstance(home, Inventory):
            home = load_inventory(Path(home))
        return cls(bundle, home=home, num_threads=num_threads, check_golden=check_golden)

    def set_home(self, home: Optional[Inventory]) -> None:
        """Answer for `home` from now on: the user's own, which is then the only home names
        resolve against (places it lacks are dropped); None: the bundle's shipped home, a
        fallback that fixes spellings and drops nothing."""
        self.home = (KnownHome(home, user=True) if home is not None
                     else KnownHome(self.shipped_home, user=False))
        self.answerer = Answerer(self.labels, self.values)

    @property
    def strict(self) -> bool:
        """Whether the home is the user's own (authoritative)."""
        return self.home.user

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
            li, lt, lf = self.model.run(np.asarray(case["ids"], np.int32))
            want = np.asarray(case["intent_logits"], np.float32)
            diff = float(np.max(np.abs(li - want))) / max(1.0, float(np.max(np.abs(want))))
            worst = max(worst, diff)
            tags_ok = np.mean(lt.argmax(-1)[:len(case["tags"])] == np.asarray(case["tags"]))
            frame_ok = "frame" not in case or int(lf.argmax()) == int(case["frame"])
            if (int(li.argmax()) != int(want.argmax()) or diff > tol or tags_ok < 0.97
                    or not frame_ok):
                raise BundleError(
                    f"{self.bundle.where}: golden outputs not reproduced by {self.model.runtime} "
                    f"(case {case.get('text')!r}: intent logits off by {diff:.3f} relative, "
                    f"tolerance {tol}; tag agreement {tags_ok:.2f}; frame "
                    f"{'right' if frame_ok else 'wrong'}). This runtime computes "
                    "this model wrongly: install ai-edge-litert 2.3 or newer")
        self.golden_max_diff = worst

    # -- parsing ---------------------------------------------------------------------------

    def encode(self, text: str) -> Tuple[np.ndarray, List[Tuple[int, int]]]:
        """(ids row, offsets) of a text, truncated to the model's length."""
        enc = self.tokenizer.encode(text)
        n = min(len(enc.ids), self.max_len - 1)
        ids = np.zeros(self.max_len, np.int32)
        ids[0] = self.cls_id
        ids[1:1 + n] = enc.ids[:n]
        return ids, list(enc.offsets[:n])

    def parse(self, text: object, names: Optional[NameTable] = None,
              strict: Optional[bool] = None, area: Optional[str] = None) -> ParseResult:
        """Parse one text; raise InputError when it is not a sentence the engine can take.

        `area`: the area of the satellite that heard it ("turn on the lights in here").
        `names` adds names for this query only ({"name"|"area"|"floor": [...]}), as a
        record's own home does in evaluation. `strict` drops a name, area or floor the home
        does not have (default: when the home is the user's, or `names` are given).
        """
        if not isinstance(text, str):
            raise InputError(f"text must be a string, not {type(text).__name__}")
        if len(text) > MAX_TEXT_CHARS:
            raise InputError(f"text too long ({len(text)} characters; at most "
                             f"{MAX_TEXT_CHARS})")
        if not text.strip():
            raise InputError("text is empty")
        if area is not None and (not isinstance(area, str) or not area.strip()):
            raise InputError("area must be a non-empty string")
        ids, offsets = self.encode(text)
        li, lt, lf = self.model.run(ids)
        if strict is None:
            strict = self.home.user or bool(names and any(names.values()))
        return self.answerer.answer(text, li, lt, lf, offsets, self.home, names, strict, area,
                                    self.temperature, self.threshold)

    def parse_batch(self, texts: Sequence[object],
                    area: Optional[str] = None) -> List[Union[ParseResult, InputError]]:
        """Parse each text; a bad one gives its InputError in its place, never an exception."""
        out: List[Union[ParseResult, InputError]] = []
        for t in texts:
            try:
                out.append(self.parse(t, area=area))
            except InputError as err:
                out.append(err)
        return out

    def info(self) -> Dict[str, Any]:
        """What `edge-slm models` and the daemon's status report about this model."""
        return {"model_id": self.bundle.model_id, "quantization": self.bundle.quantization,
                "bytes": sum(len(v) for v in self.bundle.members.values()),
                "runtime": self.model.runtime, "metrics": self.manifest.get("metrics", {})}
