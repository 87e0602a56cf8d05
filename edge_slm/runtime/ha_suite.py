"""Home Assistant's own intent tests, run through the engine: is the answer what Home
Assistant expects, given the test's home and satellite?

The suite (`tests/<lang>/<Intent>/<slot combination>.yaml` of Home Assistant's intents
repository, with its `intents.yaml`) is vendored in `tests/data/ha-intents-tests`. Each file
is self-contained: its `floors`, `areas` and `entities` are the home, and `tests` groups
`sentences` with the `slots` Home Assistant expects. A slot combination with `context_area`
in `intents.yaml` is spoken to a satellite: the area the file marks (`context_area: true`),
else a stand-in name, is sent with the sentence and must come back as the `area` slot.

    suite = load_suite(Path("tests/data/ha-intents-tests"))
    report = run_suite(IntentEngine.load(), suite)
    report.intent_acc, report.slots_acc, report.table(), report.failures

A sentence counts as right when the intent is right and every expected slot is there with
Home Assistant's value (strings exactly, numbers by value, one of a list); slots Home Assistant
does not list are reported apart (`extra`), since the expected set rarely names the `domain`
that the words imply (Home Assistant itself only checks it against `inferred_domains`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from ..errors import EdgeSlmError
from ..home import Inventory, inventory_from_dict
from .known_home import home_kept
from .values import Value

if TYPE_CHECKING:
    from .engine import IntentEngine
    from .result import ParseResult

#: The satellite's area when a file marks none (Home Assistant's harness uses a stand-in too).
STAND_IN_AREA = "Satellite Room"


class SuiteError(EdgeSlmError):
    """The suite folder is missing or a file in it is not in Home Assistant's test format."""


@dataclass
class SuiteGroup:
    """Sentences that expect the same answer."""

    sentences: List[str]
    slots: Dict[str, Any]
    """Expected slots ({name: value or [values]})."""


@dataclass
class SuiteFile:
    """One slot combination of one intent, with its home."""

    intent: str
    combination: str
    home: Inventory
    groups: List[SuiteGroup]
    context_area: Optional[str] = None
    """The satellite's area sent with every sentence (None: no satellite)."""

    @property
    def sentences(self) -> int:
        return sum(len(g.sentences) for g in self.groups)


@dataclass
class Outcome:
    """One sentence's answer, judged."""

    file: SuiteFile
    text: str
    expected: Dict[str, Any]
    intent: Optional[str]
    slots: Dict[str, Any]
    wrong: List[str] = field(default_factory=list)
    """Expected slots missing or with another value."""
    extra: List[str] = field(default_factory=list)
    """Slots answered that Home Assistant's test does not list."""

    @property
    def intent_ok(self) -> bool:
        return self.intent == self.file.intent

    @property
    def ok(self) -> bool:
        return self.intent_ok and not self.wrong


