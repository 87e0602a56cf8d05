"""The native edge-slm messages: JSON over MQTT, one topic level per site.

    in:  edge-slm/<site>/query    NativeQuery    {"id", "text", "lang"?, "context"?} or
                                                 {"id", "texts": [...], ...}
    out: edge-slm/<site>/intent   NativeReply    the `parse --jsonl` object + id, latency_ms,
                                                 model_id (or {"id", "results": [...], ...})
         edge-slm/<site>/intent   NativeError    {"id", "error"}
         edge-slm/<site>/status   NativeStatus   {"state", "model_id", "version"} (retained)

The site is part of the topic, not of the payload. Under MQTT 5 a query's Response Topic and
Correlation Data are honoured by the daemon (see docs/daemon.md); that is transport, not
payload, so these classes do not carry it. Keys are snake_case on the wire too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from ..errors import ProtocolError
from .base import (
    TOPIC_LEVEL_PATTERN,
    JsonId,
    Message,
    clean_text,
    opt_float,
    opt_id,
    opt_str,
    opt_str_tuple,
    req_str,
    topic_level,
)

_PREFIX = "edge-slm"
_QUERY = _PREFIX + "/{site_id}/query"
_INTENT = _PREFIX + "/{site_id}/intent"
_STATUS = _PREFIX + "/{site_id}/status"

ONLINE = "online"
OFFLINE = "offline"
_REPLY_META = ("id", "latency_ms", "model_id")


class _SiteTopic(Message):
    """A message whose topic is `edge-slm/<site>/<kind>`."""

    _PATTERN = re.compile("")

    @classmethod
    def topic(cls, **kwargs: Any) -> str:
        """The topic of a site (`site_id`), or with `+` for every site."""
        site = kwargs.get("site_id", "+")
        if site != "+":
            topic_level(site, "site id")
        return cls.TOPIC.format(site_id=site)

    @classmethod
    def is_topic(cls, topic: str) -> bool:
        """True for this kind of topic of any one site."""
        return cls._PATTERN.match(topic) is not None

    @classmethod
    def site_of(cls, topic: str) -> Optional[str]:
        """The site in a topic of this kind, or None when the topic is not one."""
        match = cls._PATTERN.match(topic)
        return match.group(1) if match else None


def _pattern(template: str) -> "re.Pattern[str]":
    site = f"({TOPIC_LEVEL_PATTERN})"
    return re.compile("^" + re.escape(template).replace(re.escape("{site_id}"), site) + "$")


@dataclass(frozen=True)
class NativeQuery(_SiteTopic):
    """Parse one text (`text`) or several in order (`texts`)."""

    TOPIC = _QUERY
    _PATTERN = _pattern(_QUERY)

    id: JsonId = None
    """Request id (string or integer), echoed in the reply."""
    text: Optional[str] = None
    """The text to parse (exactly one of `text` and `texts`)."""
    texts: Optional[Tuple[str, ...]] = None
    """Several texts: the reply carries `results`, in the same order."""
    lang: Optional[str] = None
    """Language of the text ("en", "en-US"); refused when the model speaks another."""
    area: Optional[str] = None
    """The area the command was heard in (wire: `"context": {"area": ...}`); None: the
    site's configured area, if any."""

    def __post_init__(self) -> None:
        if (self.text is None) == (self.texts is None):
            raise ProtocolError("NativeQuery: give exactly one of 'text' and 'texts'")
        if self.area is not None and not self.area.strip():
            raise ProtocolError("NativeQuery: context 'area' is empty")

    def to_dict(self) -> Dict[str, Any]:
        """The wire object (absent fields are left out)."""
        out: Dict[str, Any] = {"id": self.id}
        if self.text is not None:
            out["text"] = self.text
        if self.texts is not None:
            out["texts"] = list(self.texts)
        if self.lang is not None:
            out["lang"] = self.lang
        if self.area is not None:
            out["context"] = {"area": self.area}
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "NativeQuery":
        """Rebuild from the wire object."""
        w = cls.__name__
        texts = opt_str_tuple(obj, "texts", w)
        if texts is not None and not texts:
            raise ProtocolError(f"{w}: field 'texts' is empty")
        context = obj.get("context")
        if context is not None and not isinstance(context, Mapping):
            raise ProtocolError(f"{w}: field 'context' must be an object such as "
                                '{"area": "Kitchen"}')
        area = opt_str(context, "area", w) if context is not None else None
        return cls(opt_id(obj, "id", w), opt_str(obj, "text", w), texts,
                   opt_str(obj, "lang", w), area)


