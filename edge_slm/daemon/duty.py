"""The low-power loop: when the daemon wakes, how long it stays, and what that costs.

    loop = DutyLoop(MqttDaemon(handler, config), DutyConfig(mode="periodic", period_s=10),
                    EnergyMeter(PROFILES["pi-4"]), report=publish_telemetry)
    loop.setup()           # make the client, start accounting, first wake due now
    loop.run_forever()     # until loop.stop() (a signal handler may call it)
    loop.step(now)         # or one wake by hand: serve, account, report -> seconds to sleep

Modes:

- `always-on`: event driven, no polling; `run_forever()` hands over to the daemon's own loop
  and accounts the whole run as one wake.
- `periodic`: wake every `period_s` seconds (measured from wake to wake, so the schedule does
  not drift by the time spent awake), stay connected `window_s` seconds to drain what the
  broker queued for our persistent session and answer it, then disconnect so the radio and
  CPU can idle.
- `adaptive`: as periodic, but the period shrinks (times `shrink_factor`, down to
  `min_period_s`) after a wake that served traffic and grows (times `growth_factor`, up to
  `max_period_s`) after an idle one.

While the daemon sleeps the broker keeps its queries: the session is persistent (clean start
off, a session expiry longer than the longest sleep) and subscribed at QoS 1, so nothing is
lost, only answered later. `DutyCycle` is the pure policy (traffic in, next period out);
`DutyLoop` runs it on an injected clock, sleep and transport, so tests step a fake clock
instead of sleeping. Stdlib only: the transport (paho) is passed in.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from ..errors import ConfigError
from ..protocols.telemetry import ADAPTIVE, ALWAYS_ON, MODES, PERIODIC, Telemetry
from . import DaemonConfig
from .energy import EnergyMeter

_LOGGER = logging.getLogger(__name__)

DEFAULT_PERIOD_S = 10.0
"""Periodic: seconds from one wake to the next; adaptive: the first period. A query waits at
most this long for its answer, which is the price of sleeping."""
DEFAULT_WINDOW_S = 2.0
"""Seconds connected per wake: the broker delivers the queued queries within milliseconds on
a LAN, and replies must be acknowledged before we disconnect."""
DEFAULT_MIN_PERIOD_S = 5.0
"""Adaptive: the shortest period, reached while traffic keeps coming."""
DEFAULT_MAX_PERIOD_S = 60.0
"""Adaptive: the longest period, reached after idle wakes (far below the session expiry)."""
DEFAULT_SHRINK_FACTOR = 0.5
"""Adaptive: the period is multiplied by this after a wake that served traffic."""
DEFAULT_GROWTH_FACTOR = 2.0
"""Adaptive: the period is multiplied by this after an idle wake."""
DEFAULT_BUSY_MESSAGES = 1
"""Adaptive: a wake that served at least this many messages counts as traffic."""


def _positive(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")


@dataclass(frozen=True)
class DutyConfig:
    """How the daemon wakes and sleeps; built once by the CLI."""

    mode: str = ALWAYS_ON
    """"always-on" (event driven), "periodic" or "adaptive"."""
    period_s: float = DEFAULT_PERIOD_S
    """Periodic: wake-to-wake seconds; adaptive: the first period."""
    window_s: float = DEFAULT_WINDOW_S
    """Seconds connected per wake, draining and answering queued queries."""
    min_period_s: float = DEFAULT_MIN_PERIOD_S
    """Adaptive: the shortest period."""
    max_period_s: float = DEFAULT_MAX_PERIOD_S
    """Adaptive: the longest period."""
    shrink_factor: float = DEFAULT_SHRINK_FACTOR
    """Adaptive: period multiplier after a busy wake (between 0 and 1)."""
    growth_factor: float = DEFAULT_GROWTH_FACTOR
    """Adaptive: period multiplier after an idle wake (above 1)."""
    busy_messages: int = DEFAULT_BUSY_MESSAGES
    """Adaptive: messages in one wake that make it a busy one."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        for name in ("period_s", "window_s", "min_period_s", "max_period_s"):
            _positive(getattr(self, name), name)
        if not 0 < self.shrink_factor < 1:
            raise ConfigError(f"shrink_factor must be between 0 and 1, not {self.shrink_factor}")
        if not (math.isfinite(self.growth_factor) and self.growth_factor > 1):
            raise ConfigError(f"growth_factor must be above 1, not {self.growth_factor}")
        if isinstance(self.busy_messages, bool) or not isinstance(self.busy_messages, int) \
                or self.busy_messages < 1:
            raise ConfigError(f"busy_messages must be a positive integer, "
                              f"not {self.busy_messages!r}")
        if self.mode == ADAPTIVE:
            if not self.min_period_s <= self.period_s <= self.max_period_s:
                raise ConfigError(f"adaptive: the period ({self.period_s} s) must lie "
                                  f"between the minimum ({self.min_period_s} s) and the "
                                  f"maximum ({self.max_period_s} s)")
        if self.mode != ALWAYS_ON and self.window_s > self.shortest_period_s:
            raise ConfigError(f"the window ({self.window_s} s) must not be longer than the "
                              f"period ({self.shortest_period_s} s): the daemon would never "
                              "sleep")

    @property
    def shortest_period_s(self) -> float:
        """The shortest wake-to-wake time this configuration can use."""
        return self.min_period_s if self.mode == ADAPTIVE else self.period_s

    @property
    def longest_sleep_s(self) -> float:
        """The longest the daemon stays away from the broker (0 when always on)."""
        if self.mode == ALWAYS_ON:
            return 0.0
        longest = self.max_period_s if self.mode == ADAPTIVE else self.period_s
        return longest - self.window_s


