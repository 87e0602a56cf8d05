"""The daemon's telemetry: how it wakes, what it served and what that is estimated to cost.

    out: edge-slm/<site>/telemetry   Telemetry   (retained) published after each wake-up of a
                                                 duty-cycled daemon, and when a daemon stops

The site is the daemon's status site (the same level as edge-slm/<site>/status), so
`edge-slm status` reads both with one subscription pattern. The accounting fields are those of
`edge_slm.daemon.energy.EnergyMeter.to_dict()`; the energy figures are estimates from a
published power profile, not measurements (docs/daemon.md, "Power profiles"). Keys are
snake_case on the wire. Stdlib only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional

from ..errors import ProtocolError
from .base import opt_float, opt_int, req_float, req_str
from .native import _pattern, _SiteTopic

_TELEMETRY = "edge-slm/{site_id}/telemetry"

ALWAYS_ON = "always-on"
PERIODIC = "periodic"
ADAPTIVE = "adaptive"
MODES = (ALWAYS_ON, PERIODIC, ADAPTIVE)
"""The daemon's modes, as `edge-slm serve --mode` takes them."""


def _req_int(obj: Mapping[str, Any], key: str, what: str) -> int:
    value = opt_int(obj, key, what)
    if value is None:
        raise ProtocolError(f"{what}: field {key!r} is missing")
    if value < 0:
        raise ProtocolError(f"{what}: field {key!r} must not be negative, not {value}")
    return value


@dataclass(frozen=True)
class Telemetry(_SiteTopic):
    """One report of a daemon's duty cycle and energy accounting (retained)."""

    TOPIC = _TELEMETRY
    _PATTERN = _pattern(_TELEMETRY)

    mode: str
    """"always-on", "periodic" or "adaptive"."""
    board: str
    """The power profile the energy is estimated for ("pi-4")."""
    wakes: int
    """Wake-ups since the daemon started (an always-on daemon counts one)."""
    messages: int
    """Messages served since the daemon started (errors answered included)."""
    last_wake_messages: int
    """Messages served in the latest wake."""
    messages_per_wake: float
    """Mean messages per wake."""
    cpu_s: float
    """CPU seconds used while awake (process time, all threads)."""
    awake_s: float
    """Seconds spent awake (connected to the broker)."""
    elapsed_s: float
    """Seconds since the daemon started, awake or asleep."""
    duty_cycle: float
    """awake_s / elapsed_s, from 0 to 1."""
    joules: float
    """Estimated energy of the board over elapsed_s."""
    commands_per_hour: float
    """Messages served per hour."""
    updated_at: float
    """When this report was made (Unix time, seconds)."""
    joules_per_command: Optional[float] = None
    """joules / messages (null before the first message)."""
    active_joules_per_command: Optional[float] = None
    """The energy above the board's idle floor per message (null before the first)."""
    period_s: Optional[float] = None
    """The current wake period (null when always on)."""
    next_wake_s: Optional[float] = None
    """Seconds from updated_at until the next wake-up (null when always on)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ProtocolError(f"Telemetry: mode must be one of {', '.join(MODES)}, "
                                f"not {self.mode!r}")

    def to_dict(self) -> Dict[str, Any]:
        """The wire object (every field, null when unset)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "Telemetry":
        """Rebuild from the wire object."""
        w = cls.__name__
        return cls(
            mode=req_str(obj, "mode", w), board=req_str(obj, "board", w),
            wakes=_req_int(obj, "wakes", w), messages=_req_int(obj, "messages", w),
            last_wake_messages=_req_int(obj, "last_wake_messages", w),
            messages_per_wake=req_float(obj, "messages_per_wake", w),
            cpu_s=req_float(obj, "cpu_s", w), awake_s=req_float(obj, "awake_s", w),
            elapsed_s=req_float(obj, "elapsed_s", w), duty_cycle=req_float(obj, "duty_cycle", w),
            joules=req_float(obj, "joules", w),
            commands_per_hour=req_float(obj, "commands_per_hour", w),
            updated_at=req_float(obj, "updated_at", w),
            joules_per_command=opt_float(obj, "joules_per_command", w),
            active_joules_per_command=opt_float(obj, "active_joules_per_command", w),
            period_s=opt_float(obj, "period_s", w), next_wake_s=opt_float(obj, "next_wake_s", w))


MESSAGES = (Telemetry,)
"""Every message class this module speaks."""
