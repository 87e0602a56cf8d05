"""Task-level metrics of the engine on labelled sentences (`edge-slm eval`, the convert gate).

Takes corpus-format records (`slots` a list of spans) and dev-set-format records (`slots` a
{name: value} dict or null, `entities`/`areas` the home the command was said in). Slot F1
compares (slot, lower-cased words) pairs of said slots after resolution against the home, the
same definition the training report uses (docs/model.md); implied slots (fixed slots, the
satellite's area) are scored apart, as whole sets.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from ..errors import HomeError
from ..home import Inventory, inventory_from_dict
from .answer import TARGET_SLOTS
from .known_home import home_kept
from .labels import frame_of

if TYPE_CHECKING:
    from .engine import IntentEngine

#: Dev-set slots not scored (derived from the intent or not labelled consistently).
UNSCORED = ("domain", "device_class", "volume_step")


def to_corpus_format(rec: Dict[str, Any]) -> Dict[str, Any]:
    """A dev-set record as a corpus-like one (slot values kept aside for text matching; the
    entities and areas the record says its home has kept for resolution)."""
    if isinstance(rec.get("slots"), list):
        return rec
    return {"text": rec["text"], "intent": rec.get("intent"), "slots": [],
            "gold_values": rec.get("slots"), "home": rec.get("entities") or {}}


def gold_pairs(rec: Dict[str, Any]) -> Optional[Set[Tuple[str, str]]]:
    """The (slot, lower-cased text) pairs a record expects; None for an intent-only label."""
    if isinstance(rec.get("gold_values"), dict):
        return {(k, str(v).lower().strip()) for k, v in rec["gold_values"].items()
                if k not in UNSCORED}
    if "gold_values" in rec:
        return None
    return {(s["name"], s["text"].lower()) for s in rec.get("slots") or []}


def record_names(rec: Dict[str, Any]) -> Dict[str, List[str]]:
    """The places a record says its home has ({"name"|"area"|"floor": [...]}): a dev record's
    `entities`/`areas`, a corpus record's own name, area and floor slots by canonical value
    (the device a command names is a device of that home; a misspelling in the text is not
    its name)."""
    extra = rec.get("home")
    out: Dict[str, List[str]] = {"name": [], "area": [], "floor": []}
    for s in rec.get("slots") or []:
        if isinstance(s, dict) and s.get("name") in out and isinstance(s.get("value"), str):
            out[s["name"]].append(s["value"])
    if isinstance(extra, dict):
        out["name"] += [e.get("name", "") for e in extra.get("entities") or []
                        if isinstance(e, dict) and isinstance(e.get("name"), str)]
        out["area"] += [a for a in extra.get("areas") or [] if isinstance(a, str)]
        out["floor"] += [f for f in extra.get("floors") or [] if isinstance(f, str)]
    return out


def record_home(rec: Dict[str, Any]) -> Optional[Inventory]:
    """The home a dev record was said in (its `entities` with their domains, its `areas` and
    `floors`), as the user's own: what a user whose home this is gets, the named-device rule
    included (docs/labelling.md). None when the record names no home, or one the engine could
    not load (it is then scored with its places as names only, see `record_names`)."""
    home = rec.get("home")
    if not isinstance(home, dict) or not any(home.get(k)
                                             for k in ("entities", "areas", "floors")):
        return None

    def places(key: str) -> List[Dict[str, str]]:
        return [{"name": p} for p in home.get(key) or [] if isinstance(p, str) and p.strip()]
    entities = [{k: v for k, v in e.items() if k in ("name", "domain", "device_class")}
                for e in home.get("entities") or [] if isinstance(e, dict)]
    try:
        return inventory_from_dict({"floors": places("floors"), "areas": places("areas"),
                                    "entities": entities})
    except HomeError:
        return None


def _with(names: Dict[str, List[str]],
          more: Optional[Dict[str, List[str]]]) -> Dict[str, List[str]]:
    """A record's places with `more` added ({"name"|"area"|"floor": [...]})."""
    if not more:
        return names
    return {k: names.get(k, []) + more.get(k, []) for k in set(names) | set(more)}


def implied_gold(rec: Dict[str, Any]) -> Optional[Set[Tuple[str, str]]]:
    """The (slot, value) pairs a corpus record implies without words: the fixed slots of its
    frame and the satellite's area; None for records that do not say (dev records)."""
    if "gold_values" in rec or not rec.get("intent"):
        return None
    frame = frame_of(rec)
    named = any(s["name"] == "name" for s in rec.get("slots") or [])
    # a name replaces the frame's domain and device class (see answer.py)
    out = {(k, str(v).casefold()) for k, v in frame.fixed if not (named and k in TARGET_SLOTS)}
    if frame.area_from_context:
        out.add(("area", str(rec["context"]["area"]).casefold()))
    return out


