"""The A/B slots under attack and under load: a refused bundle never touches either slot (the
inactive one is the fallback), two agents on one slots folder take turns through the folder's
lock, and a lock held by another process makes an install wait or answer "busy"."""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from edge_slm.bundle import REQUIRED_MEMBERS, BundleError, read_bundle, write_bundle
from firmware_tools import serial_protocol as sp
from firmware_tools.agent import Agent
from firmware_tools.flash import FlashConfig, FlashSender
from firmware_tools.serial_twin import simulate
from firmware_tools.slots import LOCK, SlotError, SlotStore

CONFIG = FlashConfig(baud=115200)


def _small_bundle(seed: int, size: int = 3000) -> bytes:
    """A made-up bundle (valid format, random members): no model to self-test."""
    rng = random.Random(seed)
    members = {name: rng.randbytes(size // 6) for name in REQUIRED_MEMBERS}
    with tempfile.TemporaryDirectory() as d:
        return write_bundle(Path(d) / "s.slm", members, {"seed": seed}).read_bytes()


GOOD1, GOOD2, BAD = _small_bundle(1), _small_bundle(2), _small_bundle(3)


def _refuse_bad(path: Path) -> None:
    """A self-test that refuses BAD (as the golden self-test refuses a wrong model)."""
    if read_bundle(path).manifest.get("seed") == 3:
        raise BundleError("golden outputs differ")


def _agent(store: SlotStore, **kw) -> Agent:
    kw.setdefault("self_test", _refuse_bad)
    return Agent(store, insecure_unsigned=True, **kw)


def _flash(agent: Agent, data: bytes) -> FlashSender:
    sender = FlashSender(data, CONFIG)
    simulate(sender, agent)
    return sender


def _files(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def test_a_refused_bundle_never_touches_either_slot(tmp_path):
    store = SlotStore(tmp_path)
    agent = _agent(store)
    assert _flash(agent, GOOD1).result is not None and store.active() == "a"
    assert _flash(agent, GOOD2).result is not None and store.active() == "b"
    before = _files(tmp_path)
    sender = _flash(agent, BAD)
    assert isinstance(sender.error, sp.DeviceError)
    assert sender.error.code == sp.STATUS_SELF_TEST_FAILED
    assert store.active() == "b" and store.path("b").read_bytes() == GOOD2
    assert store.path("a").read_bytes() == GOOD1  # the fallback is still the one before
    assert _files(tmp_path) == before  # no temporary file left behind


def test_two_agents_on_one_folder_never_activate_a_refused_bundle(tmp_path):
    """The good agent's check is slow; meanwhile the other agent installs a bundle its check
    refuses. Without a lock both write the same inactive slot and the good agent then
    switches to what the other one refused."""
    checking, bad_written = threading.Event(), threading.Event()

    def slow_check(path: Path) -> None:
        checking.set()
        bad_written.wait(3.0)  # the other agent's install has its turn now, if it can
        read_bundle(path)

    def bad_check(path: Path) -> None:
        bad_written.set()
        _refuse_bad(path)

    good_agent = _agent(SlotStore(tmp_path), self_test=slow_check)
    bad_agent = _agent(SlotStore(tmp_path), self_test=bad_check)
    results = {}

    def run_bad() -> None:
        assert checking.wait(30)
        results["bad"] = _flash(bad_agent, BAD)

    t = threading.Thread(target=run_bad, daemon=True)
    t.start()
    results["good"] = _flash(good_agent, GOOD1)
    t.join(60)
    assert results["good"].result is not None, results["good"].error
    assert isinstance(results["bad"].error, sp.DeviceError)
    store = SlotStore(tmp_path)
    assert store.path(store.active()).read_bytes() == GOOD1


_HOLD_LOCK = """
import fcntl, sys, time
with open(sys.argv[1], "a") as fh:
    fcntl.flock(fh, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_a_lock_held_by_another_process_is_waited_for_or_answered_busy(tmp_path):
    store = SlotStore(tmp_path, lock_timeout_s=0.5)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(tmp_path / LOCK)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SlotError, match="locked by another"):
            store.install(GOOD1, read_bundle)
        sender = _flash(_agent(store), GOOD1)
        assert isinstance(sender.error, sp.DeviceError) and sender.error.code == sp.STATUS_BUSY
        assert store.active() is None and not store.path("a").exists()
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(10) == 0
        assert _flash(_agent(store), GOOD1).result is not None
        assert store.path(store.active()).read_bytes() == GOOD1
    finally:
        if holder.poll() is None:
            holder.kill()
