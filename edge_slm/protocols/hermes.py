"""Hermes NLU messages, as Rhasspy 2.5 and Snips speak them (the `rhasspy-hermes` wire format).

    in:  hermes/nlu/query                 NluQuery
    out: hermes/nlu/intentParsed          NluIntentParsed   (then NluIntent)
         hermes/intent/<intentName>       NluIntent
         hermes/nlu/intentNotRecognized   NluIntentNotRecognized
         hermes/error/nlu                 NluError

Payloads are JSON objects with camelCase keys; every field is written, null when unset, so a
`rhasspy-hermes` client parses them with its own classes. Fields are snake_case here.
Decoding is strict (a wrong type is a `ProtocolError`), except that a missing or null
`siteId` means "default" as in rhasspy-hermes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from ..errors import ProtocolError
from .base import (
    TOPIC_LEVEL_PATTERN,
    Message,
    clean_text,
    opt_float,
    opt_int,
    opt_object,
    opt_str,
    opt_str_tuple,
    req_float,
    req_str,
    topic_level,
)

_QUERY = "hermes/nlu/query"
_INTENT_PARSED = "hermes/nlu/intentParsed"
_INTENT = "hermes/intent/{intent_name}"
_NOT_RECOGNIZED = "hermes/nlu/intentNotRecognized"
_ERROR = "hermes/error/nlu"
_INTENT_PATTERN = re.compile(f"^hermes/intent/({TOPIC_LEVEL_PATTERN})$")

DEFAULT_SITE = "default"
"""The site of a message that names none (as in rhasspy-hermes)."""


# -- parts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HermesIntent:
    """The `intent` object of an intent message."""

    intent_name: str
    """Intent name ("HassTurnOff")."""
    confidence_score: float
    """Probability of the intent, 0 to 1."""

    def to_dict(self) -> Dict[str, Any]:
        """The wire object."""
        return {"intentName": self.intent_name, "confidenceScore": self.confidence_score}

    @classmethod
    def from_dict(cls, obj: Any, what: str = "intent") -> "HermesIntent":
        """Rebuild from the wire object."""
        if not isinstance(obj, dict):
            raise ProtocolError(f"{what}: must be an object")
        return cls(req_str(obj, "intentName", what), req_float(obj, "confidenceScore", what))


@dataclass(frozen=True)
class SlotRange:
    """Where a slot's words are in the input (character offsets, end exclusive)."""

    start: int
    """First character of the value in the (substituted) input."""
    end: int
    """One past the last character."""
    raw_start: Optional[int] = None
    """First character in the raw input (we do no substitution: equal to `start`)."""
    raw_end: Optional[int] = None
    """One past the last character in the raw input."""

    def to_dict(self) -> Dict[str, Any]:
        """The wire object."""
        return {"start": self.start, "end": self.end, "rawStart": self.raw_start,
                "rawEnd": self.raw_end}

    @classmethod
    def from_dict(cls, obj: Any, what: str = "range") -> "SlotRange":
        """Rebuild from the wire object."""
        if not isinstance(obj, dict):
            raise ProtocolError(f"{what}: must be an object")
        start, end = opt_int(obj, "start", what), opt_int(obj, "end", what)
        if start is None or end is None:
            raise ProtocolError(f"{what}: 'start' and 'end' are required")
        return cls(start, end, opt_int(obj, "rawStart", what), opt_int(obj, "rawEnd", what))


@dataclass(frozen=True)
class HermesSlot:
    """One slot of an intent message."""

    entity: str
    """Entity of the slot (we use the slot name: "area", "name", "brightness")."""
    value: Mapping[str, Any]
    """Resolved value: {"kind": "Number", "value": 50} or {"kind": "Unknown", "value": "..."}."""
    slot_name: str
    """Slot name."""
    raw_value: str
    """The words as said."""
    confidence: float = 1.0
    """Probability of the slot, 0 to 1."""
    range: Optional[SlotRange] = None
    """Where the words are in the input; None for a slot that was not said (a site's area)."""

    def to_dict(self) -> Dict[str, Any]:
        """The wire object."""
        return {"entity": self.entity, "value": dict(self.value), "slotName": self.slot_name,
                "rawValue": self.raw_value, "confidence": self.confidence,
                "range": self.range.to_dict() if self.range is not None else None}

    @classmethod
    def from_dict(cls, obj: Any, what: str = "slot") -> "HermesSlot":
        """Rebuild from the wire object."""
        if not isinstance(obj, dict):
            raise ProtocolError(f"{what}: must be an object")
        entity = req_str(obj, "entity", what)
        value = opt_object(obj, "value", what)
        if value is None or "value" not in value:
            raise ProtocolError(f"{what}: 'value' must be an object with a 'value' key")
        raw = obj.get("rawValue")
        if raw is None:
            raw = value["value"]
        if isinstance(raw, (dict, list)) or isinstance(raw, bool):
            raise ProtocolError(f"{what}: 'rawValue' must be a string")
        confidence = opt_float(obj, "confidence", what)
        rng = obj.get("range")
        return cls(entity, value, opt_str(obj, "slotName", what, entity) or entity, str(raw),
                   1.0 if confidence is None else confidence,
                   SlotRange.from_dict(rng, what + ".range") if rng is not None else None)


def _site(obj: Mapping[str, Any], what: str) -> str:
    site = opt_str(obj, "siteId", what)
    return DEFAULT_SITE if site is None else site


def _slots(obj: Mapping[str, Any], what: str) -> Tuple[HermesSlot, ...]:
    value = obj.get("slots")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProtocolError(f"{what}: field 'slots' must be an array or null")
    return tuple(HermesSlot.from_dict(s, f"{what}.slots[{i}]") for i, s in enumerate(value))


# -- messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NluQuery(Message):
    """A request to recognize the intent of a text (`hermes/nlu/query`)."""

    TOPIC = _QUERY

    input: str
    """The text (an ASR transcript)."""
    site_id: str = DEFAULT_SITE
    """The site (satellite) that heard it."""
    id: Optional[str] = None
    """Request id, echoed in the answer."""
    intent_filter: Optional[Tuple[str, ...]] = None
    """Only these intents may be answered (None or empty: any)."""
    session_id: Optional[str] = None
    """Dialogue session, echoed."""
    wakeword_id: Optional[str] = None
    """The wake word that opened the session, echoed."""
    lang: Optional[str] = None
    """Language of the session ("en", "en-US"), echoed."""
    custom_data: Optional[str] = None
    """Opaque data of the session, echoed."""
    asr_confidence: Optional[float] = None
    """The speech recognizer's confidence, echoed."""
    custom_entities: Optional[Mapping[str, Any]] = None
    """Entities the dialogue manager wants set in the intent (copied into its slots)."""

    def to_dict(self) -> Dict[str, Any]:
        """The wire object."""
        return {"input": self.input, "siteId": self.site_id, "id": self.id,
                "intentFilter": list(self.intent_filter) if self.intent_filter is not None
                else None,
                "sessionId": self.session_id, "wakewordId": self.wakeword_id,
                "lang": self.lang, "customData": self.custom_data,
                "asrConfidence": self.asr_confidence,
                "customEntities": dict(self.custom_entities)
                if self.custom_entities is not None else None}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "NluQuery":
        """Rebuild from the wire object."""
        w = cls.__name__
        return cls(req_str(obj, "input", w), _site(obj, w),
                   opt_str(obj, "id", w), opt_str_tuple(obj, "intentFilter", w),
                   opt_str(obj, "sessionId", w), opt_str(obj, "wakewordId", w),
                   opt_str(obj, "lang", w), opt_str(obj, "customData", w),
                   opt_float(obj, "asrConfidence", w), opt_object(obj, "customEntities", w))


@dataclass(frozen=True)
class NluIntentParsed(Message):
    """An intent was recognized (`hermes/nlu/intentParsed`, sent before NluIntent)."""

    TOPIC = _INTENT_PARSED

    input: str
    """The text that was parsed."""
    intent: HermesIntent
    """Intent name and confidence."""
    site_id: str = DEFAULT_SITE
    """Site of the query."""
    id: Optional[str] = None
    """Request id of the query."""
    slots: Tuple[HermesSlot, ...] = ()
    """The slots found (written as an array, empty when none)."""
    session_id: Optional[str] = None
    """Session of the query."""

    def to_dict(self) -> Dict[str, Any]:
        """The wire object."""
        return {"input": self.input, "intent": self.intent.to_dict(), "siteId": self.site_id,
                "id": self.id, "slots": [s.to_dict() for s in self.slots],
                "sessionId": self.session_id}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "NluIntentParsed":
        """Rebuild from the wire object."""
        w = cls.__name__
        return cls(req_str(obj, "input", w), HermesIntent.from_dict(obj.get("intent"), w),
                   _site(obj, w), opt_str(obj, "id", w),
                   _slots(obj, w), opt_str(obj, "sessionId", w))