@dataclass(frozen=True)
class NativeReply(_SiteTopic):
    """The answer to a query: one parse object (`result`) or one per text (`results`)."""

    TOPIC = _INTENT
    _PATTERN = _pattern(_INTENT)

    id: JsonId
    """The query's id."""
    model_id: str
    """The bundle that answered."""
    latency_ms: float
    """Time spent parsing, in milliseconds."""
    result: Optional[Mapping[str, Any]] = None
    """`ParseResult.to_dict()`: text, intent, confidence, slots, alternatives."""
    results: Optional[Tuple[Mapping[str, Any], ...]] = None
    """For `texts`: a parse object, or {"error": ...} for a text that cannot be parsed."""

    def __post_init__(self) -> None:
        if (self.result is None) == (self.results is None):
            raise ProtocolError("NativeReply: give exactly one of 'result' and 'results'")

    def to_dict(self) -> Dict[str, Any]:
        """The wire object: the parse object's keys with id, latency_ms and model_id."""
        meta = {"id": self.id, "latency_ms": self.latency_ms, "model_id": self.model_id}
        if self.result is not None:
            return {**self.result, **meta}
        return {**meta, "results": [dict(r) for r in self.results or ()]}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "NativeReply":
        """Rebuild from the wire object."""
        w = cls.__name__
        if "error" in obj:
            raise ProtocolError(f"{w}: this is an error reply ({obj['error']!r})")
        latency = opt_float(obj, "latency_ms", w)
        meta = (opt_id(obj, "id", w), req_str(obj, "model_id", w),
                0.0 if latency is None else latency)
        if "results" in obj:
            items = obj["results"]
            if not isinstance(items, list) or not all(isinstance(r, dict) for r in items):
                raise ProtocolError(f"{w}: field 'results' must be an array of objects")
            return cls(*meta, results=tuple(items))
        result = {k: v for k, v in obj.items() if k not in _REPLY_META}
        if "intent" not in result or "text" not in result:
            raise ProtocolError(f"{w}: a parse object needs 'text' and 'intent'")
        return cls(*meta, result=result)


@dataclass(frozen=True)
class NativeError(_SiteTopic):
    """A query could not be answered (bad payload, bad text), on the reply topic."""

    TOPIC = _INTENT
    _PATTERN = _pattern(_INTENT)

    id: JsonId
    """The query's id (null when it could not be read)."""
    error: str
    """What went wrong."""

    def to_dict(self) -> Dict[str, Any]:
        """The wire object."""
        return {"id": self.id, "error": self.error}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "NativeError":
        """Rebuild from the wire object."""
        w = cls.__name__
        return cls(opt_id(obj, "id", w), req_str(obj, "error", w))


@dataclass(frozen=True)
class NativeStatus(_SiteTopic):
    """Whether the daemon is up (retained; the broker publishes `offline` as its last will)."""

    TOPIC = _STATUS
    _PATTERN = _pattern(_STATUS)

    state: str
    """"online" or "offline"."""
    model_id: Optional[str] = None
    """The bundle being served (online only)."""
    version: Optional[str] = None
    """edge-slm version (online only)."""

    def __post_init__(self) -> None:
        if self.state not in (ONLINE, OFFLINE):
            raise ProtocolError(f"NativeStatus: state must be {ONLINE!r} or {OFFLINE!r}, "
                                f"not {self.state!r}")

    def to_dict(self) -> Dict[str, Any]:
        """The wire object."""
        return {"state": self.state, "model_id": self.model_id, "version": self.version}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "NativeStatus":
        """Rebuild from the wire object."""
        w = cls.__name__
        return cls(req_str(obj, "state", w), opt_str(obj, "model_id", w),
                   opt_str(obj, "version", w))


def peek_id(payload: bytes) -> JsonId:
    """The id of a query payload that may be malformed (None when it cannot be read), so the
    error reply can carry it. Never raises."""
    try:
        obj = json.loads(bytes(payload).decode("utf-8"))
    except (ValueError, TypeError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    value = obj.get("id")
    if clean_text(value) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return None


MESSAGES = (NativeQuery, NativeReply, NativeError, NativeStatus)
"""Every native message class this module speaks."""
