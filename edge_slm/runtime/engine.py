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

import contextlib
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..bundle import MANIFEST, Bundle, BundleError, read_bundle
from ..errors import EdgeSlmError
from ..home import Inventory, home_from_bundle_json, load_inventory
from ..tokenizer import CLS, WordPieceTokenizer
from .answer import Answerer
from .compound import PIECE_THRESHOLD, split
from .evidence import MEMBER as EVIDENCE, WordEvidence
from .known_home import KnownHome
from .labels import Labels
from .model import TFLiteModel, interpreter_class
from .result import Alternative, Command, ParseResult, Slot  # noqa: F401  (re-exported)
from .values import NameTable, ValueTables

#: Longest text a query may carry; a longer one is refused (a command is a sentence).
MAX_TEXT_CHARS = 1000
#: How far this runtime's intent logits may be from a golden case's (relative to its largest
#: logit): the runtime's own ceiling; a manifest's `golden.tolerance` may only tighten it.
GOLDEN_TOLERANCE = 0.05
#: Least share of a golden case's token tags this runtime must reproduce.
GOLDEN_TAG_AGREEMENT = 0.97

#: What reading a malformed member raises (turned into a BundleError that names it).
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError, IndexError, RuntimeError)


class InputError(EdgeSlmError):
    """A text the engine cannot parse (not a string, empty, too long)."""


def default_bundle_path(quant: str = "int8", lang: str = "en") -> Path:
    """The shipped bundle of a language and quantization."""
    return Path(__file__).resolve().parent.parent / "data" / "models" / f"{lang}-{quant}.slm"


def shipped_bundles() -> List[Path]:
    """Every bundle inside the package."""
    folder = Path(__file__).resolve().parent.parent / "data" / "models"
    return sorted(folder.glob("*.slm")) if folder.is_dir() else []


@contextlib.contextmanager
def _member(bundle: Bundle, name: str) -> Iterator[None]:
    """Any error reading the member `name` (or the golden cases) as a BundleError naming it."""
    try:
        yield
    except BundleError:
        raise
    except (EdgeSlmError, *_MALFORMED) as err:
        said = str(err) if name in str(err) else f"{name} is malformed ({err})"
        raise BundleError(said if said.startswith(bundle.where) else f"{bundle.where}: {said}") \
            from err


def _calibration(config: Any) -> Tuple[float, float]:
    """(temperature, threshold) of config.json; ValueError unless finite, temperature > 0."""
    cal = config.get("calibration", {}) if isinstance(config, dict) else None
    if not isinstance(cal, dict):
        raise ValueError("config.json and its 'calibration' must be objects")
    temperature = float(cal.get("temperature", 1.0))
    threshold = float(cal.get("threshold", 0.0))
    if not (math.isfinite(temperature) and temperature > 0 and math.isfinite(threshold)):
        raise ValueError(f"calibration temperature {temperature}, threshold {threshold}")
    return temperature, threshold


