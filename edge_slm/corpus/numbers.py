"""Numbers as words, through the same RBNF engine hassil uses, cached per language."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Optional, Tuple, Union

if TYPE_CHECKING:
    from hassil.numbers import RbnfEngine

_LOGGER = logging.getLogger(__name__)

Number = Union[int, float]


@lru_cache(maxsize=None)
def _engine(lang: str) -> Optional[RbnfEngine]:
    from hassil.numbers import get_rbnf_engine

    try:
        return get_rbnf_engine(lang)
    except ValueError:
        _LOGGER.warning("no number words for %s; numbers stay digits", lang)
        return None


@lru_cache(maxsize=65536)
def number_words(lang: str, number: Number) -> Tuple[str, ...]:
    """Every distinct spelling of `number` in `lang` (empty when the language has none)."""
    engine = _engine(lang)
    if engine is None:
        return ()
    try:
        result = engine.format_number(number)
    except Exception:  # the engine has gaps for some numbers in some languages
        return ()
    return tuple(sorted(set(result.text_by_ruleset.values())))


def number_digits(number: Number) -> str:
    """`number` as digits: 20 -> "20", 20.5 -> "20.5", 20.0 -> "20"."""
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    return str(number)
