"""The duty-cycled loop on a fake clock: periodic wakes land exactly on the period, adaptive
periods shrink on traffic and grow to the maximum when idle, every wake is accounted and
reported, stop() ends run_forever(), always-on hands over to the daemon. Nothing sleeps: the
fake sleep advances the fake clock."""

from __future__ import annotations

import json
import logging
from typing import List, Optional

import pytest

from edge_slm.cli import build_parser
from edge_slm.cli.serve import build_duty_config
from edge_slm.daemon import DaemonConfig
from edge_slm.daemon.duty import DutyConfig, DutyCycle, DutyLoop, check_session
from edge_slm.daemon.energy import PROFILES, EnergyMeter
from edge_slm.protocols.telemetry import Telemetry


class FakeClock:
    """Monotonic seconds that move only when told; its sleep advances it."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.sleeps: List[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "the loop asked for a sleep of zero or less"
        self.sleeps.append(seconds)
        self.now += seconds


class FakeDaemon:
    """Stands in for MqttDaemon: step(window_s) spends the window on the fake clock (plus
    `overrun` seconds) and serves the next count of `traffic` (0 once it runs out)."""

    def __init__(self, clock: FakeClock, traffic: Optional[List[int]] = None,
                 cpu: Optional[FakeClock] = None, cpu_per_message: float = 0.01,
                 overrun: float = 0.0) -> None:
        self.clock, self.cpu = clock, cpu
        self.traffic = list(traffic or [])
        self.cpu_per_message, self.overrun = cpu_per_message, overrun
        self.handled = 0
        self.setups = 0
        self.stops = 0
        self.windows: List[float] = []
        self.wake_times: List[float] = []
        self.forever_runs = 0
        self.on_step = None  # called with the wake number, for tests that stop mid-run

    def setup(self) -> None:
        self.setups += 1

    def step(self, window_s: float) -> int:
        self.wake_times.append(self.clock.now)
        self.windows.append(window_s)
        served = self.traffic.pop(0) if self.traffic else 0
        self.clock.now += window_s + self.overrun
        if self.cpu is not None:
            self.cpu.now += served * self.cpu_per_message
        self.handled += served
        if self.on_step is not None:
            self.on_step(len(self.wake_times))
        return served

    def run_forever(self) -> None:
        self.forever_runs += 1
        self.clock.now += 3600.0  # an hour, event driven
        self.handled += 42
        if self.cpu is not None:
            self.cpu.now += 1.5

    def stop(self) -> None:
        self.stops += 1


def make_loop(config: DutyConfig, traffic=None, overrun=0.0):
    clock, cpu = FakeClock(100.0), FakeClock(0.0)
    daemon = FakeDaemon(clock, traffic, cpu=cpu, overrun=overrun)
    reports: List[Telemetry] = []
    loop = DutyLoop(daemon, config, EnergyMeter(PROFILES["pi-4"]), report=reports.append,
                    clock=clock, sleep=clock.sleep, cpu_clock=cpu, wall_clock=lambda: 1.7e9)
    return loop, daemon, clock, reports


def run_wakes(loop: DutyLoop, daemon: FakeDaemon, wakes: int) -> None:
    """run_forever() until `wakes` wakes have happened (the fake daemon calls stop)."""
    daemon.on_step = lambda n: loop.stop() if n >= wakes else None
    loop.run_forever()


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [
    {"mode": "sometimes"}, {"mode": "periodic", "period_s": 0},
    {"mode": "periodic", "period_s": float("nan")}, {"mode": "periodic", "window_s": -1},
    {"mode": "periodic", "period_s": 1.0, "window_s": 2.0},
    {"mode": "adaptive", "period_s": 100.0, "max_period_s": 60.0},
    {"mode": "adaptive", "period_s": 2.0, "min_period_s": 5.0},
    {"mode": "adaptive", "window_s": 6.0, "min_period_s": 5.0},
    {"mode": "adaptive", "shrink_factor": 1.0}, {"mode": "adaptive", "growth_factor": 1.0},
    {"mode": "adaptive", "busy_messages": 0}, {"mode": "periodic", "period_s": True},
])
def test_bad_duty_configs_are_refused(kw):
    with pytest.raises(ValueError):
        DutyConfig(**kw)


def test_defaults_are_always_on_and_a_valid_cycle():
    assert DutyConfig().mode == "always-on"
    assert DutyConfig().longest_sleep_s == 0.0
    assert DutyConfig(mode="periodic").longest_sleep_s == pytest.approx(8.0)
    assert DutyConfig(mode="adaptive").longest_sleep_s == pytest.approx(58.0)


def test_a_sleep_longer_than_the_session_expiry_is_refused():
    duty = DutyConfig(mode="adaptive", max_period_s=7200.0)
    with pytest.raises(ValueError, match="session expiry"):
        check_session(duty, DaemonConfig())
    check_session(duty, DaemonConfig(session_expiry_s=86400))
    check_session(duty, DaemonConfig(mqtt_version="3.1.1"))  # no expiry in 3.1.1
    with pytest.raises(ValueError, match="QoS"):
        check_session(DutyConfig(mode="periodic"), DaemonConfig(qos=0))
    check_session(DutyConfig(), DaemonConfig(qos=0))  # always on: QoS 0 is the user's call


# -- the pure policy -----------------------------------------------------------------------


def test_periodic_policy_keeps_its_period():
    cycle = DutyCycle(DutyConfig(mode="periodic", period_s=7.0, window_s=1.0))
    assert [cycle.next_period(n) for n in (0, 5, 0, 100)] == [7.0] * 4


def test_adaptive_policy_shrinks_on_traffic_and_grows_to_the_max_when_idle():
    cycle = DutyCycle(DutyConfig(mode="adaptive", period_s=40.0, min_period_s=5.0,
                                 max_period_s=60.0, window_s=1.0))
    assert [cycle.next_period(3) for _ in range(4)] == [20.0, 10.0, 5.0, 5.0]
    assert [cycle.next_period(0) for _ in range(5)] == [10.0, 20.0, 40.0, 60.0, 60.0]
    busy = DutyCycle(DutyConfig(mode="adaptive", period_s=40.0, busy_messages=3,
                                window_s=1.0))
    assert busy.next_period(2) == 60.0  # below busy_messages: an idle wake
    assert busy.next_period(3) == 30.0


# -- the loop ------------------------------------------------------------------------------


def test_setup_prepares_the_daemon_and_makes_the_first_wake_due_now():
    loop, daemon, clock, _ = make_loop(DutyConfig(mode="periodic", period_s=10.0))
    loop.setup()
    assert daemon.setups == 1 and loop.next_wake_at == clock.now
    assert loop.meter.started_at == clock.now


def test_periodic_wakes_exactly_every_period():
    config = DutyConfig(mode="periodic", period_s=10.0, window_s=2.0)
    loop, daemon, clock, _ = make_loop(config, traffic=[1, 0, 3, 0, 2])
    run_wakes(loop, daemon, 5)
    assert daemon.wake_times == [100.0, 110.0, 120.0, 130.0, 140.0]
    assert daemon.windows == [2.0] * 5
    assert clock.sleeps == [8.0] * 4  # the window is awake time, not added to the period
    assert daemon.stops == 1


def test_step_returns_the_seconds_until_the_next_wake():
    loop, daemon, clock, _ = make_loop(DutyConfig(mode="periodic", period_s=10.0,
                                                  window_s=2.0))
    loop.setup()
    assert loop.step(clock.now) == pytest.approx(8.0)
    assert loop.next_wake_at == pytest.approx(110.0)


def test_a_wake_that_overruns_its_period_is_followed_at_once(caplog):
    config = DutyConfig(mode="periodic", period_s=5.0, window_s=2.0)
    loop, daemon, clock, _ = make_loop(config, overrun=4.0)  # each wake lasts 6 s
    loop.setup()
    with caplog.at_level(logging.WARNING, logger="edge_slm.daemon.duty"):
        assert loop.step(clock.now) == 0.0
    assert loop.next_wake_at == clock.now == 106.0
    assert "longer than the 5.0 s period" in caplog.text


def test_adaptive_loop_follows_traffic():
    config = DutyConfig(mode="adaptive", period_s=20.0, window_s=1.0, min_period_s=5.0,
                        max_period_s=40.0)
    loop, daemon, clock, reports = make_loop(config, traffic=[4, 4, 4, 0, 0, 0, 0])
    run_wakes(loop, daemon, 7)
    gaps = [b - a for a, b in zip(daemon.wake_times, daemon.wake_times[1:])]
    assert gaps == [10.0, 5.0, 5.0, 10.0, 20.0, 40.0]
    assert [r.period_s for r in reports[:7]] == [10.0, 5.0, 5.0, 10.0, 20.0, 40.0, 40.0]


def test_every_wake_is_accounted_and_reported():
    config = DutyConfig(mode="periodic", period_s=10.0, window_s=2.0)
    loop, daemon, clock, reports = make_loop(config, traffic=[3, 0, 5])
    run_wakes(loop, daemon, 3)
    meter = loop.meter
    assert (meter.wakes, meter.messages, meter.last_wake_messages) == (3, 8, 5)
    assert meter.messages_per_wake == pytest.approx(8 / 3)
    assert meter.awake_s == pytest.approx(6.0)
    assert meter.cpu_s == pytest.approx(0.08)  # 0.01 CPU s per message in the fake
    # three wakes, then one report on the way out
    assert [r.wakes for r in reports] == [1, 2, 3, 3]
    assert [r.last_wake_messages for r in reports[:3]] == [3, 0, 5]
    after_first = reports[0]
    assert after_first.elapsed_s == pytest.approx(2.0) and after_first.duty_cycle == 1.0
    assert after_first.next_wake_s == pytest.approx(8.0)
    third = reports[2]
    assert third.elapsed_s == pytest.approx(22.0)
    assert third.duty_cycle == pytest.approx(6.0 / 22.0)
    assert third.mode == "periodic" and third.board == "pi-4"
    assert third.updated_at == 1.7e9
    assert Telemetry.from_payload(third.to_payload()) == third
    # joules: 2.7 W for 22 s plus (6.4 - 2.7) / 4 W per CPU second
    assert third.joules == pytest.approx(2.7 * 22.0 + 0.925 * 0.08)
    assert third.joules_per_command == pytest.approx(third.joules / 8)


def test_run_forever_stops_on_stop_during_a_sleep():
    config = DutyConfig(mode="periodic", period_s=10.0, window_s=2.0)
    clock, cpu = FakeClock(), FakeClock(0.0)
    daemon = FakeDaemon(clock, cpu=cpu)
    loop = DutyLoop(daemon, config, EnergyMeter(PROFILES["pi-4"]), clock=clock,
                    cpu_clock=cpu, sleep=lambda s: (clock.sleep(s), loop.stop()))
    loop.run_forever()  # setup() is implied
    assert daemon.setups == 1 and len(daemon.wake_times) == 1 and daemon.stops == 1
    assert loop.meter.elapsed_s == pytest.approx(10.0)  # the sleep is accounted on the way out


def test_stop_before_running_returns_at_once():
    loop, daemon, _, reports = make_loop(DutyConfig(mode="periodic"))
    loop.stop()
    loop.run_forever()
    assert daemon.wake_times == [] and len(reports) == 1 and reports[0].wakes == 0


def test_a_failing_wake_is_logged_and_the_loop_goes_on(caplog):
    config = DutyConfig(mode="periodic", period_s=10.0, window_s=2.0)
    loop, daemon, clock, reports = make_loop(config, traffic=[0, 2])
    real_step = daemon.step

    def flaky(window_s):
        if len(daemon.wake_times) == 0:
            daemon.wake_times.append(clock.now)
            raise OSError("network down")
        return real_step(window_s)

    daemon.step = flaky
    daemon.on_step = lambda n: loop.stop() if n >= 3 else None
    with caplog.at_level(logging.ERROR, logger="edge_slm.daemon.duty"):
        loop.run_forever()
    assert "a wake failed" in caplog.text
    assert len(daemon.wake_times) == 3 and loop.meter.wakes == 3


def test_a_failing_report_does_not_stop_serving(caplog):
    config = DutyConfig(mode="periodic", period_s=10.0, window_s=2.0)
    loop, daemon, clock, _ = make_loop(config, traffic=[1, 1])

    def broken(telemetry):
        raise RuntimeError("broker gone")

    loop.report = broken
    with caplog.at_level(logging.ERROR, logger="edge_slm.daemon.duty"):
        run_wakes(loop, daemon, 2)
    assert loop.meter.messages == 2 and "reporting telemetry failed" in caplog.text


def test_always_on_hands_over_to_the_daemon_and_accounts_one_wake():
    loop, daemon, clock, reports = make_loop(DutyConfig())
    loop.run_forever()
    assert daemon.forever_runs == 1 and daemon.wake_times == []
    assert len(reports) == 1
    t = reports[0]
    assert (t.mode, t.wakes, t.messages, t.duty_cycle) == ("always-on", 1, 42, 1.0)
    assert t.period_s is None and t.next_wake_s is None
    assert t.cpu_s == pytest.approx(1.5) and t.elapsed_s == pytest.approx(3600.0)
    with pytest.raises(RuntimeError):
        loop.step(clock.now)


# -- the command line ----------------------------------------------------------------------


def test_serve_is_always_on_unless_told():
    args = build_parser().parse_args(["serve"])
    assert build_duty_config(args) == DutyConfig()
    assert args.board == "pi-4"


def test_serve_duty_options_build_the_config():
    args = build_parser().parse_args(
        ["serve", "--mode", "adaptive", "--period", "12", "--window", "1.5", "--min-period",
         "3", "--max-period", "90", "--board", "pi-zero-2w"])
    assert build_duty_config(args) == DutyConfig(mode="adaptive", period_s=12.0, window_s=1.5,
                                                 min_period_s=3.0, max_period_s=90.0)
    assert args.board == "pi-zero-2w"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--board", "pi-9"])


def test_status_report_formats_what_the_broker_holds():
    from edge_slm.cli.status import collect, format_report, to_json
    from edge_slm.protocols.native import NativeStatus

    loop, daemon, _, reports = make_loop(DutyConfig(mode="periodic", period_s=10.0,
                                                    window_s=2.0), traffic=[4])
    run_wakes(loop, daemon, 1)
    retained = {
        "edge-slm/kitchen/status": NativeStatus("online", "en-int8-abc", "0.1.0").to_payload(),
        "edge-slm/kitchen/telemetry": reports[0].to_payload(),
        "edge-slm/hall/status": NativeStatus("offline").to_payload(),
        "edge-slm/hall/telemetry": b"{broken",
    }
    sites = collect(retained)
    assert set(sites) == {"kitchen", "hall"}
    assert sites["kitchen"]["telemetry"] == reports[0]
    assert sites["hall"]["telemetry"] is None and len(sites["hall"]["errors"]) == 1
    text = "\n".join(format_report(sites, now=1.7e9 + 3))
    assert "kitchen: online, model en-int8-abc" in text
    assert "1 wake-ups, 4 messages" in text and "hall: offline" in text
    assert "overdue" not in text
    late = "\n".join(format_report(sites, now=1.7e9 + 60))
    assert "overdue" in late
    obj = json.loads(json.dumps(to_json(sites)))
    assert obj["kitchen"]["telemetry"]["messages"] == 4
    assert obj["hall"]["status"]["state"] == "offline"


def test_status_command_is_registered():
    args = build_parser().parse_args(["status", "--broker", "mqtt://hub:1883", "--site-id",
                                      "kitchen", "--json"])
    assert (args.broker, args.site_id, args.json) == ("mqtt://hub:1883", "kitchen", True)
