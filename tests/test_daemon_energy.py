"""Energy accounting: the power profiles are there with their sources, the estimate is
idle power over the elapsed time plus the per-core share of the load power over the CPU time,
the derived figures (per wake, per command, per hour, duty cycle) follow, and the telemetry
message round-trips."""

from __future__ import annotations

import inspect
import json

import pytest

from edge_slm.daemon.energy import DEFAULT_BOARD, PROFILES, EnergyMeter, PowerProfile
from edge_slm.errors import ProtocolError
from edge_slm.protocols import Message
from edge_slm.protocols import telemetry as tm

BOARD = PowerProfile("test-board", idle_w=2.0, loaded_w=6.0, source="a test", cores=4)


def test_the_four_boards_have_profiles_with_sources():
    assert set(PROFILES) == {"pi-zero-2w", "pi-3b+", "pi-4", "pi-5"}
    assert DEFAULT_BOARD in PROFILES
    for name, p in PROFILES.items():
        assert p.board == name
        assert 0 < p.idle_w < p.loaded_w < 15.0, name  # a Pi board, not a space heater
        assert p.cores == 4
        assert "https://" in p.source, name
    # the small board idles lowest, the Pi 5 loads highest
    assert min(PROFILES.values(), key=lambda p: p.idle_w).board == "pi-zero-2w"
    assert max(PROFILES.values(), key=lambda p: p.loaded_w).board == "pi-5"


@pytest.mark.parametrize("kw", [
    {"idle_w": 0.0}, {"idle_w": -1.0}, {"loaded_w": 1.0}, {"idle_w": float("inf")},
    {"cores": 0}, {"source": " "}, {"idle_w": True},
])
def test_bad_profiles_are_refused(kw):
    args = dict(board="b", idle_w=2.0, loaded_w=6.0, source="s")
    args.update(kw)
    with pytest.raises(ValueError):
        PowerProfile(**args)


def test_joules_are_idle_power_plus_the_per_core_load_share():
    assert BOARD.watts_per_cpu_s == pytest.approx(1.0)  # (6 - 2) W / 4 cores
    assert BOARD.joules(elapsed_s=100.0, cpu_s=8.0) == pytest.approx(2.0 * 100 + 1.0 * 8)
    assert BOARD.joules(0.0, 0.0) == 0.0
    # four cores busy for the whole time is the full-load figure
    assert BOARD.joules(10.0, 40.0) == pytest.approx(6.0 * 10)
    with pytest.raises(ValueError):
        BOARD.joules(-1.0, 0.0)


def test_meter_counts_wakes_messages_and_time():
    meter = EnergyMeter(BOARD, started_at=1000.0)
    meter.record_wake(1000.0, 1002.0, cpu_s=0.5, messages=3)
    meter.record_wake(1010.0, 1012.0, cpu_s=0.3, messages=0)
    meter.record_wake(1020.0, 1022.0, cpu_s=1.2, messages=5)
    assert (meter.wakes, meter.messages, meter.last_wake_messages) == (3, 8, 5)
    assert meter.messages_per_wake == pytest.approx(8 / 3)
    assert meter.awake_s == pytest.approx(6.0) and meter.cpu_s == pytest.approx(2.0)
    assert meter.elapsed_s == pytest.approx(22.0)
    assert meter.duty_cycle == pytest.approx(6.0 / 22.0)
    assert meter.joules == pytest.approx(2.0 * 22.0 + 1.0 * 2.0)
    assert meter.joules_per_command == pytest.approx(46.0 / 8)
    assert meter.active_joules_per_command == pytest.approx(2.0 / 8)
    assert meter.commands_per_hour == pytest.approx(8 * 3600 / 22.0)
    meter.mark(1100.0)  # asleep until now: more idle energy, same work
    assert meter.elapsed_s == pytest.approx(100.0)
    assert meter.joules == pytest.approx(2.0 * 100.0 + 2.0)
    assert meter.duty_cycle == pytest.approx(0.06)


def test_meter_before_any_command():
    meter = EnergyMeter(BOARD, started_at=5.0)
    assert meter.joules_per_command is None and meter.active_joules_per_command is None
    assert meter.messages_per_wake == 0.0 and meter.duty_cycle == 0.0
    assert meter.commands_per_hour == 0.0 and meter.joules == 0.0
    meter.record_wake(5.0, 6.0, 0.0, 0)
    assert meter.joules_per_command is None and meter.joules == pytest.approx(2.0)


def test_start_resets_the_accounting():
    meter = EnergyMeter(BOARD)
    meter.record_wake(0.0, 1.0, 0.1, 2)
    meter.start(50.0)
    assert (meter.wakes, meter.messages, meter.cpu_s, meter.elapsed_s) == (0, 0, 0.0, 0.0)
    assert meter.started_at == 50.0


@pytest.mark.parametrize("wake", [
    (10.0, 9.0, 0.0, 0),   # ends before it starts
    (-1.0, 1.0, 0.0, 0),   # before accounting began
    (0.0, 1.0, -0.1, 0),   # negative CPU time
    (0.0, 1.0, 0.0, -1),   # negative messages
    (0.0, 1.0, 0.0, 1.5),  # not a count
])
def test_impossible_wakes_are_refused(wake):
    with pytest.raises(ValueError):
        EnergyMeter(BOARD).record_wake(*wake)


def test_to_dict_is_the_accounting_part_of_the_telemetry():
    meter = EnergyMeter(PROFILES["pi-zero-2w"], started_at=0.0)
    meter.record_wake(0.0, 2.0, 0.25, 4)
    meter.mark(30.0)
    d = meter.to_dict()
    assert d["board"] == "pi-zero-2w" and d["messages"] == 4
    msg = tm.Telemetry(mode="periodic", updated_at=1.7e9, period_s=30.0, next_wake_s=0.0, **d)
    wire = json.loads(msg.to_payload())
    assert wire["joules"] == pytest.approx(0.6 * 30 + (3.0 - 0.6) / 4 * 0.25)
    assert wire["duty_cycle"] == pytest.approx(2.0 / 30.0, abs=1e-6)
    assert json.loads(json.dumps(d)) == d  # plain JSON values only


# -- the telemetry message -----------------------------------------------------------------

SAMPLES = [
    tm.Telemetry(mode="periodic", board="pi-4", wakes=3, messages=8, last_wake_messages=5,
                 messages_per_wake=2.666667, cpu_s=0.08, awake_s=6.0, elapsed_s=22.0,
                 duty_cycle=0.272727, joules=59.474, commands_per_hour=1309.090909,
                 updated_at=1.7e9, joules_per_command=7.434, active_joules_per_command=0.00925,
                 period_s=10.0, next_wake_s=8.0),
    tm.Telemetry(mode="always-on", board="pi-5", wakes=1, messages=0, last_wake_messages=0,
                 messages_per_wake=0.0, cpu_s=1.5, awake_s=3600.0, elapsed_s=3600.0,
                 duty_cycle=1.0, joules=11520.0, commands_per_hour=0.0, updated_at=1.7e9),
]


def test_every_telemetry_class_has_a_sample_and_is_listed():
    found = {obj for obj in vars(tm).values()
             if inspect.isclass(obj) and issubclass(obj, Message) and obj is not Message
             and obj.__module__ == tm.__name__}
    assert found == {type(m) for m in SAMPLES} == set(tm.MESSAGES)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: m.mode)
def test_telemetry_round_trips(msg):
    assert tm.Telemetry.from_payload(msg.to_payload()) == msg
    assert tm.Telemetry.is_topic(msg.topic(site_id="kitchen"))


def test_telemetry_topic_carries_the_site():
    assert tm.Telemetry.topic(site_id="kitchen") == "edge-slm/kitchen/telemetry"
    assert tm.Telemetry.topic() == "edge-slm/+/telemetry"
    assert tm.Telemetry.site_of("edge-slm/hall/telemetry") == "hall"
    assert not tm.Telemetry.is_topic("edge-slm/hall/status")
    assert not tm.Telemetry.is_topic("edge-slm/a/b/telemetry")
    with pytest.raises(ValueError):
        tm.Telemetry.topic(site_id="a/b")


def test_unset_fields_are_written_as_null():
    wire = json.loads(SAMPLES[1].to_payload())
    assert wire["period_s"] is None and wire["joules_per_command"] is None
    assert set(wire) == set(json.loads(SAMPLES[0].to_payload()))


@pytest.mark.parametrize("change", [
    {"mode": "sometimes"}, {"wakes": -1}, {"wakes": 1.5}, {"joules": "a lot"},
    {"messages": None}, {"board": 4},
])
def test_bad_telemetry_payloads_are_protocol_errors(change):
    obj = dict(json.loads(SAMPLES[0].to_payload()), **change)
    with pytest.raises(ProtocolError):
        tm.Telemetry.from_payload(json.dumps(obj).encode())
    with pytest.raises(ProtocolError):
        tm.Telemetry.from_payload(b"[]")
