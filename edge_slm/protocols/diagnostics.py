"""The daemon's live diagnostics: what it answered last and how busy it is.

    out: edge-slm/<site>/diagnostics   Diagnostics   (retained) {last_intent, last_latency_ms,
                                                     commands_per_hour, duty_cycle, updated_at,
                                                     home}

This is the JSON state topic the Home Assistant discovery configs of
`edge_slm.daemon.discovery` read with `value_template`s; the site is the daemon's status site,
as for `edge-slm/<site>/status` and `edge-slm/<site>/telemetry`. Unlike the telemetry (published
after each wake, or once when an always-on daemon stops), diagnostics are meant to follow
traffic while the daemon runs, rate-limited by the publisher. Keys are snake_case on the wire.
Stdlib only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional

from ..errors import ProtocolError
from .base import opt_float, opt_object, opt_str, req_float
from .native import _pattern, _SiteTopic

_DIAGNOSTICS = "edge-slm/{site_id}/diagnostics"

FIELDS = ("last_intent", "last_latency_ms", "commands_per_hour", "duty_cycle", "updated_at",
          "home")
"""The wire keys of a Diagnostics object (the discovery configs' templates read these)."""


@dataclass(frozen=True)
class Diagnostics(_SiteTopic):
    """A snapshot of the daemon's recent work (retained), for dashboards."""

    TOPIC = _DIAGNOSTICS
    _PATTERN = _pattern(_DIAGNOSTICS)

    commands_per_hour: float
    """Messages served per hour since the daemon started (errors answered included)."""
    duty_cycle: float
    """Fraction of the time connected, 0 to 1 (1.0 when always on)."""
    updated_at: float
    """When this snapshot was made (Unix time, seconds)."""
    last_intent: Optional[str] = None
    """The intent of the latest answered query; null before the first one and when the latest
    query was not recognized."""
    last_latency_ms: Optional[float] = None
    """Milliseconds the latest message took to handle; null before the first one."""
    home: Optional[Mapping[str, Mapping[str, int]]] = None
    """The names the engine answers for, counted by the source they came from:
    {"file" | "home_assistant" | "mqtt_discovery" | "zigbee2mqtt" | "shipped":
    {"names", "areas", "floors"}}; null when the daemon does not say."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.duty_cycle <= 1.0:
            raise ProtocolError(f"Diagnostics: duty_cycle must be within 0..1, "
                                f"not {self.duty_cycle!r}")
        for name in ("commands_per_hour", "last_latency_ms"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ProtocolError(f"Diagnostics: {name} must not be negative, not {value!r}")
        if self.home is not None and not _home_counts(self.home):
            raise ProtocolError("Diagnostics: home must map sources to {names, areas, floors} "
                                "counts")

    def to_dict(self) -> Dict[str, Any]:
        """The wire object (every field, null when unset)."""
        out = asdict(self)
        if self.home is not None:
            out["home"] = {s: dict(c) for s, c in self.home.items()}
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "Diagnostics":
        """Rebuild from the wire object."""
        w = cls.__name__
        return cls(commands_per_hour=req_float(obj, "commands_per_hour", w),
                   duty_cycle=req_float(obj, "duty_cycle", w),
                   updated_at=req_float(obj, "updated_at", w),
                   last_intent=opt_str(obj, "last_intent", w),
                   last_latency_ms=opt_float(obj, "last_latency_ms", w),
                   home=opt_object(obj, "home", w))


def _home_counts(home: object) -> bool:
    """Whether `home` is {source: {"names", "areas", "floors": counts >= 0}}."""
    return isinstance(home, Mapping) and all(
        isinstance(source, str) and isinstance(counts, Mapping)
        and set(counts) == {"names", "areas", "floors"}
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                for n in counts.values())
        for source, counts in home.items())


MESSAGES = (Diagnostics,)
"""Every message class this module speaks."""
