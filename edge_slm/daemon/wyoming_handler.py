"""Pure Wyoming handling: one event in, the events to send back out.

    handler = WyomingHandler(ServedEngine(engine), DaemonConfig())
    handler.handle(Event("transcript", {"text": "turn off the kitchen lights"}), peer="10.0.0.5")
        -> [Intent("HassTurnOff", (Entity("area", "kitchen"), Entity("domain", "light")), ...)]

No sockets, no clock except the injected one (rate limits); safe to call from the server's
connection threads (the engine parses under its own lock, the rate limiter under this
handler's). `describe` gets `info`;
`transcript` (Home Assistant) and `recognize` (Rhasspy 3) get `intent`, `not-recognized`, or,
for a sentence of several commands, `intents-start`, one `intent` each, `intents-stop`. A
request whose data is wrong (a text that is not a string, an area that is not a name) gets an
`error`; one that is well formed but cannot be answered (empty, too long, another language,
rate limited) gets `not-recognized` with the reason as its text, so that Home Assistant, which
waits for an intent or a not-recognized, always finishes. Every other event type is ignored
(Wyoming's rule). The I/O layer (wyoming_server.py) reads and writes the bytes.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from .. import __version__
from ..errors import ProtocolError
from ..protocols.wyoming import (Attribution, Describe, Entity, EntityValue, Error, Info,
                                 Intent, IntentModel, IntentProgram, IntentsStart, IntentsStop,
                                 NotRecognized, Recognize, Transcript, WyomingEvent)
from ..protocols.wyoming_wire import Event, FrameError
from ..runtime.engine import InputError
from ..runtime.result import Command, ParseResult, Slot
from . import DaemonConfig
from .handlers import language_problem
from .limits import RateLimiter
from .served import ServedEngine

_LOGGER = logging.getLogger(__name__)

PROGRAM = "edge-slm"
"""The intent program's name in `info` (what Home Assistant lists)."""
DESCRIPTION = "Offline smart-home intent recognition: a tiny on-device model"
"""The intent program's description in `info`."""
ATTRIBUTION = Attribution("edge-slm", "")
"""Who made it (no public address yet: the URL is empty)."""
MAX_AREA_CHARS = 200
"""Longest area name taken from a request's context."""
BAD_EVENT = "bad-event"
"""Error code: an event whose data is not what its type needs."""
INTERNAL = "internal"
"""Error code: answering failed unexpectedly (logged with its traceback)."""


def commands_of(result: ParseResult) -> List[Command]:
    """The commands of a parse in spoken order; none when nothing was recognized."""
    if result.intent is None:
        return []
    return [c for c in result.commands if c.intent is not None]


def entities_of(slots: Sequence[Slot]) -> List[Entity]:
    """One entity per slot name (the first, as `ParseResult.slot_values` has it; Home
    Assistant keys slots by name), implied slots (domain, the satellite's area) included."""
    seen: Dict[str, EntityValue] = {}
    for s in slots:
        if s.name not in seen:
            seen[s.name] = s.value
    return [Entity(name, value) for name, value in seen.items()]


def intent_event(command: Command, context: Optional[Mapping[str, Any]]) -> Intent:
    """The `intent` of one command."""
    return Intent(command.intent or "", tuple(entities_of(command.slots)),
                  round(command.confidence, 4), context=context)


def not_recognized_reason(result: ParseResult) -> str:
    """Why a parse recognized nothing, short enough to be shown or said."""
    if result.top_intent is None:
        return "not recognized: not a home command"
    return (f"not recognized: not sure enough (best guess {result.top_intent}, "
            f"{result.confidence:.0%})")


def result_events(result: ParseResult,
                  context: Optional[Mapping[str, Any]] = None) -> List[WyomingEvent]:
    """The answer to a parse: one `intent`, `intents-start` + an `intent` per command +
    `intents-stop` for several, or `not-recognized` with the reason."""
    commands = commands_of(result)
    if not commands:
        return [NotRecognized(not_recognized_reason(result), context)]
    if len(commands) == 1:
        return [intent_event(commands[0], context)]
    return [IntentsStart(context), *(intent_event(c, context) for c in commands),
            IntentsStop(context)]


