"""Signals of the long-running commands (`serve`, its Wyoming-only and serial forms):
SIGTERM and SIGINT stop, SIGHUP reloads."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Callable, Optional


def handle_signals(stop: Callable[[], object],
                   hangup: Callable[[], object]) -> Callable[[], None]:
    """SIGTERM and SIGINT call `stop`, SIGHUP (POSIX only) `hangup` (both must be safe in a
    signal handler: set a flag); returns what puts the previous handlers back."""
    def on_signal(signum: int, frame: Optional[FrameType]) -> None:
        stop()

    def on_hangup(signum: int, frame: Optional[FrameType]) -> None:
        hangup()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    sighup = getattr(signal, "SIGHUP", None)
    if sighup is not None:
        previous[sighup] = signal.signal(sighup, on_hangup)

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore
