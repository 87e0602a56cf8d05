"""Sentence templates: load them from their sources and compile them for fast random walks.

Three sources feed the corpus, all in Home Assistant's `custom_sentences` YAML format:
`ha` (the `home-assistant-intents` package), `ext` (the project's extended templates in
`edge_slm/data/sentences/<lang>/`) and `custom` (the user's files). Each sentence string of
each data block is one `Template`, with a stable id `<source>:<intent>:<block>:<sentence>`.

Compiling turns hassil's expression tree into a tree of small nodes whose `walk(ctx)` appends
text to a sample under construction; rule references are inlined, so sampling never looks
anything up by name except slot lists.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Sequence, Tuple

import yaml
from hassil.expression import (
    Alternative,
    Expression,
    Group,
    ListReference,
    Permutation,
    RuleReference,
)
from hassil.expression import Sentence as HassilSentence
from hassil.expression import TextChunk
from hassil.intents import Intents
from hassil.parse_expression import parse_sentence
from hassil.util import merge_dict

from ..errors import ConfigError, CorpusInputError, TemplateError
from ..home import read_yaml

if TYPE_CHECKING:
    from .sampler import WalkContext

_LOGGER = logging.getLogger(__name__)

#: Deepest nesting of rule references before a template is declared recursive.
_MAX_RULE_DEPTH = 32

#: Lists the home inventory fills; every other list must be defined by a source.
INVENTORY_LISTS = frozenset({"area", "floor", "name"})

SOURCE_HA = "ha"
SOURCE_EXT = "ext"
SOURCE_CUSTOM = "custom"


# --------------------------------------------------------------------------- nodes
class Node:
    """A compiled piece of a template; `walk` appends its text to the sample being built."""

    __slots__ = ()

    def walk(self, ctx: WalkContext) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class TextNode(Node):
    """Literal text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def walk(self, ctx: WalkContext) -> None:
        ctx.parts.append(self.text)
        ctx.pos += len(self.text)


class SeqNode(Node):
    """Items one after another."""

    __slots__ = ("items",)

    def __init__(self, items: Sequence[Node]) -> None:
        self.items = tuple(items)

    def walk(self, ctx: WalkContext) -> None:
        for item in self.items:
            item.walk(ctx)


class AltNode(Node):
    """One of the items, chosen uniformly (an optional is an alternative with empty text)."""

    __slots__ = ("items",)

    def __init__(self, items: Sequence[Node]) -> None:
        self.items = tuple(items)

    def walk(self, ctx: WalkContext) -> None:
        self.items[int(ctx.rng.random() * len(self.items))].walk(ctx)


class PermNode(Node):
    """All items in a random order."""

    __slots__ = ("items",)

    def __init__(self, items: Sequence[Node]) -> None:
        self.items = tuple(items)

    def walk(self, ctx: WalkContext) -> None:
        order = list(self.items)
        ctx.rng.shuffle(order)
        for item in order:
            item.walk(ctx)


class SlotNode(Node):
    """A `{list}` or `{list:slot}` reference: the filler decides its text and value."""

    __slots__ = ("list_name", "slot_name")

    def __init__(self, list_name: str, slot_name: str) -> None:
        self.list_name = list_name
        self.slot_name = slot_name

    def walk(self, ctx: WalkContext) -> None:
        start = ctx.pos
        surface, value = ctx.fill(self.list_name, self.slot_name)
        if isinstance(surface, Node):
            surface.walk(ctx)
        else:
            ctx.parts.append(surface)
            ctx.pos += len(surface)
        ctx.slots.append((self.slot_name, value, start, ctx.pos, self.list_name))


_EMPTY = TextNode("")


class Compiler:
    """Compiles hassil expressions against a fixed set of expansion rules."""

    def __init__(self, rules: Dict[str, HassilSentence]) -> None:
        self.rules = rules
        self._memo: Dict[str, Node] = {}
        self._memo_lists: Dict[str, List[str]] = {}
        self.list_names: List[str] = []

    def compile(self, expr: Expression, depth: int = 0) -> Node:
        """Compile `expr`; list names met on the way are recorded in `list_names`."""
        if depth > _MAX_RULE_DEPTH:
            raise TemplateError("expansion rules nest too deeply (recursive rule?)")
        if isinstance(expr, TextChunk):
            text = expr.original_text if expr.original_text is not None else expr.text
            return TextNode(text) if text else _EMPTY
        if isinstance(expr, ListReference):
            self.list_names.append(expr.list_name)
            return SlotNode(expr.list_name, expr.slot_name)
        if isinstance(expr, RuleReference):
            return self._rule(expr.rule_name, depth)
        if isinstance(expr, Group):
            items = [self.compile(item, depth + 1) for item in expr.items]
            if isinstance(expr, Alternative):
                return AltNode(items)
            if isinstance(expr, Permutation):
                return PermNode(items)
            items = [i for i in items if i is not _EMPTY]
            return items[0] if len(items) == 1 else SeqNode(items)
        raise TemplateError(f"unexpected template expression {type(expr).__name__}")

    def _rule(self, name: str, depth: int) -> Node:
        if name not in self.rules:
            raise TemplateError(f"unknown expansion rule <{name}>")
        if name not in self._memo:
            before = len(self.list_names)
            self._memo[name] = self.compile(self.rules[name].expression, depth + 1)
            self._memo_lists[name] = self.list_names[before:]
        else:
            self.list_names.extend(self._memo_lists[name])
        return self._memo[name]


