"""Capped exponential backoff with jitter, for every reconnecting client of the daemon (the
broker, Home Assistant's WebSocket API).

    backoff = Backoff()
    delay = backoff.next()     # 1 s, then up to 2, 4 ... 60 s (each less up to half at random)
    backoff.reset()            # after a successful connection

Pure: the random numbers are injected (tests pass a fixed function); the caller sleeps.
"""

from __future__ import annotations

import random
from typing import Callable

from ..errors import ConfigError

RECONNECT_MIN_S = 1.0
"""Delay before the first retry of a lost or refused connection."""
RECONNECT_MAX_S = 60.0
"""Cap of the retry delay (a Pi whose broker reboots reconnects within a minute of it)."""
RECONNECT_FACTOR = 2.0
"""Each failed attempt in a row multiplies the delay by this."""
RECONNECT_JITTER = 0.5
"""Up to this fraction of each delay is taken off at random, so a fleet does not retry in
step after a broker restart."""


class Backoff:
    """Capped exponential backoff with jitter; `reset()` after a successful connection."""

    def __init__(self, min_s: float = RECONNECT_MIN_S, max_s: float = RECONNECT_MAX_S,
                 factor: float = RECONNECT_FACTOR, jitter: float = RECONNECT_JITTER,
                 rng: Callable[[], float] = random.random) -> None:
        if not 0 < min_s <= max_s or factor < 1 or not 0 <= jitter <= 1:
            raise ConfigError("backoff needs 0 < min_s <= max_s, factor >= 1, 0 <= jitter <= 1")
        self.min_s, self.max_s, self.factor, self.jitter = min_s, max_s, factor, jitter
        self.rng = rng
        """Uniform [0, 1) numbers (injected: tests pass a fixed one)."""
        self.failures = 0
        """Failed attempts since the last reset."""

    def next(self) -> float:
        """The delay before the next attempt; counts one more failure."""
        base = min(self.max_s, self.min_s * self.factor ** self.failures)
        self.failures += 1
        return base * (1.0 - self.jitter * self.rng())

    def reset(self) -> None:
        """Back to the shortest delay (call after connecting)."""
        self.failures = 0
