"""`edge-slm serve --serial URL`: answer text lines on a serial port, one JSON line each.

    lines = SerialLines(engine, serial.serial_for_url("/dev/ttyS0", timeout=0.2))
    lines.run_forever()        # until stop() (a signal handler may call it)
    lines.request_reload()     # from a SIGHUP handler: reload the bundle in the loop

A device on the UART sends a line (ended by LF; a CR before it is dropped) and gets exactly
one line back, in order: the parse, or an error object. A line that starts with `{` is a
`parse --jsonl` query (`{"text": ...}`); any other line is the text itself. Either way the
answer is the object `edge-slm parse --jsonl` gives for that query (both answer with
`edge_slm.runtime.lines.answer_line`), so errors are `{"error": ..., "line": n}` with n
counting the lines of the port from 1. A line that is not UTF-8, is empty, or is longer than
`max_line` bytes (its bytes up to the next LF are dropped) gets an error object too. The port
is read with its timeout, so stop() and a requested reload are noticed within one timeout.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Optional

from ..errors import EdgeSlmError
from ..runtime.engine import IntentEngine
from ..runtime.lines import answer_line, to_line
from .serial_port import ByteStream

_LOGGER = logging.getLogger(__name__)

MAX_LINE_BYTES = 1024
"""Longest line answered (without its LF); a longer one gets an error object."""
READ_TIMEOUT_S = 0.2
"""Read timeout of the port: bounds how late stop() and a reload request are noticed."""


class SerialLines:
    """The engine on a serial-like port (`read`, `write`, `flush`, `timeout`)."""

    def __init__(self, engine: IntentEngine, port: ByteStream, max_line: int = MAX_LINE_BYTES,
                 reload: Optional[Callable[[], IntentEngine]] = None) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self.engine = engine
        self.port = port
        self.max_line = max_line
        self.reload = reload
        """Makes a new, checked engine from the bundle on disk (None: reloading refused)."""
        self.reload_requested = False
        """Set by request_reload() (a plain flag: safe in a signal handler)."""
        self.lines = 0
        """Lines answered so far (the `line` of the next error is this plus one)."""
        self._buf = bytearray()
        self._too_long = False  # dropping the rest of an over-long line
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask run_forever() to return (safe from another thread or a signal handler)."""
        self._stop.set()

    def request_reload(self) -> None:
        """Ask the loop to reload the bundle (sets a flag only)."""
        self.reload_requested = True

    def run_forever(self) -> None:
        """Answer lines until stop()."""
        self._stop.clear()
        while not self._stop.is_set():
            if self.reload_requested:
                self.reload_now()
            self.poll()

    def poll(self) -> int:
        """One read (waiting up to the port's timeout); answer every full line it completes.
        Returns how many lines were answered."""
        waiting = getattr(self.port, "in_waiting", 0) or 0
        data = self.port.read(max(1, waiting))
        answers = [to_line(a) for a in self.feed(data)]
        if answers:
            self.port.write("".join(answers).encode("utf-8"))
            flush = getattr(self.port, "flush", None)
            if flush is not None:
                flush()
        return len(answers)

    def feed(self, data: bytes) -> List[Dict[str, Any]]:
        """The answers of the lines `data` completes (bytes in, objects out; no I/O)."""
        out: List[Dict[str, Any]] = []
        for byte in data:
            if byte == 0x0A:
                raw, too_long = bytes(self._buf), self._too_long
                self._buf.clear()
                self._too_long = False
                self.lines += 1
                out.append(self.answer(raw, self.lines, too_long))
            elif self._too_long:
                continue
            elif len(self._buf) >= self.max_line + 1:  # room for a CR before the LF
                self._too_long = True
                self._buf.clear()
            else:
                self._buf.append(byte)
        return out

    def answer(self, raw: bytes, n: int, too_long: bool = False) -> Dict[str, Any]:
        """The object answering line `n` (`raw` without its LF)."""
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if too_long or len(raw) > self.max_line:
            return {"error": f"line too long (over {self.max_line} bytes)", "line": n}
        try:
            # the line with its LF, as parse --jsonl reads it (a not-UTF-8 error is worded so)
            return answer_line(self.engine, raw + b"\n", n, plain_text=True)
        except Exception as err:  # the loop boundary: answer, keep serving
            _LOGGER.exception("answering line %d failed", n)
            return {"error": f"internal error: {type(err).__name__}", "line": n}

    def reload_now(self) -> bool:
        """Load, check and swap in a new engine; False, with the old one still serving, when
        it fails."""
        self.reload_requested = False
        old = self.engine.bundle.model_id
        if self.reload is None:
            _LOGGER.error("reload refused: no bundle loader")
            return False
        try:
            engine = self.reload()
        except (EdgeSlmError, OSError, ValueError) as err:
            _LOGGER.error("reload refused, still serving %s: %s", old, err)
            return False
        except Exception:
            _LOGGER.exception("reload refused, still serving %s", old)
            return False
        self.engine = engine
        _LOGGER.warning("reloaded: serving %s (was %s)", engine.bundle.model_id, old)
        return True
