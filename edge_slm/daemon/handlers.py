"""Pure message handling: one MQTT message in, the messages to publish out.

    handler = Handler(engine, DaemonConfig(site_areas={"kitchen-sat": "Kitchen"}))
    handler.handle("hermes/nlu/query", payload, properties=None) -> [Outgoing, ...]

No paho, no sockets, no clock except the injected `clock` (latency). A bad payload is
answered with an error message (Hermes `hermes/error/nlu`, native `{"id", "error"}`) and
never raises; a query for a site this daemon does not serve is answered by nobody here
(an empty list). The I/O layer (mqtt.py) publishes what comes back.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .. import __version__
from ..errors import ProtocolError
from ..protocols import Message
from ..protocols import hermes as h
from ..protocols import native as n
from ..runtime.engine import InputError, IntentEngine
from ..runtime.result import ParseResult, Slot
from . import DaemonConfig
from .limits import RateLimiter
from .served import Served, ServedEngine  # noqa: F401  (Served re-exported)

_LOGGER = logging.getLogger(__name__)

RESPONSE_TOPIC = "ResponseTopic"
"""MQTT 5 property (paho's name) with the topic a requester wants its reply on."""
CORRELATION_DATA = "CorrelationData"
"""MQTT 5 property (paho's name) a requester wants echoed in its reply."""
_CONTEXT_CHARS = 100
"""How much of a bad query's input an NluError's context repeats."""
Route = Tuple[str, Dict[str, Any], Optional[str]]
"""Where a native reply goes: (topic, MQTT 5 properties, why the response topic asked for was
refused, or None)."""


@dataclass(frozen=True)
class Outgoing:
    """One message to publish."""

    topic: str
    """Where to publish."""
    payload: bytes
    """The message's payload."""
    qos: int = 1
    """MQTT QoS."""
    retain: bool = False
    """Whether the broker keeps it for later subscribers (status only)."""
    properties: Mapping[str, Any] = field(default_factory=dict)
    """MQTT 5 publish properties by paho name ({"CorrelationData": b"..."}); ignored by 3.1.1."""


def hermes_value(value: object) -> Dict[str, Any]:
    """A slot value as Hermes writes it: {"kind": "Number", ...} or {"kind": "Unknown", ...}."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return {"kind": "Number", "value": value}
    return {"kind": "Unknown", "value": value if isinstance(value, str) else str(value)}


def hermes_slots(slots: Sequence[Slot]) -> Tuple[h.HermesSlot, ...]:
    """The engine's slots (name, value, raw, start, end, confidence) as Hermes slots; an
    implied slot (a fixed slot, the satellite's area) has no words, so no range, and its
    value as its raw value."""
    return tuple(
        h.HermesSlot(entity=s.name, value=hermes_value(s.value), slot_name=s.name,
                     raw_value=s.raw if s.start is not None else _raw_of(s.value),
                     confidence=round(float(s.confidence), 4),
                     range=(h.SlotRange(s.start, s.end, s.start, s.end)
                            if s.start is not None and s.end is not None else None))
        for s in slots)


def _raw_of(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _unsaid_slot(name: str, value: object) -> h.HermesSlot:
    """A slot that was not in the words (custom entity, site area): no range, sure."""
    return h.HermesSlot(entity=name, value=hermes_value(value), slot_name=name,
                        raw_value=_raw_of(value), confidence=1.0, range=None)


LOGGED_TOPIC_CHARS = 200
"""Most characters of a client's response topic repeated in a log line or an error."""


class Handler:
    """Answers Hermes and native queries with an `IntentEngine`; pure (see module doc)."""

    def __init__(self, engine: IntentEngine, config: DaemonConfig,
                 clock: Callable[[], float] = time.perf_counter,
                 source: Optional[ServedEngine] = None) -> None:
        self.config = config
        """What to serve and the limits."""
        self.clock = clock
        """Seconds, for latency only (injected: tests pass a fake)."""
        self.source = source or ServedEngine(engine)
        """The engine served, behind the lock its other front ends (Wyoming) share."""
        self.limiter = RateLimiter(config.rate_limit, config.rate_burst, clock)
        """Texts parsed per site (`limits.py`)."""

    @property
    def served(self) -> Served:
        """The engine with its model id and language (replaced whole by `swap()`)."""
        return self.source.served

    @property
    def engine(self) -> IntentEngine:
        """The loaded engine."""
        return self.served.engine

    @property
    def model_id(self) -> str:
        """The bundle served, reported in replies and status."""
        return self.served.model_id

    @property
    def lang(self) -> Optional[str]:
        """The model's language ("en"), or None when the bundle does not say."""
        return self.served.lang

    def swap(self, engine: IntentEngine) -> str:
        """Serve `engine` from the next message on, in one assignment (a reply never mixes
        two models); returns the model id it replaced. The caller checked the engine."""
        return self.source.swap(engine)

    # -- what the I/O layer asks -----------------------------------------------------------

    def subscriptions(self) -> List[str]:
        """The topics to subscribe to."""
        sites = self.config.site_ids or ("+",)
        return [h.NluQuery.topic()] + [n.NativeQuery.topic(site_id=s) for s in sites]

    def status(self, online: bool) -> Outgoing:
        """The retained status message (online with model and version, or offline)."""
        msg = (n.NativeStatus(n.ONLINE, self.model_id, __version__) if online
               else n.NativeStatus(n.OFFLINE))
        return Outgoing(n.NativeStatus.topic(site_id=self.config.status_topic_site),
                        msg.to_payload(), qos=self.config.qos, retain=True)

    def handle(self, topic: str, payload: bytes,
               properties: Optional[Mapping[str, Any]] = None) -> List[Outgoing]:
        """The messages that answer one received message (empty when it is not ours)."""
        if h.NluQuery.is_topic(topic):
            return self._hermes(payload)
        site = n.NativeQuery.site_of(topic)
        if site is not None:
            return self._native(site, payload, properties or {})
        _LOGGER.debug("ignoring a message on %s", topic)
        return []

    def error_reply(self, topic: str, payload: bytes,
                    properties: Optional[Mapping[str, Any]], error: str) -> List[Outgoing]:
        """An error answer to a message whose handling failed unexpectedly (the I/O layer
        calls this after logging the exception)."""
        if h.NluQuery.is_topic(topic):
            site, session = h.peek_site(payload)
            return self._hermes_error(error, site, session, topic) if self.config.serves(
                site) else []
        site_id = n.NativeQuery.site_of(topic)
        if site_id is None or not self.config.serves(site_id):
            return []
        route = self._route(site_id, properties or {})
        return [self._native_out(route, n.NativeError(n.peek_id(payload), error))]

    # -- Hermes ----------------------------------------------------------------------------

    def _hermes(self, payload: bytes) -> List[Outgoing]:
        topic = h.NluQuery.TOPIC
        if len(payload) > self.config.max_payload_bytes:
            # not read at all, so its site is unknown: Hermes's default site
            if not self.config.serves(h.DEFAULT_SITE):
                return []
            return self._hermes_error(self._too_large(payload), h.DEFAULT_SITE, None, topic)
        try:
            query = h.NluQuery.from_payload(payload)
        except ProtocolError as err:
            site, session = h.peek_site(payload)
            if not self.config.serves(site):
                return []
            return self._hermes_error(str(err), site, session, topic)
        if not self.config.serves(query.site_id):
            return []
        context = query.input[:_CONTEXT_CHARS]
        limited, quiet = self._rate_problem(query.site_id, 1)
        problem = limited or self._lang_problem(query.lang) or self._text_problem(query.input)
        if problem:
            return self._hermes_error(problem, query.site_id, query.session_id, context, quiet)
        if not query.input.strip():
            # an empty transcript: nothing was said, which is "not recognized" in Hermes
            return [self._not_recognized(query)]
        try:
            result = self.source.parse(query.input,
                                       area=self.config.site_areas.get(query.site_id))
        except InputError as err:
            return self._hermes_error(str(err), query.site_id, query.session_id, context)
        allowed = query.intent_filter
        several = [c for c in result.commands if not allowed or c.intent in allowed]
        if len(result.commands) > 1 and several:
            # one intent per command, in spoken order ("... and lock the front door")
            return [m for c in several if c.intent is not None
                    for m in self._intent_out(query, c.intent, c.confidence, c.slots)]
        chosen = self._choose(result, allowed)
        if chosen is None:
            return [self._not_recognized(query)]
        return self._intent_out(query, chosen[0], chosen[1], result.slots)

    def _intent_out(self, query: h.NluQuery, name: str, confidence: float,
                    said: Sequence[Slot]) -> List[Outgoing]:
        """intentParsed and the intent's own topic for one command of a query."""
        slots = self._all_slots(name, said, query)
        intent = h.HermesIntent(name, round(float(confidence), 4))
        parsed = h.NluIntentParsed(query.input, intent, query.site_id, query.id, slots,
                                   query.session_id)
        full = h.NluIntent(query.input, intent, query.site_id, query.id, slots,
                           query.session_id, query.custom_data, None, query.asr_confidence,
                           query.input, query.wakeword_id, query.lang)
        qos = self.config.qos
        return [Outgoing(h.NluIntentParsed.topic(), parsed.to_payload(), qos),
                Outgoing(h.NluIntent.topic(intent_name=name), full.to_payload(), qos)]

    def _choose(self, result: ParseResult,
                allowed: Optional[Tuple[str, ...]]) -> Optional[Tuple[str, float]]:
        """(intent, confidence) to answer, honouring an intent filter: the best allowed
        intent that reaches the engine's threshold; None for "not recognized"."""
        if not allowed:
            return (result.intent, result.confidence) if result.intent is not None else None
        if result.intent is not None and result.intent in allowed:
            return result.intent, result.confidence
        threshold = float(getattr(self.engine, "threshold", 0.0))
        for alt in sorted(result.alternatives, key=lambda a: -a.confidence):
            if alt.intent is not None and alt.intent in allowed and alt.confidence >= threshold:
                return alt.intent, alt.confidence
        return None

    def _all_slots(self, intent: str, slots: Sequence[Slot],
                   query: h.NluQuery) -> Tuple[h.HermesSlot, ...]:
        """The parsed slots (with the site's area where the command means it), then the
        query's custom entities."""
        out = list(hermes_slots(slots))
        have = {s.slot_name for s in out}
        for name, value in (query.custom_entities or {}).items():
            if name not in have:
                out.append(_unsaid_slot(name, value))
                have.add(name)
        return tuple(out)

    def _not_recognized(self, query: h.NluQuery) -> Outgoing:
        msg = h.NluIntentNotRecognized(query.input, query.site_id, query.id, query.custom_data,
                                       query.session_id)
        return Outgoing(msg.topic(), msg.to_payload(), self.config.qos)

    def _hermes_error(self, error: str, site: str, session: Optional[str],
                      context: Optional[str], quiet: bool = False) -> List[Outgoing]:
        if not quiet:
            _LOGGER.warning("Hermes query of site %r refused: %s", site, error)
        msg = h.NluError(error, site, context, session)
        return [Outgoing(msg.topic(), msg.to_payload(), self.config.qos)]

    # -- native ----------------------------------------------------------------------------

    def _native(self, site: str, payload: bytes,
                properties: Mapping[str, Any]) -> List[Outgoing]:
        if not self.config.serves(site):
            return []
        route = self._route(site, properties)
        if route[2] is not None:  # answered on the site's reply topic, with the error only
            return [self._native_out(route, n.NativeError(n.peek_id(payload), route[2]),
                                     quiet=True)]  # _route said why
        if len(payload) > self.config.max_payload_bytes:
            return [self._native_out(route, n.NativeError(None, self._too_large(payload)))]
        try:
            query = n.NativeQuery.from_payload(payload)
        except ProtocolError as err:
            return [self._native_out(route, n.NativeError(n.peek_id(payload), str(err)))]
        problem, quiet = self._lang_problem(query.lang), False
        texts = query.texts or ()
        chars = sum(len(t) for t in texts)
        if len(texts) > self.config.max_batch:
            problem = f"too many texts ({len(texts)}; at most {self.config.max_batch})"
        elif chars > self.config.max_batch_chars:
            problem = (f"texts too long together ({chars} characters; at most "
                       f"{self.config.max_batch_chars})")
        if not problem:
            problem, quiet = self._rate_problem(site, len(texts) or 1)
        if problem:
            return [self._native_out(route, n.NativeError(query.id, problem), quiet)]
        start = self.clock()
        area = query.area or self.config.site_areas.get(site)
        if query.text is not None:
            one = self._parse_dict(query.text, area)
            if "error" in one:
                return [self._native_out(route, n.NativeError(query.id, one["error"]))]
            reply = n.NativeReply(query.id, self.model_id, self._ms(start), result=one)
        else:
            results = tuple(self._parse_dict(t, area) for t in query.texts or ())
            reply = n.NativeReply(query.id, self.model_id, self._ms(start), results=results)
        return [self._native_out(route, reply)]

    def _parse_dict(self, text: str, area: Optional[str] = None) -> Dict[str, Any]:
        """The parse object of a text, or {"error": ...} when it cannot be parsed."""
        problem = self._text_problem(text)
        if problem:
            return {"error": problem}
        try:
            return self.source.parse(text, area=area).to_dict()
        except InputError as err:
            return {"error": str(err)}

    def _route(self, site: str, properties: Mapping[str, Any]) -> Route:
        """(reply topic, reply properties, why the response topic is refused): the MQTT 5
        response topic when the query gave one under the response prefix, else the site's
        reply topic; the correlation data echoed."""
        topic, refused = n.NativeReply.topic(site_id=site), None
        wanted = properties.get(RESPONSE_TOPIC)
        if isinstance(wanted, str) and wanted:
            prefix = self.config.response_topics_of(site)
            if len(wanted) <= len(prefix) or not wanted.startswith(prefix) \
                    or any(c in wanted for c in "+#\x00") or h.NluQuery.is_topic(wanted) \
                    or n.NativeQuery.is_topic(wanted):
                # elsewhere: another device's topic, with our credentials; a wildcard cannot
                # be published to; a query topic would loop back to us
                said = wanted[:LOGGED_TOPIC_CHARS]  # a client's string: bounded in the log
                _LOGGER.warning("site %r: response topic %r refused (not under %r)", site,
                                said, prefix)
                refused = f"response topic {said!r} refused: replies go under {prefix!r}"
            else:
                topic = wanted
        props: Dict[str, Any] = {}
        data = properties.get(CORRELATION_DATA)
        if isinstance(data, (bytes, bytearray)):
            props[CORRELATION_DATA] = bytes(data)
        elif isinstance(data, str):  # paho never gives one; a caller might (kept as bytes)
            props[CORRELATION_DATA] = data.encode("utf-8", "surrogatepass")
        return topic, props, refused

    def _native_out(self, route: Route, msg: Message, quiet: bool = False) -> Outgoing:
        if isinstance(msg, n.NativeError) and not quiet:
            _LOGGER.warning("native query %r refused: %s", msg.id, msg.error)
        return Outgoing(route[0], msg.to_payload(), self.config.qos, False, dict(route[1]))

    # -- shared ----------------------------------------------------------------------------

    def _ms(self, start: float) -> float:
        return round((self.clock() - start) * 1000.0, 3)

    def _too_large(self, payload: bytes) -> str:
        return (f"payload too large ({len(payload)} bytes; at most "
                f"{self.config.max_payload_bytes})")

    def _text_problem(self, text: str) -> Optional[str]:
        if len(text) > self.config.max_text_chars:
            return f"text too long ({len(text)} characters; at most {self.config.max_text_chars})"
        return None

    def _rate_problem(self, site: str, texts: int) -> Tuple[Optional[str], bool]:
        """(why `texts` texts of `site` are refused now, or None; whether to keep quiet about
        it: only the first refusal of a streak is logged, and it says so)."""
        refused = self.limiter.take(site, texts)
        if refused is None:
            return None, False
        problem = (f"rate limited: site {site!r} may send {self.config.rate_limit:g} texts a "
                   f"second ({self.config.rate_burst} at once); try again in "
                   f"{refused.wait_s:.1f} s")
        if refused.first:
            _LOGGER.warning("%s (more refusals of this site are not logged until it is "
                            "served again)", problem)
        return problem, True

    def _lang_problem(self, lang: Optional[str]) -> Optional[str]:
        return language_problem(lang, self.lang)


def language_problem(lang: Optional[str], served: Optional[str]) -> Optional[str]:
    """Why a query in `lang` cannot be served by a model of language `served` (compared on
    the primary subtag: en-US is en); None when it can, or when either is not known."""
    if not lang or not served:
        return None
    if _primary(lang) != _primary(served):
        return f"language {lang!r} is not served (the model speaks {served!r})"
    return None


def _primary(lang: str) -> str:
    return lang.replace("_", "-").split("-")[0].strip().lower()