class WyomingHandler:
    """Answers Wyoming events with the served engine; pure (see module doc)."""

    def __init__(self, source: ServedEngine, config: DaemonConfig,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        """The engine (shared with the MQTT handler in one process)."""
        self.config = config
        """The limits: text length, rate limit and burst (per client address here)."""
        self.limiter = RateLimiter(config.rate_limit, config.rate_burst, clock)
        """Texts parsed per client address."""
        self._limiter_lock = threading.Lock()  # connections are answered from many threads

    def info(self) -> Info:
        """What `describe` is answered with: edge-slm and the bundle it serves."""
        served = self.source.served
        bundle = served.engine.bundle
        model = IntentModel(served.model_id, (served.lang,) if served.lang else (),
                            ATTRIBUTION, f"{bundle.quantization} bundle", served.model_id)
        return Info((IntentProgram(PROGRAM, ATTRIBUTION, (model,), DESCRIPTION,
                                   __version__),))

    def handle(self, event: Event, peer: str = "") -> List[WyomingEvent]:
        """The events that answer `event` from the client at address `peer` (empty for an
        event this service does not take)."""
        try:
            if Describe.is_type(event.type):
                return [self.info()]
            if Transcript.is_type(event.type):
                t = Transcript.from_event(event)
                return self.recognize(t.text, t.language, t.context, peer)
            if Recognize.is_type(event.type):
                r = Recognize.from_event(event)
                return self.recognize(r.text, None, r.context, peer)
        except ProtocolError as err:
            _LOGGER.warning("Wyoming client %s: %s", peer, err)
            return [Error(str(err), BAD_EVENT)]
        _LOGGER.debug("Wyoming client %s: ignoring a %r event", peer, event.type[:40])
        return []

    def frame_error(self, error: FrameError, peer: str = "") -> Error:
        """The `error` answering bytes that were no event."""
        _LOGGER.warning("Wyoming client %s: %s", peer, error.text)
        return Error(error.text, error.code)

    def recognize(self, text: str, language: Optional[str],
                  context: Optional[Mapping[str, Any]], peer: str) -> List[WyomingEvent]:
        """The answer to one sentence (ProtocolError for a context area that is no name)."""
        area = area_of(context)
        problem = (self._rate_problem(peer) or language_problem(language, self.source.served.lang)
                   or self._text_problem(text))
        if problem:
            return [NotRecognized(problem, context)]
        if not text.strip():
            return [NotRecognized("not recognized: nothing was said", context)]
        try:
            result = self.source.parse(text, area=area)
        except InputError as err:
            return [NotRecognized(str(err), context)]
        return result_events(result, context)

    def _text_problem(self, text: str) -> Optional[str]:
        if len(text) > self.config.max_text_chars:
            return f"text too long ({len(text)} characters; at most {self.config.max_text_chars})"
        return None

    def _rate_problem(self, peer: str) -> Optional[str]:
        with self._limiter_lock:
            refused = self.limiter.take(peer, 1)
        if refused is None:
            return None
        problem = (f"rate limited: a client may send {self.config.rate_limit:g} texts a second "
                   f"({self.config.rate_burst} at once); try again in {refused.wait_s:.1f} s")
        if refused.first:
            _LOGGER.warning("Wyoming client %s: %s (not logged again until it is served)",
                            peer, problem)
        return problem


def area_of(context: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The area a request was heard in (`context.area`), or None; ProtocolError when it is
    there but no name."""
    if context is None or context.get("area") is None:
        return None
    area = context["area"]
    if not isinstance(area, str) or not area.strip() or len(area) > MAX_AREA_CHARS:
        raise ProtocolError(f"context 'area' must be an area name of at most {MAX_AREA_CHARS} "
                            f"characters, not {str(area)[:40]!r}")
    return area
