"""The Wyoming events of an intent service, as frozen dataclasses that know their type and
data (the framing is `wyoming_wire.py`).

    in:  describe        Describe
         transcript      Transcript    {"text", "language"?, "context"?}   (Home Assistant)
         recognize       Recognize     {"text", "context"?}                (Rhasspy 3)
    out: info            Info          {"asr": [], ..., "intent": [IntentProgram], ...}
         intent          Intent        {"name", "entities": [{"name", "value"}], "text"?,
                                        "context"?, "confidence"}
         not-recognized  NotRecognized {"text"?, "context"?}
         intents-start   IntentsStart  {"context"?}   several commands in one sentence:
         intents-stop    IntentsStop   {"context"?}   start, one intent each, stop
         error           Error         {"text", "code"?}

Names and keys are those of the `wyoming` 1.10 library (wyoming/info.py, intent.py, asr.py,
error.py), whose own classes read what these write. `text` is wyoming's "human-readable
response": Home Assistant says an intent's `text` when its intent handler said nothing, and
shows a not-recognized one's as the error. `confidence` is ours; wyoming ignores keys it does
not know. Each class has `to_data()`, `from_data(data)` (raising ProtocolError), `to_bytes()`,
`from_event(event)` and `is_type(type)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple, Type, TypeVar, Union

from ..errors import ProtocolError
from .base import opt_float, opt_object, opt_str, req_str
from .wyoming_wire import Event, encode_event

E = TypeVar("E", bound="WyomingEvent")
EntityValue = Union[str, int, float, bool, None]
"""An entity's value: a name in the home's spelling, a list value, a number."""

_SERVICES = ("asr", "tts", "handle", "intent", "wake", "mic", "snd")
"""The lists of an `info` event (every one written, as the wyoming library does)."""


class WyomingEvent:
    """Base class of the Wyoming events (subclasses are frozen dataclasses)."""

    TYPE: ClassVar[str] = ""
    """The event type on the wire."""

    def to_data(self) -> Dict[str, Any]:
        """The event's data object."""
        return {}

    @classmethod
    def from_data(cls: Type[E], data: Mapping[str, Any]) -> E:
        """Rebuild the event from its data; ProtocolError when it is wrong."""
        return cls()

    def to_bytes(self) -> bytes:
        """The event framed for the wire."""
        return encode_event(self.TYPE, self.to_data())

    @classmethod
    def from_event(cls: Type[E], event: Event) -> E:
        """The typed event of a decoded one; ProtocolError when it is another type or its data
        is wrong."""
        if event.type != cls.TYPE:
            raise ProtocolError(f"{cls.__name__}: event type {event.type!r}, not {cls.TYPE!r}")
        return cls.from_data(event.data)

    @classmethod
    def is_type(cls, event_type: str) -> bool:
        """True when `event_type` is this event's."""
        return event_type == cls.TYPE