class IntentEngine:
    """A loaded bundle, ready to parse."""

    def __init__(self, bundle: Bundle, home: Optional[Inventory] = None,
                 num_threads: int = 1, check_golden: bool = True) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        with _member(bundle, "labels.json"):
            self.labels = Labels.from_json(bundle.json("labels.json"))
        self.intents: List[Optional[str]] = list(self.labels.intents)
        self.tags: List[str] = list(self.labels.tags)
        with _member(bundle, "config.json"):
            self.temperature, self.threshold = _calibration(bundle.json("config.json"))
        with _member(bundle, "tokenizer.json"):
            self.tokenizer = WordPieceTokenizer.from_dict(bundle.json("tokenizer.json"))
        self.cls_id = self.tokenizer.vocab[CLS]
        with _member(bundle, "values.json"):
            self.values = ValueTables.from_dict(bundle.json("values.json"))
        with _member(bundle, "home.json"):
            self.shipped_home = home_from_bundle_json(bundle.json("home.json"),
                                                      f"{bundle.where}: home.json")
        self.evidence: Optional[WordEvidence] = None
        """The word evidence (runtime/evidence.py), when the bundle has it."""
        if EVIDENCE in bundle.members:
            self.evidence = WordEvidence.from_bytes(bundle.members[EVIDENCE],
                                                    f"{bundle.where}: {EVIDENCE}")
            if self.evidence.config.vocab_size != self.tokenizer.vocab_size:
                raise BundleError(f"{bundle.where}: {EVIDENCE} is for "
                                  f"{self.evidence.config.vocab_size} word pieces, "
                                  f"tokenizer.json has {self.tokenizer.vocab_size}")
        self.answerer = Answerer(self.labels, self.values, frozenset(
            t for t in self.tokenizer.vocab if t.isalpha()))
        self.set_home(home)
        interpreter_class()  # no TFLite runtime here: a ModelFormatError, not the bundle's
        with _member(bundle, "model.tflite"):
            self.model = TFLiteModel(bundle.model, num_threads=num_threads)
            self.max_len = self.model.max_len
            self._check_heads()
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
        fallback that fixes spellings and drops nothing.

        Safe while another thread parses: the new home is indexed first and swapped in as one
        reference, and `parse` reads that reference once, so a parse sees the old home or the
        new one, never a mix (a live home source calls this from its own thread)."""
        self.home = (KnownHome(home, user=True) if home is not None
                     else KnownHome(self.shipped_home, user=False))

    @property
    def strict(self) -> bool:
        """Whether the home is the user's own (authoritative)."""
        return self.home.user

    def _check_heads(self) -> None:
        """The model's heads have as many classes as labels.json names (BundleError)."""
        li, lt, lf = self.model.run(np.zeros(self.max_len, np.int32))
        sizes = (li.shape[-1], lt.shape[-1], lf.shape[-1] if lf.size else len(self.labels.frames))
        named = (len(self.intents), len(self.tags), len(self.labels.frames))
        if sizes != named:
            raise BundleError(f"{self.bundle.where}: model.tflite and labels.json disagree: "
                              f"the model's heads have {sizes} classes (intents, tags, "
                              f"frames), labels.json names {named}")

    def golden_tolerance(self) -> float:
        """The golden check's tolerance: the manifest's when it is tighter than the runtime's
        GOLDEN_TOLERANCE, which it may never loosen; BundleError for one that is no number."""
        golden = self.manifest.get("golden")
        tol = golden.get("tolerance", GOLDEN_TOLERANCE) if isinstance(golden, dict) else 0.0
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
            raise BundleError(f"{self.bundle.where}: golden tolerance {tol!r} is not a number "
                              f"from 0 to {GOLDEN_TOLERANCE}")
        return min(float(tol), GOLDEN_TOLERANCE)

    def check_golden(self) -> None:
        """Run the manifest's golden inputs; raise BundleError unless this runtime reproduces
        their outputs within tolerance (a runtime that silently miscomputes is caught here)."""
        golden = self.manifest.get("golden")
        cases = golden.get("cases") if isinstance(golden, dict) else None
        if not isinstance(cases, list) or not cases:
            raise BundleError(f"{self.bundle.where}: manifest has no golden cases")
        tol = self.golden_tolerance()
        worst = 0.0
        for i, case in enumerate(cases):
            with _member(self.bundle, f"{MANIFEST}: golden case {i}"):
                want, tags, frame, runs = self._run_case(case)
            for length, li, lt, lf in runs:
                diff = float(np.max(np.abs(li - want))) / max(1.0, float(np.max(np.abs(want))))
                worst = max(worst, diff)
                tags_ok = np.mean(lt.argmax(-1)[:len(tags)] == tags)
                frame_ok = frame is None or (lf.size > 0 and int(lf.argmax()) == frame)
                if (int(li.argmax()) != int(want.argmax()) or not diff <= tol
                        or tags_ok < GOLDEN_TAG_AGREEMENT or not frame_ok):
                    raise BundleError(
                        f"{self.bundle.where}: golden outputs not reproduced by "
                        f"{self.model.runtime} (case {str(case.get('text'))[:80]!r} at "
                        f"{length} tokens: intent logits off by {diff:.3f} relative, "
                        f"tolerance {tol}; tag agreement {tags_ok:.2f}; frame "
                        f"{'right' if frame_ok else 'wrong'}). This runtime computes "
                        "this model wrongly: install ai-edge-litert 2.3 or newer")
        self.golden_max_diff = worst

    def _run_case(self, case: Any) -> Tuple[np.ndarray, np.ndarray, Optional[int], List[
            Tuple[int, np.ndarray, np.ndarray, np.ndarray]]]:
        """(expected intent logits, tags, frame or None) of a golden case and its (length,
        intent, tag, frame logits) at every length the model has that holds it (each length
        is a signature of its own: every one is checked); ValueError (TypeError, KeyError)
        when the case is malformed."""
        ids = np.asarray(case["ids"], np.int64)
        if ids.shape != (self.max_len,) or ids.min() < 0 \
                or ids.max() > max(self.tokenizer.id_to_token):
            raise ValueError(f"ids must be {self.max_len} token ids")
        want = np.asarray(case["intent_logits"], np.float32)
        tags = np.asarray(case["tags"], np.int64)
        frame = int(case["frame"]) if "frame" in case else None
        if want.shape != (len(self.intents),) or tags.ndim != 1 or not tags.size:
            raise ValueError("intent_logits (one per intent) and tags must be lists of numbers")
        used = np.flatnonzero(ids)
        row = ids[:int(used[-1]) + 1 if used.size else 1].astype(np.int32)
        return want, tags, frame, [(m, *self.model.run_tokens(row, m))
                                   for m in self.model.lengths if m >= len(row)]

    # -- parsing ---------------------------------------------------------------------------

    def tokens(self, text: str) -> Tuple[List[int], List[Tuple[int, int]]]:
        """(token ids with [CLS] first, no padding; each word piece's offsets) of a text,
        truncated to the model's length."""
        enc = self.tokenizer.encode(text)
        n = min(len(enc.ids), self.max_len - 1)
        return [self.cls_id] + enc.ids[:n], enc.offsets[:n]

    def intent_logits(self, ids: Sequence[int], outputs: Tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's (intent, tag, frame) logits of a sentence's `ids` ([CLS] first), with
        the word evidence's shift of its log-odds of a command: "no intent"'s logit lowered
        by temperature x shift, which moves that log-odds by exactly the shift and leaves the
        intents' odds against each other as they were."""
        li, lt, lf = outputs
        if self.evidence is not None:
            li = self.evidence.apply(li, ids[1:], self.temperature)
        return li, lt, lf

    def encode(self, text: str) -> Tuple[np.ndarray, List[Tuple[int, int]]]:
        """(ids row padded to the model's longest length, offsets) of a text."""
        ids, offsets = self.tokens(text)
        row = np.zeros(self.max_len, np.int32)
        row[:len(ids)] = ids
        return row, offsets

    def parse(self, text: object, names: Optional[NameTable] = None,
              strict: Optional[bool] = None, area: Optional[str] = None) -> ParseResult:
        """Parse one text; raise InputError when it is not a sentence the engine can take.

        `area`: the area of the satellite that heard it ("turn on the lights in here").
        `names` adds names for this query only ({"name"|"area"|"floor": [...]}), as a
        record's own home does in evaluation: they resolve what the tagger read and are found
        where it read nothing, as the user's home is. `strict` drops a name, area or floor the home
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
        home = self.home  # read once: set_home may swap it from another thread meanwhile
        if strict is None:
            strict = home.user or bool(names and any(names.values()))

        outputs: Dict[str, Any] = {}  # the model runs once per piece of the sentence

        def one(piece: str, threshold: float) -> ParseResult:
            if piece not in outputs:
                ids, offsets = self.tokens(piece)
                outputs[piece] = (self.intent_logits(ids, self.model.run_tokens(ids)), offsets)
            (li, lt, lf), offsets = outputs[piece]
            return self.answerer.answer(piece, li, lt, lf, offsets, home, names, strict,
                                        area, self.temperature, threshold)

        whole = one(text, self.threshold)
        lower = min(self.threshold, PIECE_THRESHOLD)
        commands = split(text, whole, lambda p: one(p, self.threshold), lambda p: one(p, lower))
        if len(commands) < 2:
            return whole
        first = commands[0]
        return replace(whole, intent=first.intent, confidence=first.confidence,
                       slots=first.slots, commands=commands)

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
