"""Serial flashing: the wire format, the sender and the agent on software twins of the link
(an in-memory pair, real pyserial `socket://` ports through a local TCP relay, a simulated
UART in virtual time), with injected faults. Whatever happens, the active slot holds either
the old bundle or a byte-identical new one that passed its checks."""

from __future__ import annotations

import json
import random
import socket
import tempfile
import threading
from pathlib import Path

import pytest
from bundle_edits import rezip

from edge_slm.bundle import REQUIRED_MEMBERS, BundleError, read_bundle, sha256, write_bundle
from edge_slm.runtime.engine import default_bundle_path
from firmware_tools import serial_protocol as sp
from firmware_tools.agent import Agent, serve_agent
from firmware_tools.flash import FlashConfig, FlashSender, flash_bundle, open_port
from firmware_tools.serial_twin import (FaultRates, Faults, FaultyPort, memory_pair,
                                        simulate)
from firmware_tools.slots import SlotStore

REAL = default_bundle_path("int4").read_bytes()
#: Fast timeouts for threaded tests on an in-memory or loopback link.
FAST = FlashConfig(ack_timeout_s=0.1, handshake_timeout_s=0.2, status_timeout_s=20.0,
                   max_retries=20)
JOIN_S = 60


def _agent(store, **kw):
    """An agent that takes unsigned bundles: the transport is under test, not signatures."""
    return Agent(store, insecure_unsigned=True, **kw)


def _small_bundle(seed: int, size: int = 3000) -> bytes:
    """A made-up bundle (valid format, random members): fast, but no model to self-test."""
    rng = random.Random(seed)
    members = {name: rng.randbytes(size // 6) for name in REQUIRED_MEMBERS}
    with tempfile.TemporaryDirectory() as d:
        return write_bundle(Path(d) / "s.slm", members, {"seed": seed}).read_bytes()


def _cheap_check(path):
    read_bundle(path)


# -- wire format -----------------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00", b"a\x00b", bytes(range(256)) * 3,
                                  b"\x01" * 254, b"\x01" * 255, b"\x01" * 508 + b"\x00"])
def test_cobs_round_trips_and_has_no_zero(data):
    enc = sp.cobs_encode(data)
    assert 0 not in enc
    assert sp.cobs_decode(enc) == data


def test_every_message_type_round_trips_through_a_frame():
    tid = bytes(range(32))
    samples = {sp.Hello: sp.Hello(1, 1024, 5000, tid), sp.HelloAck: sp.HelloAck(1, 512, 8, 7, tid),
               sp.Data: sp.Data(4096, b"\x00ab\x00"), sp.Ack: sp.Ack(9), sp.Nak: sp.Nak(10),
               sp.Done: sp.Done(5000, tid),
               sp.Status: sp.Status(0, "golden failed ü", bytes(range(1, 33)))}
    assert set(sp.Message._REGISTRY.values()) == set(samples)
    nonce = bytes([0, 1, 2, 3, 0, 5, 6, 7])
    for seq, msg in enumerate(samples.values()):
        wire = sp.encode_frame(msg, seq, nonce)
        assert wire.endswith(b"\x00") and wire.count(0) == 1
        assert sp.decode_frame(wire[:-1]) == (seq, nonce, msg)


def test_decoder_drops_damaged_frames_and_resynchronizes():
    good = [sp.encode_frame(sp.Ack(i), i, bytes(sp.NONCE_BYTES)) for i in range(4)]
    raw = bytearray(sp.cobs_decode(good[1][:-1]))
    raw[12] ^= 0x10  # a bit of the ACK's offset; the CRC is left as it was
    bad = sp.cobs_encode(bytes(raw)) + b"\x00"
    dec = sp.FrameDecoder()
    got = dec.feed(good[0] + bytes(bad) + good[2][:5]) + dec.feed(good[2][5:] + good[3])
    assert [m.offset for _, _, m in got] == [0, 2, 3]
    assert dec.dropped == 1
    with pytest.raises(sp.FrameError, match="CRC"):
        sp.decode_frame(bytes(bad[:-1]))


# -- threaded, on serial-like twins ----------------------------------------------------------

def _run_agent(port, agent, once=True):
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("n", serve_agent(port, agent, once=once)),
                         daemon=True)
    t.start()
    return t, box


def test_real_bundle_over_a_memory_pair_lands_identical_in_slot_a(tmp_path):
    host, dev = memory_pair()
    store = SlotStore(tmp_path / "slots")
    t, _ = _run_agent(open_port(dev), _agent(store))
    seen = []
    result = flash_bundle(host, REAL, progress=lambda d, n: seen.append(d), config=FAST)
    t.join(JOIN_S)
    assert "active in slot a" in result.detail
    assert store.active() == "a" and store.path("a").read_bytes() == REAL
    assert seen[-1] == len(REAL) and seen == sorted(seen)
    assert not list((tmp_path / "slots" / "incoming").iterdir())


