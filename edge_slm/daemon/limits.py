"""Per-site rate limits: a token bucket per site, in texts parsed (pure: injected clock).

    limiter = RateLimiter(rate=20.0, burst=500, clock=time.monotonic)
    refused = limiter.take("kitchen", cost=64)   # a batch of 64 texts
    if refused: ...                              # refused.wait_s, refused.first (log it once)

The broker does not tell a subscriber who published a message, so the key is the site: the
native topic's level or the Hermes `siteId`. With an ACL that lets each satellite publish only
its own site's topics, the site is the client. A client that invents a site per message is
bounded too: the table holds at most `max_keys` buckets; buckets that have filled up again
(idle ones, the same as new) are forgotten when room is needed, and beyond that new sites
share one bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional

MAX_KEYS = 1024
"""Most sites tracked at once."""
OVERFLOW_KEY = "\x00overflow"
"""The bucket the sites beyond MAX_KEYS share (no topic level or siteId is this)."""


@dataclass
class Bucket:
    """Tokens (texts) a site may still spend now, as of `updated`."""

    tokens: float
    """Tokens left."""
    updated: float
    """Clock reading of `tokens`."""
    streak: int = 0
    """Refusals since the last message let through."""


@dataclass(frozen=True)
class Refusal:
    """Why a message was not let through."""

    wait_s: float
    """Seconds until the tokens it needs are there."""
    first: bool
    """The first refusal since the site was last let through (log this one)."""


class RateLimiter:
    """Token buckets by key: `rate` tokens a second, at most `burst` saved; rate 0: no limit."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float],
                 max_keys: int = MAX_KEYS) -> None:
        if not (math.isfinite(rate) and rate >= 0) or burst < 1 or max_keys < 1:
            raise ValueError("a rate limit needs rate >= 0, burst >= 1 and max_keys >= 1")
        self.rate = rate
        """Tokens given back a second (0: no limit)."""
        self.burst = burst
        """Most tokens a bucket holds."""
        self.clock = clock
        """Monotonic seconds (injected: tests step a fake)."""
        self.max_keys = max_keys
        """Most buckets kept (the overflow bucket aside)."""
        self.buckets: Dict[str, Bucket] = {}
        """The buckets by key."""

    def take(self, key: str, cost: int = 1) -> Optional[Refusal]:
        """Spend `cost` tokens of `key`'s bucket: None when they were there, else a Refusal
        (nothing spent)."""
        if self.rate <= 0:
            return None
        now = self.clock()
        bucket = self._bucket(key, now)
        bucket.tokens = min(float(self.burst),
                            bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            bucket.streak = 0
            return None
        bucket.streak += 1
        return Refusal((cost - bucket.tokens) / self.rate, bucket.streak == 1)

    def _bucket(self, key: str, now: float) -> Bucket:
        bucket = self.buckets.get(key)
        if bucket is not None:
            return bucket
        if len(self.buckets) >= self.max_keys:
            refill = self.burst / self.rate  # a bucket idle this long is as good as new
            for old in [k for k, b in self.buckets.items()
                        if now - b.updated >= refill and k != OVERFLOW_KEY]:
                del self.buckets[old]
            if len(self.buckets) >= self.max_keys:
                key = OVERFLOW_KEY
        return self.buckets.setdefault(key, Bucket(float(self.burst), now))
