"""The values of `edge-slm serve`'s options (daemon/settings.py), typed and checked: each kind
from a TOML value, an environment variable's text or a flag, with a ConfigError that says
where the bad value came from."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple, TypeVar, Union

from ..errors import ConfigError

# kinds of option values
_STR, _INT, _FLOAT, _PATH, _LIST, _AREAS = "str", "int", "float", "path", "list", "areas"
_PATHS, _BOOL = "paths", "bool"
OptionValue = Union[str, int, float, Path, Tuple[str, ...], Tuple[Path, ...], Dict[str, str]]
"""An option's value once checked (by kind: str, int, float, path, list, paths, areas, bool:
a bool is an int)."""
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
T = TypeVar("T")


def convert(kind: str, choices: Sequence[object], positive: bool, value: object, where: str,
            base: Optional[Path]) -> OptionValue:
    """The value of one option of `kind`, typed and checked (one of `choices` when there are
    any, above zero when `positive`); text (environment) is parsed first."""
    checked: OptionValue
    if kind == _PATH:
        return _path(value, where, base)
    if kind == _BOOL:
        return _switch(value, where)
    if kind == _STR:
        checked = _text(value, where)
    elif kind == _INT:
        if isinstance(value, str):
            value = _parse(int, value, where, "an integer")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, not {value!r}")
        checked = value
    elif kind == _FLOAT:
        if isinstance(value, str):
            value = _parse(float, value, where, "a number")
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ConfigError(f"{where}: expected a number, not {value!r}")
        checked = float(value)
    elif kind == _LIST:
        checked = _names(value, where)
    elif kind == _PATHS:
        checked = tuple(_path(v, where, base)
                        for v in _names([str(v) if isinstance(v, Path) else v for v in value]
                                        if isinstance(value, (list, tuple)) else value, where))
    else:
        checked = _areas(value, where)
    if choices and checked not in choices:
        raise ConfigError(f"{where}: {checked!r} is not one of "
                          f"{', '.join(str(c) for c in choices)}")
    if positive and isinstance(checked, (int, float)) and checked <= 0:
        raise ConfigError(f"{where}: must be above zero, not {checked!r}")
    return checked


def _text(value: object, where: str) -> str:
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, not {value!r}")
    return value


def _switch(value: object, where: str) -> bool:
    """A switch: true or false in the file, 1/0, true/false, yes/no, on/off in a variable,
    the flag given."""
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, not {value!r}")
    return value


def _path(value: object, where: str, base: Optional[Path]) -> Path:
    """A path; a relative one is relative to `base` (the config file's folder) when given."""
    text = _text(value, where)
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # "~someone" who has no home here
        raise ConfigError(f"{where}: {text!r}: no such user's home folder") from None
    return base / path if base is not None and not path.is_absolute() else path


def _parse(kind: Callable[[str], T], text: str, where: str, what: str) -> T:
    try:
        return kind(text.strip())
    except ValueError:
        raise ConfigError(f"{where}: expected {what}, not {text!r}") from None


def _names(value: object, where: str) -> Tuple[str, ...]:
    """Site ids (or key paths): a TOML list or string, a comma-separated variable, or
    repeated flags."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v
                                                       for v in value):
        raise ConfigError(f"{where}: expected a list of names, not {value!r}")
    return tuple(value)


def _areas(value: object, where: str) -> Dict[str, str]:
    """Site areas: a TOML table, "site=Area,site2=Area 2" text, or repeated SITE=AREA flags."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, (list, tuple)):
        pairs: Dict[str, str] = {}
        for pair in value:
            site, sep, area = str(pair).partition("=")
            if not sep or not site.strip() or not area.strip():
                raise ConfigError(f"{where}: {pair!r} is not SITE=AREA")
            pairs[site.strip()] = area.strip()
        value = pairs
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              and v.strip() for k, v in value.items()):
        raise ConfigError(f"{where}: expected a table of site = \"Area\", not {value!r}")
    return dict(value)