def check_session(duty: DutyConfig, daemon: DaemonConfig) -> None:
    """ConfigError when the broker could drop our session (and the queries queued in it)
    while the daemon sleeps. MQTT 3.1.1 sessions do not expire by protocol."""
    if daemon.mqtt_version == "5" and duty.longest_sleep_s >= daemon.session_expiry_s:
        raise ConfigError(f"the daemon may sleep {duty.longest_sleep_s:g} s, longer than "
                          f"the session expiry ({daemon.session_expiry_s} s): queued queries "
                          "would be lost")
    if daemon.qos == 0 and duty.mode != ALWAYS_ON:
        raise ConfigError("a duty-cycled daemon needs QoS 1 or 2: the broker does not "
                          "queue QoS 0 queries for a sleeping client")


class DutyCycle:
    """The pure policy: how long until the next wake, given what the last wake served."""

    def __init__(self, config: DutyConfig) -> None:
        self.config = config
        """The modes and limits."""
        self.period_s = config.period_s
        """The current period (constant unless adaptive)."""

    def next_period(self, served: int) -> float:
        """The period after a wake that served `served` messages (also kept in period_s)."""
        cfg = self.config
        if cfg.mode == ADAPTIVE:
            if served >= cfg.busy_messages:
                self.period_s = max(cfg.min_period_s, self.period_s * cfg.shrink_factor)
            else:
                self.period_s = min(cfg.max_period_s, self.period_s * cfg.growth_factor)
        return self.period_s


class Transport(Protocol):
    """What the loop needs of the daemon (MqttDaemon has it; tests pass a fake)."""

    handled: int
    """Messages handled since the daemon was made."""

    def setup(self) -> None:
        """Prepare the connection (no network yet)."""

    def step(self, window_s: float) -> int:
        """One wake: connect, serve for window_s, disconnect; the messages served."""

    def run_forever(self) -> None:
        """Serve, event driven, until stop()."""

    def stop(self) -> None:
        """Make step() or run_forever() return soon (thread- and signal-safe)."""


