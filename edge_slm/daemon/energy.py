"""Energy accounting of the daemon: wake-ups, messages, CPU time and an estimate of the joules
they cost on a given Raspberry Pi board.

    meter = EnergyMeter(PROFILES["pi-4"], started_at=clock())
    meter.record_wake(start, end, cpu_s=0.12, messages=3)
    meter.to_dict()   # -> the accounting fields of the telemetry message

Nothing here is measured on a board: the estimate is a two-point linear model built from
published idle and full-load figures of each board (see `PROFILES`, and the sources there).
The board draws `idle_w` all the time it is powered, asleep or not, and each second of CPU
work adds `(loaded_w - idle_w) / cores`, because the full-load figure was measured with every
core busy (`stress --cpu 4`) while `time.process_time()` counts CPU seconds summed over the
threads of the process:

    joules = idle_w * elapsed_s + (loaded_w - idle_w) * cpu_s / cores

The radio, SD card and USB devices are not modelled apart; they are inside the idle figure
as far as the published measurements included them. Stdlib only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

SECONDS_PER_HOUR = 3600.0
"""For commands per hour."""
_DIGITS = 6
"""Decimal places kept in `to_dict()` (microseconds and microjoules: more is noise)."""


@dataclass(frozen=True)
class PowerProfile:
    """How much power a board draws idle and with every core busy (typical published
    board-level figures, not measurements of ours)."""

    board: str
    """Short name, as `--board` takes it ("pi-4")."""
    idle_w: float
    """Watts drawn idle: booted, headless, network up, nothing running."""
    loaded_w: float
    """Watts drawn with every core at 100 % (`stress --cpu 4` or similar)."""
    source: str
    """Where the two figures come from (publication and link)."""
    cores: int = 4
    """CPU cores: a CPU second is 1/cores of the load that `loaded_w` was measured at."""

    def __post_init__(self) -> None:
        for name in ("idle_w", "loaded_w"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{self.board}: {name} must be a positive number of watts, "
                                 f"not {value!r}")
        if self.loaded_w < self.idle_w:
            raise ValueError(f"{self.board}: loaded_w ({self.loaded_w}) is below idle_w "
                             f"({self.idle_w})")
        if isinstance(self.cores, bool) or not isinstance(self.cores, int) or self.cores < 1:
            raise ValueError(f"{self.board}: cores must be a positive integer, "
                             f"not {self.cores!r}")
        if not self.board or not self.source.strip():
            raise ValueError("a power profile needs a board name and a source")

    @property
    def watts_per_cpu_s(self) -> float:
        """Joules one CPU second adds above idle: (loaded_w - idle_w) / cores."""
        return (self.loaded_w - self.idle_w) / self.cores

    def joules(self, elapsed_s: float, cpu_s: float) -> float:
        """Estimated energy of `elapsed_s` seconds powered with `cpu_s` CPU seconds of work."""
        if elapsed_s < 0 or cpu_s < 0:
            raise ValueError(f"elapsed_s and cpu_s must not be negative ({elapsed_s}, {cpu_s})")
        return self.idle_w * elapsed_s + self.watts_per_cpu_s * cpu_s


# Typical board-level figures published by others (5 V input, headless, no USB devices);
# NOT measurements of ours. A given board, power supply, OS release and network setup will
# differ by tens of percent, which is why these only feed an estimate.
PROFILES: Mapping[str, PowerProfile] = {
    p.board: p for p in (
        PowerProfile(
            # idle: CNX Software measured about 120 mA at 5 V (0.6 W) on Raspberry Pi OS Lite
            # "Bullseye" with an Otii Arc. loaded: Pidramble (Jeff Geerling) lists the Zero 2 W
            # at 580 mA (3.0 W) under `stress --cpu 4`.
            "pi-zero-2w", idle_w=0.6, loaded_w=3.0,
            source="idle: CNX Software, 'A deep dive into Raspberry Pi Zero 2 W's power "
                   "consumption' (2021-12-09), https://www.cnx-software.com/2021/12/09/"
                   "raspberry-pi-zero-2-w-power-consumption/; loaded: Pidramble power "
                   "consumption benchmarks, https://www.pidramble.com/wiki/benchmarks/"
                   "power-consumption"),
        PowerProfile(
            # Pidramble (Jeff Geerling): 350 mA (1.9 W) idle, 980 mA (5.1 W) at 400 % CPU
            # (`stress --cpu 4`), Raspbian Lite, headless.
            "pi-3b+", idle_w=1.9, loaded_w=5.1,
            source="Pidramble power consumption benchmarks (Jeff Geerling), "
                   "https://www.pidramble.com/wiki/benchmarks/power-consumption"),
        PowerProfile(
            # Pidramble (Jeff Geerling): 540 mA (2.7 W) idle, 1280 mA (6.4 W) at 400 % CPU
            # (`stress --cpu 4`).
            "pi-4", idle_w=2.7, loaded_w=6.4,
            source="Pidramble power consumption benchmarks (Jeff Geerling), "
                   "https://www.pidramble.com/wiki/benchmarks/power-consumption"),
        PowerProfile(
            # The least certain row. idle: about 0.65 A at 5 V on a USB tester, headless
            # (iiab issue 4050); Jeff Geerling's Pi 5 review thread read 1.8 W idle on a meter
            # that thread considers low, and the Raspberry Pi documentation gives 800 mA
            # (4 W) as the "typical bare-board active current". loaded: 7.9 W at the wall
            # running Geekbench, in Jeff Geerling's Pi 5 review thread.
            "pi-5", idle_w=3.2, loaded_w=7.9,
            source="idle: https://github.com/iiab/iiab/issues/4050 (about 0.65 A at 5 V); "
                   "loaded: Jeff Geerling, sbc-reviews 'Raspberry Pi 5 model B', "
                   "https://github.com/geerlingguy/sbc-reviews/issues/21; bounds: Raspberry "
                   "Pi documentation, power supply, https://www.raspberrypi.com/documentation/"
                   "computers/raspberry-pi.html"),
    )
}
"""The boards `--board` knows, by name."""

DEFAULT_BOARD = "pi-4"
"""The board assumed when none is named (the most common Rhasspy satellite and hub board)."""


class EnergyMeter:
    """Counts wake-ups, messages and CPU seconds, and estimates the energy they cost on a
    board (see module doc). Times are seconds of one monotonic clock, given by the caller."""

    def __init__(self, profile: PowerProfile, started_at: float = 0.0) -> None:
        self.profile = profile
        """The board the estimate is for."""
        self.started_at = started_at
        """When accounting began (the board is counted as powered from then on)."""
        self.until = started_at
        """The latest time accounted for (the end of the last wake, or a `mark()`)."""
        self.wakes = 0
        """Wake-ups (connections to the broker)."""
        self.messages = 0
        """Messages served, over all wakes."""
        self.last_wake_messages = 0
        """Messages served in the latest wake."""
        self.awake_s = 0.0
        """Seconds spent awake (connected and serving), over all wakes."""
        self.cpu_s = 0.0
        """CPU seconds used while awake (process time, summed over threads)."""

    def start(self, now: float) -> None:
        """Start accounting afresh at `now`."""
        self.started_at = self.until = now
        self.wakes = self.messages = self.last_wake_messages = 0
        self.awake_s = self.cpu_s = 0.0

    def record_wake(self, start: float, end: float, cpu_s: float, messages: int) -> None:
        """Account one wake: awake from `start` to `end`, `cpu_s` CPU seconds, `messages`
        served. ValueError for times that run backwards or negative counts."""
        if end < start or start < self.started_at:
            raise ValueError(f"a wake from {start} to {end} does not fit after the start of "
                             f"accounting ({self.started_at})")
        if cpu_s < 0 or not math.isfinite(cpu_s):
            raise ValueError(f"cpu_s must be a non-negative number, not {cpu_s!r}")
        if isinstance(messages, bool) or not isinstance(messages, int) or messages < 0:
            raise ValueError(f"messages must be a non-negative integer, not {messages!r}")
        self.wakes += 1
        self.messages += messages
        self.last_wake_messages = messages
        self.awake_s += end - start
        self.cpu_s += cpu_s
        self.until = max(self.until, end)

    def mark(self, now: float) -> None:
        """Extend the accounted time to `now` (asleep since the last wake)."""
        self.until = max(self.until, now)

    # -- derived figures -------------------------------------------------------------------

    @property
    def elapsed_s(self) -> float:
        """Seconds accounted for, awake or asleep."""
        return self.until - self.started_at

    @property
    def messages_per_wake(self) -> float:
        """Mean messages served per wake (0 before the first wake)."""
        return self.messages / self.wakes if self.wakes else 0.0

    @property
    def duty_cycle(self) -> float:
        """Fraction of the elapsed time spent awake (1.0 for an always-on daemon)."""
        return min(1.0, self.awake_s / self.elapsed_s) if self.elapsed_s > 0 else 0.0

    @property
    def joules(self) -> float:
        """Estimated energy of the board over the elapsed time."""
        return self.profile.joules(self.elapsed_s, self.cpu_s)

    @property
    def active_joules(self) -> float:
        """The part of `joules` above the idle floor: what serving cost."""
        return self.profile.watts_per_cpu_s * self.cpu_s

    @property
    def joules_per_command(self) -> Optional[float]:
        """All of the board's energy divided by the messages served (None before any)."""
        return self.joules / self.messages if self.messages else None

    @property
    def active_joules_per_command(self) -> Optional[float]:
        """The energy above idle per message served (None before any)."""
        return self.active_joules / self.messages if self.messages else None

    @property
    def commands_per_hour(self) -> float:
        """Messages served per hour of elapsed time."""
        return self.messages * SECONDS_PER_HOUR / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> Dict[str, Any]:
        """The accounting as the telemetry message carries it (JSON-ready, rounded)."""

        def r(value: Optional[float]) -> Optional[float]:
            return None if value is None else round(value, _DIGITS)

        return {
            "board": self.profile.board, "wakes": self.wakes, "messages": self.messages,
            "last_wake_messages": self.last_wake_messages,
            "messages_per_wake": r(self.messages_per_wake), "cpu_s": r(self.cpu_s),
            "awake_s": r(self.awake_s), "elapsed_s": r(self.elapsed_s),
            "duty_cycle": r(self.duty_cycle), "joules": r(self.joules),
            "joules_per_command": r(self.joules_per_command),
            "active_joules_per_command": r(self.active_joules_per_command),
            "commands_per_hour": r(self.commands_per_hour),
        }
