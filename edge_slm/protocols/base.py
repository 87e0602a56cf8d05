"""What every protocol message shares: JSON payload codec and strict field readers.

A message is a frozen dataclass that turns itself into a payload (`to_payload`), is rebuilt
from one (`from_payload`, which raises `ProtocolError` and nothing else on bad input), and
knows its MQTT topic (`topic`, `is_topic`). Stdlib only: this is the wire format, not the
transport.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple, Type, TypeVar, Union

from ..errors import ConfigError, ProtocolError

M = TypeVar("M", bound="Message")

TOPIC_RESERVED = ("/", "+", "#", "\x00")
"""Characters that may not appear in one level of a topic we publish to or name in a
subscription: the level separator, the two wildcards, and NUL (MQTT forbids it in topics)."""
TOPIC_LEVEL_PATTERN = "[^/+#\x00]+"
"""A regular expression (no anchors) of one such level, for topic patterns."""

_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone UTF-16 surrogate: JSON can spell one (`"\\ud800"`), UTF-8 cannot carry it."""

JsonId = Union[str, int, None]
"""A request id as clients send it: a string, an integer, or absent."""


class Message:
    """Base class of the protocol messages (subclasses are frozen dataclasses)."""

    TOPIC: ClassVar[str] = ""
    """The topic of the message (a template with `{...}` fields where it has levels)."""

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object of this message, with its wire (camelCase or snake_case) keys."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls: Type[M], obj: Mapping[str, Any]) -> M:
        """Rebuild the message from its JSON object; raise ProtocolError when it is wrong."""
        raise NotImplementedError

    def to_payload(self) -> bytes:
        """The UTF-8 JSON payload of this message."""
        return json.dumps(self.to_dict(), ensure_ascii=False,
                          separators=(", ", ": ")).encode("utf-8")

    @classmethod
    def from_payload(cls: Type[M], payload: bytes) -> M:
        """Decode and validate a payload; raise ProtocolError when it is not this message."""
        return cls.from_dict(decode_object(payload, cls.__name__))

    @classmethod
    def topic(cls, **kwargs: Any) -> str:
        """The topic of this message (levels filled from `kwargs`)."""
        return cls.TOPIC

    @classmethod
    def is_topic(cls, topic: str) -> bool:
        """True when `topic` is this message's topic."""
        return topic == cls.TOPIC


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_object(payload: Any, what: str = "message") -> Dict[str, Any]:
    """The JSON object in a payload; ProtocolError for empty, non-UTF-8, non-JSON, NaN or
    a JSON value that is not an object."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ProtocolError(f"{what}: payload must be bytes, not {type(payload).__name__}")
    data = bytes(payload)
    if not data.strip():
        raise ProtocolError(f"{what}: empty payload")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ProtocolError(f"{what}: payload is not UTF-8 ({err.reason} at byte "
                            f"{err.start})") from None
    try:
        obj = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"{what}: payload is not JSON ({err})") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what}: payload must be a JSON object, not "
                            f"{_json_type(obj)}")
    if "\\u" in text and not _utf8_clean(obj):
        # an answer echoing it could not be encoded: refuse it here, with a reason
        raise ProtocolError(f"{what}: payload has a lone UTF-16 surrogate escape (\\ud800 to "
                            "\\udfff) in a string")
    return obj


def clean_text(value: Any) -> bool:
    """True for a string UTF-8 can carry (no lone surrogate)."""
    return isinstance(value, str) and _SURROGATE.search(value) is None


def _utf8_clean(obj: Any) -> bool:
    """True when no string in a decoded JSON value (keys included) holds a lone surrogate.
    Iterative: the value may be as deep as the JSON decoder allows."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _fail(what: str, key: str, want: str, value: Any) -> ProtocolError:
    return ProtocolError(f"{what}: field {key!r} must be {want}, not {_json_type(value)}")


def req_str(obj: Mapping[str, Any], key: str, what: str) -> str:
    """A required string field."""
    if key not in obj:
        raise ProtocolError(f"{what}: field {key!r} is missing")
    value = obj[key]
    if not isinstance(value, str):
        raise _fail(what, key, "a string", value)
    return value


def opt_str(obj: Mapping[str, Any], key: str, what: str,
            default: Optional[str] = None) -> Optional[str]:
    """An optional string field (absent or null gives `default`)."""
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _fail(what, key, "a string or null", value)
    return value


def opt_float(obj: Mapping[str, Any], key: str, what: str) -> Optional[float]:
    """An optional number field."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(what, key, "a number or null", value)
    return float(value)


def req_float(obj: Mapping[str, Any], key: str, what: str) -> float:
    """A required number field."""
    value = opt_float(obj, key, what)
    if value is None:
        raise ProtocolError(f"{what}: field {key!r} is missing")
    return value


def opt_int(obj: Mapping[str, Any], key: str, what: str) -> Optional[int]:
    """An optional integer field."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(what, key, "an integer or null", value)
    return value


def opt_str_tuple(obj: Mapping[str, Any], key: str, what: str) -> Optional[Tuple[str, ...]]:
    """An optional array of strings, as a tuple."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _fail(what, key, "an array of strings or null", value)
    for item in value:
        if not isinstance(item, str):
            raise ProtocolError(f"{what}: field {key!r} must hold strings only, not "
                                f"{_json_type(item)}")
    return tuple(value)


def opt_object(obj: Mapping[str, Any], key: str, what: str) -> Optional[Dict[str, Any]]:
    """An optional JSON object field."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail(what, key, "an object or null", value)
    return value


def opt_id(obj: Mapping[str, Any], key: str, what: str) -> JsonId:
    """A request id: a string, an integer, or null (echoed as given)."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _fail(what, key, "a string, an integer or null", value)


def topic_level(value: str, what: str) -> str:
    """`value` checked as one topic level (not empty, none of TOPIC_RESERVED); ConfigError if
    not. The one check of site ids, share groups, intent names and the like."""
    if not isinstance(value, str) or not value or any(c in value for c in TOPIC_RESERVED):
        raise ConfigError(f"{what} {value!r} cannot be an MQTT topic level "
                          "(empty, or has / + # or NUL)")
    return value