# --------------------------------------------------------------------------- templates
@dataclass
class Template:
    """One sentence template of one intent."""

    id: str
    """Stable id `<source>:<intent>:<block>:<sentence>`."""
    intent: str
    """Home Assistant intent name."""
    source: str
    """`ha`, `ext` or `custom`."""
    text: str
    """The template as written."""
    node: Node
    """Compiled form."""
    list_names: FrozenSet[str]
    """Slot lists the template may reference."""
    fixed_slots: Dict[str, Any] = field(default_factory=dict)
    """Slots the data block sets without text (e.g. `domain: light`)."""
    requires_context: Dict[str, Any] = field(default_factory=dict)
    """hassil's requires_context of the block."""
    excludes_context: Dict[str, Any] = field(default_factory=dict)
    """hassil's excludes_context of the block."""
    local_lists: Dict[str, Any] = field(default_factory=dict)
    """Slot lists defined inside the data block (parsed hassil SlotLists)."""
    heldout: bool = False
    """True when the template is held out of training entirely (set by the split)."""


@dataclass
class TemplateSet:
    """Every template of a language, with the shared lists and rules of all sources."""

    lang: str
    """Language code."""
    templates: List[Template]
    """All templates, in source order."""
    intents: Intents
    """hassil `Intents` of the sources merged (lists and rules; also for recognition)."""
    merged: Dict[str, Any]
    """The merged YAML dict (package + extended + custom)."""

    def by_intent(self) -> Dict[str, List[Template]]:
        """Templates grouped by intent, intents sorted by name."""
        out: Dict[str, List[Template]] = {}
        for tpl in self.templates:
            out.setdefault(tpl.intent, []).append(tpl)
        return dict(sorted(out.items()))


def extended_sentence_files(lang: str) -> List[Tuple[str, str]]:
    """(name, text) of the project's extended template files for `lang` (sorted by name)."""
    folder = resources.files("edge_slm") / "data" / "sentences" / lang
    if not folder.is_dir():
        return []
    files = sorted((res.name, res) for res in folder.iterdir() if res.name.endswith(".yaml"))
    return [(name, res.read_text(encoding="utf-8")) for name, res in files]


def _check_sentences_dict(data: object, path: str) -> Dict[str, Any]:
    """Validate the shape of a custom_sentences dict; raise CorpusInputError naming the problem."""
    if not isinstance(data, dict):
        raise CorpusInputError(path, "a sentences file must be a mapping with 'intents'")
    intents = data.get("intents")
    if not isinstance(intents, dict) or not intents:
        raise CorpusInputError(path, "missing 'intents' mapping (intent name -> {data: [...]})")
    for name, intent in intents.items():
        if not isinstance(intent, dict) or not isinstance(intent.get("data"), list):
            raise CorpusInputError(path, f"intent {name!r}: needs a 'data' list")
        for b, block in enumerate(intent["data"]):
            where = f"intent {name!r} data[{b}]"
            if not isinstance(block, dict):
                raise CorpusInputError(path, f"{where}: must be a mapping with 'sentences'")
            sentences = block.get("sentences")
            if not isinstance(sentences, list) or not sentences:
                raise CorpusInputError(path, f"{where}: 'sentences' must be a non-empty list")
            for s, text in enumerate(sentences):
                if not isinstance(text, str) or not text.strip():
                    raise CorpusInputError(path, f"{where} sentences[{s}]: not a non-empty string")
                try:
                    parse_sentence(text)
                except Exception as err:  # hassil raises several types for bad syntax
                    raise CorpusInputError(
                        path, f"{where} sentences[{s}] {text!r}: bad template syntax: {err}"
                    ) from err
            for key in ("slots", "requires_context", "excludes_context", "lists",
                        "expansion_rules"):
                if key in block and not isinstance(block[key], dict):
                    raise CorpusInputError(path, f"{where}: '{key}' must be a mapping")
    for key in ("lists", "expansion_rules"):
        if key in data and not isinstance(data[key], dict):
            raise CorpusInputError(path, f"'{key}' must be a mapping")
    return data