@dataclass(frozen=True)
class NluIntent(Message):
    """The recognized intent, for intent handlers (`hermes/intent/<intentName>`)."""

    TOPIC = _INTENT

    input: str
    """The text that was parsed."""
    intent: HermesIntent
    """Intent name and confidence."""
    site_id: str = DEFAULT_SITE
    """Site of the query."""
    id: Optional[str] = None
    """Request id of the query."""
    slots: Tuple[HermesSlot, ...] = ()
    """The slots found, then the query's custom entities, then the site's area."""
    session_id: Optional[str] = None
    """Session of the query."""
    custom_data: Optional[str] = None
    """The query's custom data."""
    asr_tokens: Optional[Tuple[Any, ...]] = None
    """Speech recognizer tokens (we have none: null)."""
    asr_confidence: Optional[float] = None
    """The query's ASR confidence."""
    raw_input: Optional[str] = None
    """The input before substitutions (we make none: the input)."""
    wakeword_id: Optional[str] = None
    """The query's wake word."""
    lang: Optional[str] = None
    """The query's language."""

    @classmethod
    def topic(cls, **kwargs: Any) -> str:
        """`hermes/intent/<intent_name>` (`hermes/intent/#` without one)."""
        name = kwargs.get("intent_name", "#")
        if name != "#":
            topic_level(name, "intent name")
        return _INTENT.format(intent_name=name)

    @classmethod
    def is_topic(cls, topic: str) -> bool:
        """True for `hermes/intent/<one level>`."""
        return _INTENT_PATTERN.match(topic) is not None

    @classmethod
    def intent_name_of(cls, topic: str) -> Optional[str]:
        """The intent name in a topic, or None when it is not an intent topic."""
        match = _INTENT_PATTERN.match(topic)
        return match.group(1) if match else None

    def to_dict(self) -> Dict[str, Any]:
        """The wire object."""
        return {"input": self.input, "intent": self.intent.to_dict(), "siteId": self.site_id,
                "id": self.id, "slots": [s.to_dict() for s in self.slots],
                "sessionId": self.session_id, "customData": self.custom_data,
                "asrTokens": list(self.asr_tokens) if self.asr_tokens is not None else None,
                "asrConfidence": self.asr_confidence, "rawInput": self.raw_input,
                "wakewordId": self.wakeword_id, "lang": self.lang}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "NluIntent":
        """Rebuild from the wire object."""
        w = cls.__name__
        tokens = obj.get("asrTokens")
        if tokens is not None and not isinstance(tokens, list):
            raise ProtocolError(f"{w}: field 'asrTokens' must be an array or null")
        return cls(req_str(obj, "input", w), HermesIntent.from_dict(obj.get("intent"), w),
                   _site(obj, w), opt_str(obj, "id", w),
                   _slots(obj, w), opt_str(obj, "sessionId", w), opt_str(obj, "customData", w),
                   tuple(tokens) if tokens is not None else None,
                   opt_float(obj, "asrConfidence", w), opt_str(obj, "rawInput", w),
                   opt_str(obj, "wakewordId", w), opt_str(obj, "lang", w))


@dataclass(frozen=True)
class NluIntentNotRecognized(Message):
    """No intent (or none the filter allows) was recognized (`hermes/nlu/intentNotRecognized`)."""

    TOPIC = _NOT_RECOGNIZED

    input: str
    """The text that was parsed."""
    site_id: str = DEFAULT_SITE
    """Site of the query."""
    id: Optional[str] = None
    """Request id of the query."""
    custom_data: Optional[str] = None
    """The query's custom data."""
    session_id: Optional[str] = None
    """Session of the query."""

    def to_dict(self) -> Dict[str, Any]:
        """The wire object."""
        return {"input": self.input, "siteId": self.site_id, "id": self.id,
                "customData": self.custom_data, "sessionId": self.session_id}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "NluIntentNotRecognized":
        """Rebuild from the wire object."""
        w = cls.__name__
        return cls(req_str(obj, "input", w), _site(obj, w),
                   opt_str(obj, "id", w), opt_str(obj, "customData", w),
                   opt_str(obj, "sessionId", w))


@dataclass(frozen=True)
class NluError(Message):
    """A query could not be answered (`hermes/error/nlu`): bad payload, bad text."""

    TOPIC = _ERROR

    error: str
    """What went wrong."""
    site_id: str = DEFAULT_SITE
    """Site of the query ("default" when the payload did not say)."""
    context: Optional[str] = None
    """What was being done: the query's input (shortened) or the topic."""
    session_id: Optional[str] = None
    """Session of the query, when known."""

    def to_dict(self) -> Dict[str, Any]:
        """The wire object."""
        return {"error": self.error, "siteId": self.site_id, "context": self.context,
                "sessionId": self.session_id}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "NluError":
        """Rebuild from the wire object."""
        w = cls.__name__
        return cls(req_str(obj, "error", w), _site(obj, w),
                   opt_str(obj, "context", w), opt_str(obj, "sessionId", w))


def peek_site(payload: bytes) -> Tuple[str, Optional[str]]:
    """(siteId, sessionId) of a query payload that may be malformed, so its error can be
    addressed: whatever string fields can be read, else ("default", None). Never raises."""
    try:
        obj = json.loads(bytes(payload).decode("utf-8"))
    except (ValueError, TypeError, RecursionError):
        return DEFAULT_SITE, None
    if not isinstance(obj, dict):
        return DEFAULT_SITE, None
    site, session = obj.get("siteId"), obj.get("sessionId")
    return (site if clean_text(site) else DEFAULT_SITE,
            session if clean_text(session) else None)


MESSAGES = (NluQuery, NluIntentParsed, NluIntent, NluIntentNotRecognized, NluError)
"""Every Hermes message class this module speaks."""
