"""Out-of-scope sentences (intent null): real conversation lines plus hand-written hard negatives.

Sources (documented in docs/corpus.md):
- `chatterbot-corpus` (BSD-3-Clause): the conversation lines of its language folders, kept when
  short and free of smart-home words, lower-cased like the templates so that casing is left to
  augmentation and carries no label information;
- `edge_slm/data/negatives/<lang>.yaml`: the project's own hard negatives (trivia, travel,
  banking, recipes, personal assistant requests, chit-chat and near misses that share words
  with commands);
- `edge_slm/data/negatives/<lang>_templates.yaml`: the project's negative *templates* (hassil
  syntax over their own lists), which give tens of thousands of distinct negatives, so that a
  model cannot simply memorize the fixed lines. Whole templates are held out like positives.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Dict, List, Tuple

import yaml

from ..errors import CorpusInputError

if TYPE_CHECKING:
    from .templates import Node

_LOGGER = logging.getLogger(__name__)

#: chatterbot-corpus folder per language code.
CHATTERBOT_LANGUAGES = {
    "en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
    "pt": "portuguese", "pt-BR": "portuguese", "nl": "dutch", "ru": "russian", "sv": "swedish",
    "tr": "turkish", "id": "indonesia", "hi": "hindi", "zh-CN": "chinese", "zh-TW": "tchinese",
    "zh-HK": "tchinese", "mr": "marathi", "te": "telugu", "bn": "bangla", "ko": "korean",
    "he": "hebrew", "ja": "japanese", "ca": "catalan", "da": "danish", "el": "greek",
    "hu": "hungarian", "pl": "polish", "ro": "romanian", "uk": "ukrainian",
}

#: Lines longer than this many words read like answers, not requests.
MAX_WORDS = 14

#: English words that would make a chat line a plausible home command; such lines are dropped
#: so that a negative never contradicts a positive.
HOME_WORDS = re.compile(
    r"\b(light|lights|lamp|turn|switch|temperature|thermostat|heat|heating|weather|rain|timer|"
    r"alarm|music|volume|play|pause|song|door|lock|unlock|open|close|fan|tv|vacuum|clean|"
    r"list|shopping|time|date|today|blind|curtain|garage|window|humidity|battery|sensor|"
    r"on|off|set|start|stop)\b",
    re.IGNORECASE,
)

_TRAILING = re.compile(r"[\s.!?;:,]+$")


@dataclass(frozen=True)
class Negative:
    """One out-of-scope sentence."""

    text: str
    """The sentence, lower case, no trailing punctuation."""
    source: str
    """`chatterbot` or `hard`."""
    group: str
    """chatterbot category file, or the hard-negative group."""


def _clean(text: str) -> str:
    return _TRAILING.sub("", " ".join(text.split())).lower()


def _chatterbot(lang: str) -> List[Negative]:
    folder_name = CHATTERBOT_LANGUAGES.get(lang) or CHATTERBOT_LANGUAGES.get(lang.split("-")[0])
    if folder_name is None:
        return []
    try:
        root = resources.files("chatterbot_corpus") / "data" / folder_name
    except ModuleNotFoundError:
        _LOGGER.warning("chatterbot-corpus is not installed; no conversational negatives")
        return []
    if not root.is_dir():
        return []
    out: List[Negative] = []
    for res in sorted(root.iterdir(), key=lambda r: r.name):
        if not res.name.endswith(".yml"):
            continue
        data = yaml.safe_load(res.read_text(encoding="utf-8")) or {}
        group = res.name[: -len(".yml")]
        for conversation in data.get("conversations") or []:
            # The opening line and the first reply: what people say, not canned answers.
            for line in (conversation or [])[:2]:
                if not isinstance(line, str):
                    continue
                text = _clean(line)
                n_words = len(text.split())
                if n_words < 2 or n_words > MAX_WORDS or re.search(r"[{}\[\]<>|]", text):
                    continue
                if lang.startswith("en") and HOME_WORDS.search(text):
                    continue
                out.append(Negative(text, "chatterbot", group))
    return out


def _hard(lang: str) -> List[Negative]:
    folder = resources.files("edge_slm") / "data" / "negatives"
    res = folder / f"{lang}.yaml"
    if not res.is_file():
        return []
    data = yaml.safe_load(res.read_text(encoding="utf-8")) or {}
    out: List[Negative] = []
    for group, lines in (data.get("groups") or {}).items():
        for line in lines or []:
            text = _clean(str(line))
            if text:
                out.append(Negative(text, "hard", group))
    return out


@lru_cache(maxsize=None)
def load_negatives(lang: str) -> Tuple[Negative, ...]:
    """Every out-of-scope sentence for `lang`, deduplicated, in a stable order."""
    seen = set()
    out: List[Negative] = []
    for neg in _hard(lang) + _chatterbot(lang):
        if neg.text not in seen:
            seen.add(neg.text)
            out.append(neg)
    return tuple(out)


@dataclass(frozen=True)
class NegativeTemplate:
    """A template that generates out-of-scope sentences."""

    id: str
    """`oos:tpl:<group>:<index>`."""
    group: str
    """The group it belongs to (trivia, travel, near_miss, ...)."""
    text: str
    """The template as written."""
    node: Node
    """Compiled form."""


@lru_cache(maxsize=None)
def load_negative_templates(lang: str) -> Tuple[Tuple[NegativeTemplate, ...],
                                                Dict[str, Tuple[str, ...]]]:
    """The negative templates of `lang` and their lists (empty when none ship)."""
    from hassil.parse_expression import parse_sentence

    from .templates import Compiler

    res = resources.files("edge_slm") / "data" / "negatives" / f"{lang}_templates.yaml"
    if not res.is_file():
        return (), {}
    path = f"edge_slm/data/negatives/{lang}_templates.yaml"
    data = yaml.safe_load(res.read_text(encoding="utf-8")) or {}
    lists = {name: tuple(str(v) for v in values)
             for name, values in (data.get("lists") or {}).items() if values}
    out: List[NegativeTemplate] = []
    for group, templates in (data.get("groups") or {}).items():
        for i, text in enumerate(templates or []):
            compiler = Compiler({})
            try:
                node = compiler.compile(parse_sentence(str(text)).expression)
            except Exception as err:
                raise CorpusInputError(path, f"{group}[{i}] {text!r}: {err}") from err
            missing = [n for n in compiler.list_names if n not in lists]
            if missing:
                raise CorpusInputError(path, f"{group}[{i}] {text!r}: unknown list {missing[0]}")
            out.append(NegativeTemplate(f"oos:tpl:{group}:{i}", group, str(text), node))
    return tuple(out), lists