def read_sentences_file(path: Path) -> Dict[str, Any]:
    """Read and validate a user's custom_sentences YAML file."""
    data = read_yaml(path, "the sentences file", CorpusInputError)
    return _check_sentences_dict(data, str(path))


def package_intents(lang: str) -> Dict[str, Any]:
    """The `home-assistant-intents` dict for `lang`; ConfigError names the available ones."""
    import home_assistant_intents as hai

    data = hai.get_intents(lang)
    if data is None:
        raise ConfigError(f"no intents for language {lang!r}; available: "
                          f"{', '.join(hai.get_languages())}")
    return data


def wildcard_lists(lang: str, custom_files: Sequence[Path] = (), include_package: bool = True,
                   include_extended: bool = True) -> List[str]:
    """Names of the wildcard slot lists (free text: a search, an item, a timer's name) of the
    sources `load_templates` would read, without compiling any template."""
    sources: List[Dict[str, Any]] = []
    if include_package:
        sources.append(package_intents(lang))
    if include_extended:
        sources += [yaml.safe_load(text) or {} for _, text in extended_sentence_files(lang)]
    sources += [read_sentences_file(Path(p)) for p in custom_files]
    return sorted({name for data in sources for name, lst in (data.get("lists") or {}).items()
                   if isinstance(lst, dict) and lst.get("wildcard")})


def load_templates(
    lang: str,
    custom_files: Sequence[Path] = (),
    include_package: bool = True,
    include_extended: bool = True,
) -> TemplateSet:
    """Load and compile every template of `lang` from the package, extended and custom files."""
    sources: List[Tuple[str, str, Dict[str, Any]]] = []
    if include_package:
        sources.append((SOURCE_HA, f"home-assistant-intents/{lang}", package_intents(lang)))
    if include_extended:
        for name, text in extended_sentence_files(lang):
            path = f"edge_slm/data/sentences/{lang}/{name}"
            sources.append((SOURCE_EXT, path, _check_sentences_dict(yaml.safe_load(text), path)))
    for custom in custom_files:
        sources.append((SOURCE_CUSTOM, str(custom), read_sentences_file(Path(custom))))
    if not sources:
        raise ConfigError("no template sources selected")

    merged: Dict[str, Any] = {"language": lang, "intents": {}}
    for _, _, data in sources:
        # Deep copies: merge_dict extends lists in place, which would leak blocks across sources.
        merge_dict(merged, copy.deepcopy({k: v for k, v in data.items() if k != "responses"}))
    merged["language"] = lang
    try:
        intents = Intents.from_dict(merged)
    except Exception as err:
        raise CorpusInputError(sources[-1][1], f"cannot build intents: {err}") from err

    templates: List[Template] = []
    counters: Dict[Tuple[str, str], int] = {}
    for source, path, data in sources:
        # Parse this source alone (with the merged lists and rules) to keep its block indices.
        own = dict(merged, intents=data["intents"])
        parsed = Intents.from_dict(own)
        for intent_name, intent in parsed.intents.items():
            base = counters.get((source, intent_name), 0)
            for b, block in enumerate(intent.data):
                rules = {**intents.expansion_rules, **block.expansion_rules}
                for s, sentence in enumerate(block.sentences):
                    tid = f"{source}:{intent_name}:{base + b}:{s}"
                    compiler = Compiler(rules)
                    try:
                        node = compiler.compile(sentence.expression)
                    except TemplateError as err:
                        raise CorpusInputError(path, f"{tid} {sentence.text!r}: {err}") from err
                    missing = [n for n in compiler.list_names if n not in INVENTORY_LISTS
                               and n not in intents.slot_lists and n not in block.slot_lists]
                    if missing:
                        raise CorpusInputError(
                            path, f"{tid} {block.sentence_texts[s]!r}: unknown slot list "
                                  f"{{{missing[0]}}} (define it under 'lists:')")
                    templates.append(
                        Template(
                            id=tid,
                            intent=intent_name,
                            source=source,
                            text=block.sentence_texts[s],
                            node=node,
                            list_names=frozenset(compiler.list_names),
                            fixed_slots=dict(block.slots or {}),
                            requires_context=dict(block.requires_context or {}),
                            excludes_context=dict(block.excludes_context or {}),
                            local_lists=dict(block.slot_lists or {}),
                        )
                    )
            counters[(source, intent_name)] = base + len(intent.data)
    _LOGGER.debug("loaded %d templates for %s", len(templates), lang)
    return TemplateSet(lang, templates, intents, merged)