def test_faulty_link_both_ways_still_delivers_an_identical_bundle(tmp_path):
    host, dev = memory_pair()
    rates = FaultRates(drop=0.03, flip=0.03, duplicate=0.03, reorder=0.03, drop_byte=0.02)
    store = SlotStore(tmp_path)
    # the agent keeps serving after the install: a lost STATUS is answered again on DONE
    t, _ = _run_agent(FaultyPort(dev, Faults(rates, seed=2)), _agent(store), once=False)
    result = flash_bundle(FaultyPort(host, Faults(rates, seed=1)), REAL, config=FAST)
    host.close()
    t.join(JOIN_S)
    assert result.retransmits > 0 and store.path(store.active()).read_bytes() == REAL


def test_disconnect_midway_then_resume_after_an_agent_restart(tmp_path):
    store = SlotStore(tmp_path)
    host, dev = memory_pair()
    t, _ = _run_agent(dev, _agent(store))
    with pytest.raises(sp.FlashError, match="resume"):
        flash_bundle(FaultyPort(host, Faults(cut_after=len(REAL) // 2)), REAL, config=FAST)
    t.join(JOIN_S)
    assert store.active() is None  # nothing half-written became active
    host, dev = memory_pair()
    t, _ = _run_agent(dev, _agent(store))  # a new agent: the partial file survived
    result = flash_bundle(host, REAL, config=FAST)
    t.join(JOIN_S)
    assert 0 < result.resumed_from < len(REAL)
    assert store.path(store.active()).read_bytes() == REAL


class _Relay:
    """A local TCP listener joining the first two clients (pyserial `socket://` ports)."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        a, _ = self.server.accept()
        b, _ = self.server.accept()
        for src, dst in ((a, b), (b, a)):
            threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_both_command_lines_over_pyserial_socket_urls(tmp_path, capsys):
    from firmware_tools.__main__ import main as fw_main

    relay = _Relay()
    box = {}
    agent = threading.Thread(target=lambda: box.setdefault("rc", fw_main(
        ["serial-agent", "--port", relay.url, "--slots", str(tmp_path / "s"), "--once",
         "--insecure-unsigned"])),
        daemon=True)
    agent.start()
    bundle = tmp_path / "m.slm"
    bundle.write_bytes(REAL)
    assert fw_main(["flash", str(bundle), "--port", relay.url, "--no-progress"]) == 0
    agent.join(JOIN_S)
    assert box["rc"] == 0
    assert (tmp_path / "s" / "a.slm").read_bytes() == REAL
    assert (tmp_path / "s" / "active").read_text() == "a"
    assert "installed" in capsys.readouterr().out


# -- checks before activation (simulated UART, virtual time) ----------------------------------

def _flash_sim(store, data, agent=None, **kw):
    sender = FlashSender(data, FlashConfig(baud=115200))
    simulate(sender, agent or _agent(store), **kw)
    return sender


def _installed(tmp_path):
    store = SlotStore(tmp_path)
    assert _flash_sim(store, REAL).result is not None
    return store


def _refused(store, data, code, agent=None):
    sender = _flash_sim(store, data, agent)
    assert isinstance(sender.error, sp.DeviceError) and sender.error.code == code, sender.error
    assert store.active() == "a" and store.path("a").read_bytes() == REAL


def test_tampered_bundle_refused_and_old_slot_kept(tmp_path):
    store = _installed(tmp_path)

    def tamper(m):
        m["labels.json"] = m["labels.json"].replace(b"HassTurnOn", b"HassTurnUp")

    _refused(store, rezip(REAL, tamper), sp.STATUS_BAD_BUNDLE)


def test_failing_self_test_rolls_back(tmp_path):
    store = _installed(tmp_path)
    b = read_bundle(REAL)
    manifest = dict(b.manifest)
    golden = json.loads(json.dumps(manifest["golden"]))
    for case in golden["cases"]:
        case["intent_logits"] = [-x for x in case["intent_logits"]]
    manifest["golden"] = golden
    members = {k: v for k, v in b.members.items() if k != "manifest.json"}
    bad = write_bundle(tmp_path / "bad.slm", members, manifest).read_bytes()
    _refused(store, bad, sp.STATUS_SELF_TEST_FAILED)
    assert not store.path("b").exists()  # checked in a temporary file: no slot touched


def test_with_trusted_keys_only_signed_bundles_are_installed(tmp_path):
    pytest.importorskip("cryptography")
    from firmware_tools import signing

    key, pub = signing.keygen(tmp_path / "keys")
    other, _ = signing.keygen(tmp_path / "other")
    store = _installed(tmp_path / "slots")
    agent = Agent(store, public_keys=[signing.load_public(pub)])
    _refused(store, signing.sign_bytes(REAL, other) + b"", sp.STATUS_BAD_SIGNATURE, agent)
    _refused(store, rezip(REAL, lambda m: None), sp.STATUS_BAD_SIGNATURE, agent)  # unsigned
    signed = signing.sign_bytes(REAL, key)
    assert _flash_sim(store, signed, agent).result is not None
    assert store.active() == "b" and store.path("b").read_bytes() == signed


def test_a_stalled_receiver_is_waited_for_and_a_dead_one_times_out(tmp_path):
    store = _installed(tmp_path)
    data = _small_bundle(1)
    agent = _agent(store, self_test=_cheap_check)
    ok = _flash_sim(store, data, agent, stall=(0.05, 3.0))
    assert ok.result is not None and store.path(store.active()).read_bytes() == data
    dead = _flash_sim(store, _small_bundle(2), agent, stall=(0.0, 1e9))
    assert isinstance(dead.error, sp.FlashTimeout)
    assert store.path(store.active()).read_bytes() == data


# -- randomized fault schedules --------------------------------------------------------------

def test_a_thousand_random_fault_schedules_never_activate_a_corrupt_bundle(tmp_path):
    rng = random.Random(20240611)
    payloads = [_small_bundle(s, size=rng.randrange(600, 4000)) for s in range(8)]
    store = SlotStore(tmp_path)
    agent = _agent(store, self_test=_cheap_check, max_frame=128, window=4)
    config = FlashConfig(max_frame=128, window=4, baud=115200, max_retries=5)
    expected_active = None
    installed = refused = failed = 0
    clock = 0.0  # the agent's virtual time goes on from one transfer to the next
    for i in range(1000):
        data = payloads[rng.randrange(len(payloads))]
        tampered = rng.random() < 0.1
        if tampered:  # sent perfectly, but a member no longer matches its manifest hash
            j = rng.randrange(100)
            data = rezip(data, lambda m: m.update({"model.tflite": m["model.tflite"][:j] + bytes(
                [m["model.tflite"][j] ^ 0xFF]) + m["model.tflite"][j + 1:]}))
        rates = FaultRates(*(rng.random() * 0.15 for _ in range(5)))
        cut = rng.randrange(len(data) * 2) if rng.random() < 0.2 else None
        stall = (rng.random(), rng.random() * 8) if rng.random() < 0.2 else (0.0, 0.0)
        for attempt in range(3):  # a cut or timed-out transfer is resumed
            sender = FlashSender(data, config)
            clock += 1.0 + simulate(sender, agent, to_agent=Faults(rates, i * 7 + attempt,
                                                                   cut if attempt == 0 else None),
                                    to_sender=Faults(rates, i * 13 + attempt), stall=stall,
                                    start=clock).elapsed_s
            if not isinstance(sender.error, sp.FlashTimeout):
                break
        if sender.result is not None:
            assert not tampered
            installed += 1
            expected_active = sha256(data)
        else:  # a clear failure: the device refused it, or the link gave out
            assert isinstance(sender.error, sp.FlashError), sender.error
            refused += tampered and isinstance(sender.error, sp.DeviceError)
            failed += not tampered
        active = store.active_path()
        now = sha256(active.read_bytes()) if active is not None else None
        assert now == expected_active, f"schedule {i}: active slot is not the last good bundle"
    assert installed > 800 and refused > 50 and failed < 50, (installed, refused, failed)


# -- what the agent remembers, and what the sender believes -----------------------------------

def test_a_refused_transfer_is_not_held_against_the_same_bundle_sent_again(tmp_path):
    """The first try fails for a passing reason (the self-test ran out of memory): the same
    bundle sent again by a new `flash` must be installed, not refused from memory."""
    tries = []

    def flaky_check(path):
        tries.append(path)
        if len(tries) == 1:
            raise BundleError("out of memory while self-testing")
        read_bundle(path)

    store = SlotStore(tmp_path)
    agent = _agent(store, self_test=flaky_check)
    data = _small_bundle(7)
    first = _flash_sim(store, data, agent)
    assert isinstance(first.error, sp.DeviceError)
    assert first.error.code == sp.STATUS_SELF_TEST_FAILED
    second = _flash_sim(store, data, agent)
    assert second.result is not None, second.error
    assert len(tries) == 2 and store.path(store.active()).read_bytes() == data
    again = _flash_sim(store, data, agent)  # what is active already: said so, nothing sent
    assert again.result is not None and "already active" in again.result.detail
    assert again.result.frames_sent == 0 and len(tries) == 2


class _Impostor:
    """Passes frames to a real agent, but its final STATUS names another bundle's SHA-256
    (an agent that installed something else, or a forger who guessed the nonce)."""

    def __init__(self, agent):
        self.agent = agent
        self.decoder = sp.FrameDecoder()

    def receive(self, data, now):
        out = b""
        for seq, nonce, msg in self.decoder.feed(self.agent.receive(data, now)):
            if isinstance(msg, sp.Status):
                msg = sp.Status(msg.code, msg.detail, bytes(32))
            out += sp.encode_frame(msg, seq, nonce)
        return out


def test_installed_counts_only_with_the_sha256_of_the_bundle_sent(tmp_path):
    store = SlotStore(tmp_path)
    sender = FlashSender(_small_bundle(8), FlashConfig(baud=115200))
    simulate(sender, _Impostor(_agent(store, self_test=_cheap_check)))
    assert sender.result is None and isinstance(sender.error, sp.FlashError)
    assert "reported success, but the bundle it holds has SHA-256" in str(sender.error)