def _with_context(data: Dict[str, Any], context: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    if context is not None:
        data["context"] = dict(context)
    return data


@dataclass(frozen=True)
class Describe(WyomingEvent):
    """Asks for `info`."""

    TYPE = "describe"


@dataclass(frozen=True)
class Attribution:
    """Who made an artifact and where it is from."""

    name: str
    url: str


@dataclass(frozen=True)
class IntentModel:
    """One intent model (a bundle) of an intent program."""

    name: str
    """The bundle's model id."""
    languages: Tuple[str, ...]
    """The languages it understands ("en")."""
    attribution: Attribution
    description: Optional[str] = None
    version: Optional[str] = None
    installed: bool = True

    def to_dict(self) -> Dict[str, Any]:
        """The wire object (wyoming's IntentModel)."""
        return dict(_artifact_dict(self), languages=list(self.languages))


@dataclass(frozen=True)
class IntentProgram:
    """An intent recognition service and its models."""

    name: str
    attribution: Attribution
    models: Tuple[IntentModel, ...]
    description: Optional[str] = None
    version: Optional[str] = None
    installed: bool = True

    def to_dict(self) -> Dict[str, Any]:
        """The wire object (wyoming's IntentProgram)."""
        return dict(_artifact_dict(self), models=[m.to_dict() for m in self.models])


def _artifact_dict(a: Union[IntentModel, IntentProgram]) -> Dict[str, Any]:
    """What every wyoming artifact has: name, attribution, installed, description, version."""
    return {"name": a.name, "attribution": {"name": a.attribution.name,
                                            "url": a.attribution.url},
            "installed": a.installed, "description": a.description, "version": a.version}


def _read_artifact(obj: object, what: str) -> Tuple[Mapping[str, Any], Dict[str, Any]]:
    """(the object, the keyword arguments of its artifact fields); ProtocolError when it is
    no artifact."""
    if not isinstance(obj, Mapping):
        raise ProtocolError(f"{what} must be an object")
    installed = obj.get("installed", True)
    if not isinstance(installed, bool):
        raise ProtocolError(f"{what}: field 'installed' must be a boolean")
    att = opt_object(obj, "attribution", what) or {}
    return obj, {"name": req_str(obj, "name", what),
                 "attribution": Attribution(req_str(att, "name", what + " attribution"),
                                            req_str(att, "url", what + " attribution")),
                 "description": opt_str(obj, "description", what),
                 "version": opt_str(obj, "version", what), "installed": installed}


@dataclass(frozen=True)
class Info(WyomingEvent):
    """What this service offers: intent recognition programs only."""

    TYPE = "info"

    intent: Tuple[IntentProgram, ...] = ()
    """The intent programs (one: edge-slm)."""

    def to_data(self) -> Dict[str, Any]:
        """Every service list, the intent one filled."""
        data: Dict[str, Any] = {name: [] for name in _SERVICES}
        data["intent"] = [p.to_dict() for p in self.intent]
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Info":
        """Rebuild the intent programs (other services are not ours: ignored)."""
        programs = data.get("intent", [])
        if not isinstance(programs, list):
            raise ProtocolError("Info: field 'intent' must be an array")
        out = []
        for item in programs:
            program, fields = _read_artifact(item, "Info: intent program")
            models = program.get("models", [])
            if not isinstance(models, list):
                raise ProtocolError("Info: intent program field 'models' must be an array")
            built = []
            for one in models:
                model, model_fields = _read_artifact(one, "Info: intent model")
                langs = model.get("languages", [])
                if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
                    raise ProtocolError("Info: intent model 'languages' must be strings")
                built.append(IntentModel(languages=tuple(langs), **model_fields))
            out.append(IntentProgram(models=tuple(built), **fields))
        return cls(tuple(out))


@dataclass(frozen=True)
class Transcript(WyomingEvent):
    """What was said (Home Assistant's Wyoming conversation agent sends this)."""

    TYPE = "transcript"

    text: str
    """The sentence."""
    language: Optional[str] = None
    """Its language ("en", "en-US")."""
    context: Optional[Mapping[str, Any]] = None
    """The client's context: echoed; `{"area": "Kitchen"}` is where it was heard."""

    def to_data(self) -> Dict[str, Any]:
        """{"text", "language"?, "context"?}."""
        data: Dict[str, Any] = {"text": self.text}
        if self.language is not None:
            data["language"] = self.language
        return _with_context(data, self.context)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Transcript":
        """Rebuild and check the types."""
        w = cls.__name__
        return cls(req_str(data, "text", w), opt_str(data, "language", w),
                   opt_object(data, "context", w))


@dataclass(frozen=True)
class Recognize(WyomingEvent):
    """Recognize an intent in a text (Rhasspy 3 sends this)."""

    TYPE = "recognize"

    text: str
    """The sentence."""
    context: Optional[Mapping[str, Any]] = None
    """The client's context: echoed; `{"area": "Kitchen"}` is where it was heard."""

    def to_data(self) -> Dict[str, Any]:
        """{"text", "context"?}."""
        return _with_context({"text": self.text}, self.context)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Recognize":
        """Rebuild and check the types."""
        w = cls.__name__
        return cls(req_str(data, "text", w), opt_object(data, "context", w))


@dataclass(frozen=True)
class Entity:
    """One slot of an intent: Home Assistant's slot name and value."""

    name: str
    value: EntityValue = None


@dataclass(frozen=True)
class Intent(WyomingEvent):
    """A recognized intent with its entities."""

    TYPE = "intent"

    name: str
    """The Home Assistant intent (HassTurnOff)."""
    entities: Tuple[Entity, ...] = ()
    """Its slots ({"name": "area", "value": "kitchen"}, implied ones such as domain too)."""
    confidence: Optional[float] = None
    """The engine's calibrated probability of the intent (ours; wyoming ignores it)."""
    text: Optional[str] = None
    """A response to say (wyoming's field; edge-slm leaves it to Home Assistant)."""
    context: Optional[Mapping[str, Any]] = None
    """The request's context, echoed."""

    def to_data(self) -> Dict[str, Any]:
        """{"name", "entities", "confidence"?, "text"?, "context"?}."""
        data: Dict[str, Any] = {"name": self.name,
                                "entities": [{"name": e.name, "value": e.value}
                                             for e in self.entities]}
        if self.confidence is not None:
            data["confidence"] = self.confidence
        if self.text is not None:
            data["text"] = self.text
        return _with_context(data, self.context)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Intent":
        """Rebuild and check the types."""
        w = cls.__name__
        entities = data.get("entities", [])
        if not isinstance(entities, list) or not all(
                isinstance(e, dict) and isinstance(e.get("name"), str) for e in entities):
            raise ProtocolError(f"{w}: field 'entities' must be objects with a 'name'")
        return cls(req_str(data, "name", w),
                   tuple(Entity(e["name"], e.get("value")) for e in entities),
                   opt_float(data, "confidence", w), opt_str(data, "text", w),
                   opt_object(data, "context", w))


@dataclass(frozen=True)
class NotRecognized(WyomingEvent):
    """No intent: `text` says why, short enough to be said or shown."""

    TYPE = "not-recognized"

    text: Optional[str] = None
    """Why (Home Assistant shows it as the error)."""
    context: Optional[Mapping[str, Any]] = None
    """The request's context, echoed."""

    def to_data(self) -> Dict[str, Any]:
        """{"text"?, "context"?}."""
        data: Dict[str, Any] = {}
        if self.text is not None:
            data["text"] = self.text
        return _with_context(data, self.context)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "NotRecognized":
        """Rebuild and check the types."""
        w = cls.__name__
        return cls(opt_str(data, "text", w), opt_object(data, "context", w))


C = TypeVar("C", bound="_ContextOnly")


@dataclass(frozen=True)
class _ContextOnly(WyomingEvent):
    """An event whose data is the request's context only."""

    context: Optional[Mapping[str, Any]] = None
    """The request's context, echoed."""

    def to_data(self) -> Dict[str, Any]:
        """{"context"?}."""
        return _with_context({}, self.context)

    @classmethod
    def from_data(cls: Type[C], data: Mapping[str, Any]) -> C:
        """Rebuild and check the types."""
        return cls(opt_object(data, "context", cls.__name__))


@dataclass(frozen=True)
class IntentsStart(_ContextOnly):
    """Several intents follow (one sentence, several commands), then `intents-stop`."""

    TYPE = "intents-start"


@dataclass(frozen=True)
class IntentsStop(_ContextOnly):
    """The end of the intents `intents-start` began."""

    TYPE = "intents-stop"


@dataclass(frozen=True)
class Error(WyomingEvent):
    """An event that could not be read or answered."""

    TYPE = "error"

    text: str
    """What went wrong."""
    code: Optional[str] = None
    """A short machine-readable code (bad-json, too-large, bad-event, busy, internal)."""

    def to_data(self) -> Dict[str, Any]:
        """{"text", "code"?}."""
        data: Dict[str, Any] = {"text": self.text}
        if self.code is not None:
            data["code"] = self.code
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Error":
        """Rebuild and check the types."""
        w = cls.__name__
        return cls(req_str(data, "text", w), opt_str(data, "code", w))


EVENTS: Tuple[Type[WyomingEvent], ...] = (Describe, Info, Transcript, Recognize, Intent,
                                          NotRecognized, IntentsStart, IntentsStop, Error)
"""Every Wyoming event class this module speaks."""
