"""Build the corpus: choose intents and templates, sample, augment, split, count.

`build_corpus(config)` yields one record (a dict) per sentence; `write_corpus` writes them as
JSON lines with a stats file beside them. The same config, seed and package versions give the
same file, byte for byte.

Splits:
- `heldout`: sentences of templates held out of training entirely (about `heldout_fraction`
  of each intent's templates, never an intent's last training templates), and of held-out
  out-of-scope lines: they measure generalization to unseen wording;
- `valid` / `test`: sentences of training templates, chosen by a hash of the unaugmented text
  so that a sentence and its noisy variants always land in the same split;
- `train`: the rest.
"""

from __future__ import annotations

import json
import logging
import math
import random
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .augment import Draft, SlotRow, augment
from .inventory import Inventory, load_inventory
from .negatives import Negative, load_negative_templates, load_negatives
from .sampler import Sampler, walk_text
from .templates import Template, TemplateSet, load_templates

_LOGGER = logging.getLogger(__name__)

#: Relative weights of intents by how often people ask for them at home (the template count
#: says how varied an intent is, not how common). Unlisted intents weigh 1.
DEFAULT_INTENT_PRIORS: Dict[str, float] = {
    "HassTurnOn": 3.0, "HassTurnOff": 3.0, "HassGetState": 3.0, "HassLightSet": 1.5,
    "HassGetWeather": 1.5, "HassClimateGetTemperature": 1.3, "HassClimateSetTemperature": 1.2,
    "HassSetVolumeRelative": 1.2, "HassMediaPause": 1.0, "HassGetCurrentTime": 1.0,
    # Timer changes have many templates of few words ("add 5 minutes to the pizza timer"): at
    # 0.4 the model doubted them against "add X to Y" chat; 0.8 keeps them sure.
    "HassGetCurrentDate": 1.0, "HassDecreaseTimer": 0.8, "HassIncreaseTimer": 0.8,
    "HassTimerStatus": 0.7, "HassCancelTimer": 0.7, "HassPauseTimer": 0.6,
    "HassUnpauseTimer": 0.6, "HassRespond": 0.8, "HassNevermind": 0.8, "HassBroadcast": 0.7,
}

#: Intents Home Assistant defines for the conversation itself ("how are you", "never mind"):
#: an out-of-scope line that one of their templates matches is theirs, not a negative.
CONVERSATION_INTENTS = ("HassRespond", "HassNevermind")
#: Walks of a negative template tried before one that is not a conversation intent is found.
MAX_NEGATIVE_TRIES = 8

SPLIT_TRAIN = "train"
SPLIT_VALID = "valid"
SPLIT_TEST = "test"
SPLIT_HELDOUT = "heldout"
#: Out-of-scope templates and lines kept out of training to set the rejection threshold.
SPLIT_CALIB = "calib"


@dataclass
class CorpusConfig:
    """Everything that decides a corpus; saved in its stats file."""

    lang: str = "en"
    """Language code of home-assistant-intents."""
    count: int = 10000
    """Number of sentences."""
    seed: int = 1
    """Random seed; with the package versions it fixes the output."""
    inventory: Optional[str] = None
    """Home inventory YAML; None for the shipped default."""
    sentences: List[str] = field(default_factory=list)
    """The user's custom_sentences YAML files."""
    include_package: bool = True
    """Sample Home Assistant's own templates."""
    include_extended: bool = True
    """Sample the project's extended templates."""
    oos_fraction: float = 0.12
    """Share of out-of-scope sentences (intent null)."""
    oos_template_share: float = 0.5
    """Share of out-of-scope sentences generated from negative templates (the rest are fixed
    lines), where the language has negative templates."""
    augment_fraction: float = 0.6
    """Share of sentences that go through augmentation (each augmenter then has its own odds)."""
    augment_probs: Dict[str, float] = field(default_factory=dict)
    """Overrides of augmenters' probabilities, by flag."""
    heldout_fraction: float = 0.1
    """Share of each intent's templates held out of training."""
    calib_fraction: float = 0.05
    """Share of out-of-scope templates and lines kept out of training (split "calib"), next to
    the held-out ones, to set the rejection threshold on wording the model never saw, as the
    held-out false accepts are measured."""
    valid_fraction: float = 0.05
    """Share of training-template sentences in the validation split."""
    test_fraction: float = 0.05
    """Share of training-template sentences in the test split."""
    split_salt: str = "edge-slm-1"
    """Salt of the split hashes: the same salt holds out the same templates for every seed."""
    intent_priors: Dict[str, float] = field(default_factory=lambda: dict(DEFAULT_INTENT_PRIORS))
    """Intent weight = prior x sqrt(number of templates)."""


def _hash01(salt: str, key: str) -> float:
    return zlib.crc32(f"{salt}\x00{key}".encode("utf-8")) / 2**32


