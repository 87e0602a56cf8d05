"""The Wyoming wire format (Home Assistant's Assist, Rhasspy 3): JSON lines with data and
payload segments, read by a decoder that trusts nothing.

    frame = encode_event("intent", {"name": "HassTurnOff"})   # bytes to send
    decoder = EventDecoder()
    for item in decoder.feed(received):                        # bytes in, no I/O
        if isinstance(item, FrameError): ...                   # answer `error`; close if fatal
        else: ...                                              # an Event(type, data)

One event is a header line, `{"type", "data"?, "data_length"?, "payload_length"?,
"version"}` and a newline, then `data_length` bytes of a JSON object merged into `data`,
then `payload_length` bytes of payload (audio; an intent service takes none, so payloads are
skipped unread). This is the format of the `wyoming` 1.10 library (wyoming/event.py), with
limits checked before any memory is spent: a header line longer than `max_line` bytes is
dropped up to its newline, a declared data or payload length above its limit is refused
(the decoder then stops: the stream cannot be followed without reading those bytes), and a
header that is not a JSON object with a string `type` is reported and the stream goes on.
Stdlib only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..errors import ProtocolError
from .base import decode_object

VERSION = "1.10.2"
"""The Wyoming protocol version we speak (the `wyoming` library release it follows), sent in
every header's `version`."""
MAX_LINE_BYTES = 64 * 1024
"""Longest header line read (without its newline); a longer one is dropped to its newline."""
MAX_DATA_BYTES = 64 * 1024
"""Largest data segment taken (a transcript and its context are a few hundred bytes)."""
MAX_PAYLOAD_BYTES = 64 * 1024
"""Largest payload skipped; a larger declared one is refused (audio is not for us)."""
MAX_TYPE_CHARS = 100
"""Longest event type taken (the longest Wyoming type has 20 characters)."""

BAD_JSON = "bad-json"
"""Error code: a header line or data segment that is not a JSON object."""
LINE_TOO_LONG = "line-too-long"
"""Error code: a header line over the limit (dropped; the stream goes on)."""
TOO_LARGE = "too-large"
"""Error code: a declared data or payload length over the limit (the connection ends)."""
BAD_HEADER = "bad-header"
"""Error code: a JSON header without a string type, or with lengths that are no sizes."""


@dataclass(frozen=True)
class Event:
    """One Wyoming event as read off the wire: its type and its data (the header's `data`
    merged with the data segment). Its payload, if any, was skipped."""

    type: str
    """The event type ("transcript", "describe", ...)."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """The event's data object."""


@dataclass(frozen=True)
class FrameError:
    """Bytes that are not a Wyoming event: what to answer (`error` event) and whether the
    stream can go on."""

    code: str
    """One of BAD_JSON, LINE_TOO_LONG, TOO_LARGE, BAD_HEADER."""
    text: str
    """What was wrong, for the `error` event."""
    fatal: bool = False
    """True when the decoder stopped (the connection should be closed after answering)."""


def encode_event(event_type: str, data: Optional[Mapping[str, Any]] = None) -> bytes:
    """The bytes of one event: the header line (with `version`, and `data_length` when there
    is data) and the data segment, as the `wyoming` library writes them."""
    header: Dict[str, Any] = {"type": event_type, "version": VERSION}
    body = b""
    if data:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        header["data_length"] = len(body)
    return json.dumps(header, ensure_ascii=False).encode("utf-8") + b"\n" + body


class EventDecoder:
    """Bytes in, events (or frame errors) out, in order; no I/O (see module doc)."""

    def __init__(self, max_line: int = MAX_LINE_BYTES, max_data: int = MAX_DATA_BYTES,
                 max_payload: int = MAX_PAYLOAD_BYTES) -> None:
        if min(max_line, max_data, max_payload) < 1:
            raise ValueError("the limits must be at least 1 byte")
        self.max_line = max_line
        self.max_data = max_data
        self.max_payload = max_payload
        self.failed = False
        """Set after a fatal FrameError: everything fed afterwards is ignored."""
        self._line = bytearray()
        self._dropping = False  # the rest of an over-long line, up to its newline
        self._header: Optional[Tuple[str, Dict[str, Any]]] = None  # waiting for its segments
        self._data = bytearray()
        self._data_left = 0
        self._payload_left = 0

    def feed(self, chunk: bytes) -> List[Union[Event, FrameError]]:
        """The events and frame errors that `chunk` completes."""
        out: List[Union[Event, FrameError]] = []
        pos, size = 0, len(chunk)
        while pos < size and not self.failed:
            if self._data_left:
                take = min(self._data_left, size - pos)
                self._data += chunk[pos:pos + take]
                pos += take
                self._data_left -= take
                if not self._data_left:
                    self._merge_data(out)
            elif self._payload_left:
                take = min(self._payload_left, size - pos)
                pos += take  # skipped: an intent service takes no payload
                self._payload_left -= take
                if not self._payload_left:
                    self._finish(out)
            else:
                pos = self._read_line(chunk, pos, out)
        return out

    # -- the header line -------------------------------------------------------------------

    def _read_line(self, chunk: bytes, pos: int, out: List[Union[Event, FrameError]]) -> int:
        end = chunk.find(b"\n", pos)
        stop = len(chunk) if end < 0 else end
        if not self._dropping:
            self._line += chunk[pos:stop]
            if len(self._line) > self.max_line:
                self._line.clear()
                self._dropping = True
                out.append(FrameError(LINE_TOO_LONG, f"header line longer than "
                                                     f"{self.max_line} bytes: dropped"))
        if end < 0:
            return len(chunk)
        line, dropped = bytes(self._line), self._dropping
        self._line.clear()
        self._dropping = False
        if not dropped and line.strip():
            self._header_line(line, out)
        return end + 1

    def _header_line(self, line: bytes, out: List[Union[Event, FrameError]]) -> None:
        try:
            header = _decode(line, "event header")
        except ProtocolError as err:
            out.append(FrameError(BAD_JSON, str(err)))
            return
        event_type, data = header.get("type"), header.get("data")
        data_length = header.get("data_length") or 0  # absent and null mean none
        payload_length = header.get("payload_length") or 0
        for name, value in (("data_length", data_length), ("payload_length", payload_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                out.append(FrameError(BAD_HEADER, f"event header: {name} must be a byte "
                                                  f"count, not {value!r}"[:200]))
                return
        if data_length > self.max_data or payload_length > self.max_payload:
            self.failed = True
            out.append(FrameError(TOO_LARGE, f"event too large (data {data_length} bytes, "
                                             f"payload {payload_length}; at most "
                                             f"{self.max_data} and {self.max_payload})",
                                  fatal=True))
            return
        if not isinstance(event_type, str) or not event_type \
                or len(event_type) > MAX_TYPE_CHARS:
            problem = FrameError(BAD_HEADER, "event header: 'type' must be a non-empty string "
                                             f"of at most {MAX_TYPE_CHARS} characters")
            self._skip(data_length, payload_length, problem, out)
            return
        if data is not None and not isinstance(data, dict):
            problem = FrameError(BAD_HEADER, "event header: 'data' must be an object")
            self._skip(data_length, payload_length, problem, out)
            return
        self._header = (event_type, dict(data or {}))
        self._data_left, self._payload_left = data_length, payload_length
        if not data_length and not payload_length:
            self._finish(out)

    def _skip(self, data_length: int, payload_length: int, problem: FrameError,
              out: List[Union[Event, FrameError]]) -> None:
        """Report `problem` and pass over the event's segments (their lengths are sound)."""
        out.append(problem)
        self._header = None
        self._payload_left = data_length + payload_length

    # -- the segments ----------------------------------------------------------------------

    def _merge_data(self, out: List[Union[Event, FrameError]]) -> None:
        raw = bytes(self._data)
        self._data.clear()
        try:
            extra = _decode(raw, "event data")
        except ProtocolError as err:
            out.append(FrameError(BAD_JSON, str(err)))
            self._header = None  # its payload, if any, is still skipped
            return
        if self._header is not None:
            self._header[1].update(extra)
        if not self._payload_left:
            self._finish(out)

    def _finish(self, out: List[Union[Event, FrameError]]) -> None:
        if self._header is not None:
            out.append(Event(self._header[0], self._header[1]))
        self._header = None


def _decode(raw: bytes, what: str) -> Dict[str, Any]:
    """The JSON object of a header line or data segment (`base.decode_object`), refused also
    when it holds a number past float (1e999 reads as infinity, which no answer that echoes
    it could write as JSON)."""
    obj = decode_object(raw, what)
    try:
        json.dumps(obj, allow_nan=False)
    except (ValueError, RecursionError):
        raise ProtocolError(f"{what}: a number is out of range") from None
    return obj