@dataclass
class SuiteReport:
    """All outcomes of one engine on the suite."""

    outcomes: List[Outcome]

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def intent_acc(self) -> float:
        """Share of sentences whose intent is right."""
        return sum(o.intent_ok for o in self.outcomes) / max(1, self.n)

    @property
    def slots_acc(self) -> float:
        """Share of sentences whose intent and every expected slot are right."""
        return sum(o.ok for o in self.outcomes) / max(1, self.n)

    @property
    def failures(self) -> List[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def by_intent(self) -> Dict[str, Tuple[int, int, int, int]]:
        """intent -> (sentences, intent right, intent and slots right, with extra slots)."""
        out: Dict[str, List[int]] = {}
        for o in self.outcomes:
            row = out.setdefault(o.file.intent, [0, 0, 0, 0])
            row[0] += 1
            row[1] += o.intent_ok
            row[2] += o.ok
            row[3] += bool(o.extra)
        return {k: (v[0], v[1], v[2], v[3]) for k, v in sorted(out.items())}

    def missed_slots(self) -> Dict[str, int]:
        """Slot name -> sentences where it was missing or wrong (intent right)."""
        out: Dict[str, int] = {}
        for o in self.outcomes:
            if o.intent_ok:
                for name in o.wrong:
                    out[name] = out.get(name, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def table(self) -> str:
        """Markdown: per intent, and the total."""
        lines = ["| intent | sentences | intent right | intent and slots right | "
                 "extra slots |", "|---|---:|---:|---:|---:|"]
        for intent, (n, i_ok, s_ok, extra) in self.by_intent().items():
            lines.append(f"| {intent} | {n} | {_pct(i_ok, n)} | {_pct(s_ok, n)} | {extra} |")
        n = self.n
        lines.append(f"| **all** | {n} | {_pct(round(self.intent_acc * n), n)} | "
                     f"{_pct(round(self.slots_acc * n), n)} | "
                     f"{sum(bool(o.extra) for o in self.outcomes)} |")
        return "\n".join(lines)

    def failure_lines(self, limit: Optional[int] = None) -> List[str]:
        """One line per failure: file, sentence, expected and answered."""
        out = []
        for o in self.failures[:limit]:
            where = f"{o.file.intent}/{o.file.combination}"
            got = f"{o.intent} {o.slots}" if o.intent_ok else f"intent {o.intent}"
            out.append(f"{where}: {o.text!r}: expected {o.expected}, got {got}")
        return out


def _pct(k: int, n: int) -> str:
    return f"{100 * k / max(1, n):.1f}%"


# -- loading ---------------------------------------------------------------------------------

def load_suite(folder: Path, lang: str = "en") -> List[SuiteFile]:
    """Every test file of `lang` in a suite folder (with `intents.yaml` beside `<lang>/`)."""
    folder = Path(folder)
    schema_path = folder / "intents.yaml"
    lang_dir = folder / lang
    if not schema_path.is_file() or not lang_dir.is_dir():
        raise SuiteError(f"{folder}: not a Home Assistant intents test suite (expected "
                         f"intents.yaml and {lang}/)")
    schema = _yaml(schema_path)
    out = []
    for path in sorted(lang_dir.glob("*/*.yaml")):
        intent, combination = path.parent.name, path.stem
        info = (schema.get(intent) or {}).get("slot_combinations", {}).get(combination) or {}
        out.append(suite_file(_yaml(path), intent, combination, bool(info.get("context_area")),
                              str(path)))
    if not out:
        raise SuiteError(f"{lang_dir}: no test files")
    return out


def suite_file(data: Mapping[str, Any], intent: str, combination: str, context_area: bool,
               where: str = "<memory>") -> SuiteFile:
    """One test file (parsed YAML) as a SuiteFile."""
    if not isinstance(data, Mapping) or not isinstance(data.get("tests"), list):
        raise SuiteError(f"{where}: no 'tests' list")
    home = home_of_test(data, where)
    groups = []
    for i, test in enumerate(data["tests"]):
        sentences = test.get("sentences") if isinstance(test, Mapping) else None
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise SuiteError(f"{where}: tests[{i}] has no list of sentences")
        groups.append(SuiteGroup(list(sentences), dict(test.get("slots") or {})))
    area = None
    if context_area:
        marked = [a["name"] for a in data.get("areas") or []
                  if isinstance(a, Mapping) and a.get("context_area")]
        area = marked[0] if marked else STAND_IN_AREA
    return SuiteFile(intent, combination, home, groups, area)


def home_of_test(data: Mapping[str, Any], where: str = "<memory>") -> Inventory:
    """The home a self-contained test file describes (areas and floors by name)."""
    def keep(items: Any, keys: Sequence[str]) -> List[Dict[str, Any]]:
        return [{k: v for k, v in it.items() if k in keys} for it in items or []
                if isinstance(it, Mapping)]
    floors = keep(data.get("floors"), ("name", "aliases"))
    known = {f.get("name") for f in floors}
    areas = keep(data.get("areas"), ("name", "aliases", "floor"))
    for a in areas:
        if a.get("floor") not in known:  # a file may name a floor it does not list
            a.pop("floor", None)
    home = {"floors": floors, "areas": areas,
            "entities": keep(data.get("entities"),
                             ("name", "domain", "area", "aliases", "attributes"))}
    return inventory_from_dict(home, where)


def home_of_fixtures(data: Mapping[str, Any], where: str = "<memory>") -> Inventory:
    """The suite's shared test home (`<lang>/_fixtures.yaml`: ids link entities to areas and
    areas to floors; an entity's domain is its id's prefix)."""
    floors = {f["id"]: f["name"] for f in data.get("floors") or []}
    areas = {a["id"]: a for a in data.get("areas") or []}
    home = {
        "floors": [{"name": n} for n in floors.values()],
        "areas": [dict({"name": a["name"]},
                       **({"floor": floors[a["floor"]]} if a.get("floor") in floors else {}))
                  for a in areas.values()],
        "entities": [],
    }
    seen = set()
    for e in data.get("entities") or []:
        domain = str(e.get("id", "")).split(".")[0]
        if e["name"].casefold() in seen:
            continue  # the fixtures reuse a name across domains ("Phone")
        seen.add(e["name"].casefold())
        entity = {"name": e["name"], "domain": domain, "attributes": e.get("attributes")}
        if e.get("area") in areas:
            entity["area"] = areas[e["area"]]["name"]
        home["entities"].append(entity)
    return inventory_from_dict(home, where)


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise SuiteError(f"{path}: {err}") from err


# -- running ---------------------------------------------------------------------------------

def run_suite(engine: IntentEngine, suite: Sequence[SuiteFile]) -> SuiteReport:
    """Every sentence through `engine.parse` with its file's home and satellite area. The
    engine's home is set per file and put back afterwards."""
    outcomes = []
    with home_kept(engine):
        for f in suite:
            engine.set_home(f.home)
            for g in f.groups:
                expected = dict(g.slots)
                if f.context_area is not None:
                    expected["area"] = f.context_area
                for text in g.sentences:
                    outcomes.append(judge(f, text, expected, engine.parse(text,
                                                                          area=f.context_area)))
    return SuiteReport(outcomes)


def judge(f: SuiteFile, text: str, expected: Dict[str, Any], result: ParseResult) -> Outcome:
    """An answer against what Home Assistant expects."""
    slots = result.slot_values()
    wrong = [k for k, v in expected.items() if k not in slots or not same_value(slots[k], v)]
    extra = sorted(set(slots) - set(expected))
    return Outcome(f, text, expected, result.intent, slots, wrong, extra)


def same_value(got: Value, want: Any) -> bool:
    """Home Assistant's value `want` (or one of a list) equals `got`: numbers by value,
    strings exactly."""
    if isinstance(want, (list, tuple, set)):
        return any(same_value(got, w) for w in want)
    if isinstance(want, bool) or isinstance(got, bool):
        return got == want
    if isinstance(want, (int, float)) or isinstance(got, (int, float)):
        try:
            return float(got) == float(want)
        except (TypeError, ValueError):
            return False
    return str(got) == str(want)