def assign_heldout(templates: Sequence[Template], fraction: float, salt: str) -> None:
    """Mark about `fraction` of each intent's templates as held out (set `Template.heldout`)."""
    by_intent: Dict[str, List[Template]] = {}
    for tpl in templates:
        by_intent.setdefault(tpl.intent, []).append(tpl)
    for tpls in by_intent.values():
        for tpl in tpls:
            tpl.heldout = False
        if len(tpls) < 4 or fraction <= 0:
            continue  # too few to spare one
        ranked = sorted(tpls, key=lambda t: _hash01(salt, t.id))
        n_out = min(max(1, round(fraction * len(tpls))), len(tpls) // 4)
        for tpl in ranked[:n_out]:
            tpl.heldout = True


@dataclass
class _IntentTable:
    names: List[str]
    cum: List[float]
    templates: Dict[str, List[Template]]


class CorpusBuilder:
    """Holds the loaded sources of one config; `records()` yields the corpus."""

    def __init__(self, config: CorpusConfig, tset: Optional[TemplateSet] = None,
                 inventory: Optional[Inventory] = None) -> None:
        self.config = config
        self.tset = tset or load_templates(
            config.lang, [Path(p) for p in config.sentences],
            config.include_package, config.include_extended)
        self.inventory = inventory or load_inventory(
            Path(config.inventory) if config.inventory else None, config.lang)
        self.sampler = Sampler(self.tset, self.inventory)
        assign_heldout(self.tset.templates, config.heldout_fraction, config.split_salt)
        self.unusable = [t.id for t in self.tset.templates if not self.sampler.usable(t)]
        self.table = self._intent_table()
        self._conversational = conversation_matcher(self.tset)
        self.negatives: Tuple[Negative, ...] = tuple(
            n for n in load_negatives(config.lang) if not self._conversational(n.text))
        self.neg_templates, self.neg_lists = load_negative_templates(config.lang)

    def _intent_table(self) -> _IntentTable:
        usable: Dict[str, List[Template]] = {}
        for tpl in self.tset.templates:
            if self.sampler.usable(tpl):
                usable.setdefault(tpl.intent, []).append(tpl)
        names = sorted(usable)
        cum: List[float] = []
        total = 0.0
        for name in names:
            prior = self.config.intent_priors.get(name, 1.0)
            total += prior * math.sqrt(len(usable[name]))
            cum.append(total)
        return _IntentTable(names, [c / total for c in cum], usable)

    def _pick_intent(self, rng: random.Random) -> str:
        r = rng.random()
        lo, hi = 0, len(self.table.cum) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.table.cum[mid] < r:
                lo = mid + 1
            else:
                hi = mid
        return self.table.names[lo]

    def _split(self, heldout: bool, base_text: str) -> str:
        if heldout:
            return SPLIT_HELDOUT
        h = _hash01(self.config.split_salt + ":text", base_text)
        if h < self.config.valid_fraction:
            return SPLIT_VALID
        if h < self.config.valid_fraction + self.config.test_fraction:
            return SPLIT_TEST
        return SPLIT_TRAIN

    def records(self) -> Iterator[Dict[str, Any]]:
        """Yield `config.count` records."""
        cfg = self.config
        rng = random.Random(cfg.seed)
        lang = cfg.lang
        negatives = self.negatives
        probs = cfg.augment_probs or None
        for _ in range(cfg.count):
            if negatives and rng.random() < cfg.oos_fraction:
                text = None
                if self.neg_templates and rng.random() < cfg.oos_template_share:
                    ntpl = self.neg_templates[int(rng.random() * len(self.neg_templates))]
                    tid, source = ntpl.id, "oos-template"
                    band = _hash01(cfg.split_salt, ntpl.id)
                    for _ in range(MAX_NEGATIVE_TRIES):
                        text = walk_text(ntpl.node, rng, self.neg_lists)
                        if not self._conversational(text):
                            break
                    else:  # every walk was "thanks" or "never mind": a listed sentence instead
                        text = None
                if text is None:
                    neg = negatives[int(rng.random() * len(negatives))]
                    tid, source = f"oos:{neg.source}:{neg.group}", f"oos-{neg.source}"
                    band = _hash01(cfg.split_salt, "oos:" + neg.text)
                    text = neg.text
                heldout = band < cfg.heldout_fraction
                calib = not heldout and band < cfg.heldout_fraction + cfg.calib_fraction
                draft = Draft(text, [])
                intent, fixed, context, name_domain = None, {}, {}, None
            else:
                intent = self._pick_intent(rng)
                tpls = self.table.templates[intent]
                tpl = tpls[int(rng.random() * len(tpls))]
                sampled = self.sampler.sample(tpl, rng)
                draft, context = sampled.draft, sampled.context
                tid, heldout, fixed, source = tpl.id, tpl.heldout, tpl.fixed_slots, tpl.source
                name_domain = sampled.name_domain
                calib = False
            base = draft.text
            split = SPLIT_CALIB if calib else self._split(heldout, base)
            flags = augment(draft, rng, lang, probs) if rng.random() < cfg.augment_fraction else []
            text = draft.text
            yield {
                "text": text,
                "base": base,
                "intent": intent,
                "slots": [_slot_record(text, row) for row in draft.slots],
                "fixed_slots": fixed,
                "context": context,
                "name_domain": name_domain,
                "template": tid,
                "source": source,
                "split": split,
                "augment": flags,
                "lang": lang,
            }


def conversation_matcher(tset: TemplateSet) -> Callable[[str], bool]:
    """A test of whether a sentence is one of Home Assistant's conversation intents
    (`CONVERSATION_INTENTS`: "how are you", "who made you", "never mind"), by hassil over
    those intents' own templates; always False when the template set has none of them."""
    from hassil import recognize
    from hassil.intents import Intents

    intents = {k: v for k, v in tset.merged.get("intents", {}).items()
               if k in CONVERSATION_INTENTS}
    if not intents:
        return lambda text: False
    compiled = Intents.from_dict(dict(tset.merged, intents=intents))
    cache: Dict[str, bool] = {}

    def matches(text: str) -> bool:
        if text not in cache:
            try:
                cache[text] = recognize(text, compiled) is not None
            except Exception:  # hassil raises several types on odd input; then it is no match
                cache[text] = False
        return cache[text]
    return matches


def _slot_record(text: str, row: SlotRow) -> Dict[str, Any]:
    """A slot of a record; `list` names the slot list when it is not the slot's own (a
    `{timer_name:name}` is free text, a `{name}` an entity of the home)."""
    name, value, s, e, list_name = row
    out = {"name": name, "value": value, "text": text[s:e], "start": s, "end": e}
    if list_name != name and list_name != "fixed":
        out["list"] = list_name
    return out


def template_counts(builder: CorpusBuilder) -> Dict[str, Dict[str, int]]:
    """Per intent: templates by source, held out, and unusable with this inventory."""
    out: Dict[str, Dict[str, int]] = {}
    unusable = set(builder.unusable)
    for tpl in builder.tset.templates:
        row = out.setdefault(tpl.intent, Counter())
        row["templates"] += 1
        row[tpl.source] += 1
        row["heldout"] += tpl.heldout
        row["unusable"] += tpl.id in unusable
    return {k: dict(v) for k, v in sorted(out.items())}


class CorpusStats:
    """Counts per intent, slot, augmentation, split and source."""

    def __init__(self) -> None:
        self.total = 0
        self.intents: Counter = Counter()
        self.slots: Counter = Counter()
        self.augment: Counter = Counter()
        self.splits: Counter = Counter()
        self.sources: Counter = Counter()
        self.templates_seen: Dict[str, set] = {}
        self.clean = 0

    def add(self, rec: Dict[str, Any]) -> None:
        """Count one record."""
        self.total += 1
        intent = rec["intent"] or "<none>"
        self.intents[intent] += 1
        self.templates_seen.setdefault(intent, set()).add(rec["template"])
        for slot in rec["slots"]:
            self.slots[slot["name"]] += 1
        for flag in rec["augment"]:
            self.augment[flag] += 1
        self.clean += not rec["augment"]
        self.splits[rec["split"]] += 1
        self.sources[rec["source"]] += 1

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready summary."""
        return {
            "total": self.total,
            "unaugmented": self.clean,
            "intents": {k: {"sentences": v, "templates_sampled": len(self.templates_seen[k])}
                        for k, v in sorted(self.intents.items())},
            "slots": dict(sorted(self.slots.items())),
            "augmentations": dict(sorted(self.augment.items())),
            "splits": dict(sorted(self.splits.items())),
            "sources": dict(sorted(self.sources.items())),
        }


def write_corpus(config: CorpusConfig, out: Path, progress: bool = False,
                 builder: Optional[CorpusBuilder] = None) -> Dict[str, Any]:
    """Write the corpus to `out` (JSON lines) and its stats to `<out>.stats.json`; return stats."""
    builder = builder or CorpusBuilder(config)
    stats = CorpusStats()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.count, unit="sent", desc="corpus", mininterval=0.5)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with out.open("w", encoding="utf-8") as fh:
        buf: List[str] = []
        for rec in builder.records():
            stats.add(rec)
            buf.append(dumps(rec))
            if len(buf) >= 4096:
                fh.write("\n".join(buf) + "\n")
                if bar is not None:
                    bar.update(len(buf))
                buf.clear()
        if buf:
            fh.write("\n".join(buf) + "\n")
            if bar is not None:
                bar.update(len(buf))
    if bar is not None:
        bar.close()
    summary = {
        "config": asdict(config),
        "versions": source_versions(),
        "stats": stats.to_dict(),
        "templates": template_counts(builder),
        "unusable_templates": builder.unusable,
        "negatives_available": len(builder.negatives),
    }
    Path(str(out) + ".stats.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False),
                                              encoding="utf-8")
    return summary


def source_versions() -> Dict[str, str]:
    """Versions of the packages that decide the corpus."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("edge-slm", "hassil", "home-assistant-intents", "chatterbot-corpus"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out