class DutyLoop:
    """Runs the daemon in its mode with accounting (see module doc): `setup()`, `step(now)`,
    `run_forever()`, `stop()`. `report` gets a Telemetry after each wake and on the way out;
    its failures are logged, never raised."""

    def __init__(self, daemon: Transport, config: DutyConfig, meter: EnergyMeter,
                 report: Optional[Callable[[Telemetry], object]] = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Optional[Callable[[float], object]] = None,
                 cpu_clock: Callable[[], float] = time.process_time,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.daemon = daemon
        """The transport that serves one wake (`step`) or runs always on."""
        self.config = config
        """Mode, period, window and the adaptive limits."""
        self.cycle = DutyCycle(config)
        """The policy that picks the next period."""
        self.meter = meter
        """Wake-ups, messages, CPU time and the energy estimate."""
        self.report = report
        """Called with each Telemetry (the CLI publishes it, retained)."""
        self.clock = clock
        """Monotonic seconds: wake times, windows."""
        self._stop = threading.Event()
        self.sleep: Callable[[float], object] = sleep or self._stop.wait
        """Waits between wakes (default: returns early on stop())."""
        self.cpu_clock = cpu_clock
        """CPU seconds of this process (time.process_time)."""
        self.wall_clock = wall_clock
        """Unix time, only to date the telemetry."""
        self.next_wake_at: Optional[float] = None
        """When the next wake is due (clock seconds; None before setup())."""

    # -- the three parts -------------------------------------------------------------------

    def setup(self) -> None:
        """Make the transport's client and start accounting; the first wake is due now, so
        the broker learns our session and subscriptions at once."""
        self.daemon.setup()
        now = self.clock()
        self.meter.start(now)
        self.next_wake_at = now

    def step(self, now: float) -> float:
        """One wake at `now`: serve for the window, account it, report it; returns the
        seconds to sleep until the next wake (0 when the wake overran its period)."""
        if self.config.mode == ALWAYS_ON:
            raise RuntimeError("always-on has no wakes to step; call run_forever()")
        if self.next_wake_at is None:
            raise RuntimeError("call setup() before step()")
        cpu_before = self.cpu_clock()
        try:
            served = self.daemon.step(self.config.window_s)
        except Exception:  # the loop boundary: log, count the wake as idle, keep cycling
            _LOGGER.exception("a wake failed")
            served = 0
        end = self.clock()
        self.meter.record_wake(now, end, max(0.0, self.cpu_clock() - cpu_before), served)
        period = self.cycle.next_period(served)
        self.next_wake_at = now + period
        if self.next_wake_at < end:
            _LOGGER.warning("a wake took %.1f s, longer than the %.1f s period", end - now,
                            period)
            self.next_wake_at = end
        _LOGGER.debug("wake at %.3f served %d; next in %.1f s", now, served,
                      self.next_wake_at - end)
        self._report()
        return self.next_wake_at - end

    def run_forever(self) -> None:
        """Wake, serve and sleep until stop(); always-on hands over to the daemon's own
        event-driven loop. Reports the telemetry once more on the way out."""
        if self.next_wake_at is None:
            self.setup()
        if self.config.mode == ALWAYS_ON:
            self._run_always_on()
            return
        try:
            while not self._stop.is_set():
                assert self.next_wake_at is not None  # set by setup()
                now = self.clock()
                if now < self.next_wake_at:
                    self.sleep(self.next_wake_at - now)  # may return early on stop()
                    continue
                self.step(now)
        finally:
            self.meter.mark(self.clock())
            self._report()

    def stop(self) -> None:
        """Make run_forever() return soon, ending a wake in progress (signal-safe)."""
        self._stop.set()
        self.daemon.stop()

    # -- helpers ---------------------------------------------------------------------------

    def _run_always_on(self) -> None:
        if self._stop.is_set():  # stopped before it started (MqttDaemon would forget it)
            return
        start, cpu_before, before = self.clock(), self.cpu_clock(), self.daemon.handled
        try:
            self.daemon.run_forever()
        finally:
            self.meter.record_wake(start, self.clock(), max(0.0, self.cpu_clock() - cpu_before),
                                   self.daemon.handled - before)
            self._report()

    def telemetry(self) -> Telemetry:
        """The accounting so far, as the telemetry message."""
        periodic = self.config.mode in (PERIODIC, ADAPTIVE)
        next_wake = None
        if periodic and self.next_wake_at is not None:
            next_wake = round(max(0.0, self.next_wake_at - self.clock()), 6)
        return Telemetry(mode=self.config.mode, updated_at=self.wall_clock(),
                         period_s=self.cycle.period_s if periodic else None,
                         next_wake_s=next_wake, **self.meter.to_dict())

    def _report(self) -> None:
        if self.report is None:
            return
        try:
            self.report(self.telemetry())
        except Exception:  # a reporting failure must not stop serving
            _LOGGER.exception("reporting telemetry failed")