def evaluate(engine: IntentEngine, records: Sequence[Dict[str, Any]],
             names: Optional[Dict[str, List[str]]] = None) -> Dict[str, float]:
    # Each sentence is resolved strictly against the engine's home plus the places the record
    # names itself (and `names`), as the training report does (docs/model.md, Metrics); a
    # record whose area comes from the satellite is parsed with that area.
    """Intent accuracy (as answered, below-threshold answers counted as "not recognized"; and
    `top1_acc`, the model's best guess; `rejected_top_right`, the share of commands rejected
    although the best guess was right), slot F1 (said slots), implied slots right (fixed slots
    and the satellite's area), exact match (the intent and every said slot right, over the
    records whose slots are labelled: an intent-only label cannot be matched exactly), false
    accepts, parse latency."""
    records = [to_corpus_format(r) for r in records]
    compounds = [r for r in records if isinstance(r.get("commands"), list)]
    records = [r for r in records if not isinstance(r.get("commands"), list)]
    tp = fp = fn = 0
    correct = top1 = exact = exact_n = accepted_oos = n_oos = n_cmd = cmd_ok = 0
    abstained_right = 0
    implied_n = implied_ok = 0
    lat: List[float] = []
    # a record that says its home is answered in it, as the user's own; those come last, so
    # that the engine's own home is set back once, at the end
    homes = [record_home(rec) for rec in records]
    order = sorted(range(len(records)), key=lambda i: homes[i] is not None)
    answers = []
    with home_kept(engine) if any(h is not None for h in homes) else nullcontext():
        for i in order:
            rec = records[i]
            extra = _with(record_names(rec), names)
            context = rec.get("context")
            area = context.get("area") if isinstance(context, dict) else None
            if homes[i] is not None:
                engine.set_home(homes[i])
            t0 = time.perf_counter()
            res = engine.parse(rec["text"], names=extra, strict=True,
                               area=area if isinstance(area, str) and area.strip() else None)
            lat.append(time.perf_counter() - t0)
            answers.append((rec, res))
    for rec, res in answers:
        gold_intent = rec.get("intent") or None
        ok = res.intent == gold_intent
        correct += ok
        top1 += res.top_intent == gold_intent
        if gold_intent is None:
            n_oos += 1
            accepted_oos += res.intent is not None
        else:
            n_cmd += 1
            cmd_ok += ok
            abstained_right += res.intent is None and res.top_intent == gold_intent
        want = implied_gold(rec)
        if want is not None and ok:
            implied_n += 1
            implied_ok += want == {(s.name, str(s.value).casefold()) for s in res.slots
                                   if not s.said}
        gold = gold_pairs(rec)
        if gold is None:
            continue
        pred = {(s.name, s.raw.lower()) for s in res.slots if s.said}
        if "gold_values" in rec:
            pred = {p for p in pred if p[0] not in UNSCORED}
        tp += len(pred & gold)
        fp += len(pred - gold)
        fn += len(gold - pred)
        exact += int(ok and pred == gold)
        exact_n += 1
    n = max(1, len(records))
    ms = np.asarray(lat) * 1000 if lat else np.zeros(1)
    out = {"n": float(len(records)), "intent_acc": correct / n, "top1_acc": top1 / n,
           "slot_f1": 2 * tp / max(1, 2 * tp + fp + fn),
           "exact_match": exact / max(1, exact_n), "exact_n": float(exact_n),
           "parse_p50_ms": float(np.percentile(ms, 50)),
           "parse_p99_ms": float(np.percentile(ms, 99))}
    if n_oos:
        out["false_accept"] = accepted_oos / n_oos
        out["n_oos"] = float(n_oos)
    if n_cmd:
        out["command_acc"] = cmd_ok / n_cmd
        # Abstention's own loss: commands rejected although the best guess was right.
        out["rejected_top_right"] = abstained_right / n_cmd
    if implied_n:
        out["implied_acc"] = implied_ok / implied_n
    if compounds:
        out.update(evaluate_compounds(engine, compounds, names))
    return out


def evaluate_compounds(engine: IntentEngine, records: Sequence[Dict[str, Any]],
                       names: Optional[Dict[str, List[str]]] = None) -> Dict[str, float]:
    """Sentences of several commands (records with `commands`, corpus/compound.py):
    `compound_all_right`, the share whose every command is right (as many commands as said,
    in order, each with its intent and its said slots); `compound_count_right`, the share
    split into the right number of commands."""
    all_right = count_right = 0
    for rec in records:
        gold = rec["commands"]
        extra = record_names({"slots": [s for c in gold for s in c.get("slots") or []]})
        extra = _with(extra, names)
        res = engine.parse(rec["text"], names=extra, strict=True)
        count_right += len(res.commands) == len(gold)
        all_right += len(res.commands) == len(gold) and all(
            c.intent == g["intent"]
            and {(s.name, s.raw.lower()) for s in c.slots if s.said}
            == {(s["name"], s["text"].lower()) for s in g.get("slots") or []}
            for c, g in zip(res.commands, gold))
    n = max(1, len(records))
    return {"n_compound": float(len(records)), "compound_all_right": all_right / n,
            "compound_count_right": count_right / n}
