"""The bundle file as hostile input: every way a crafted `.slm` file attacks the reader (deep
nesting, huge numbers, zip bombs, extra, duplicate or encrypted members, malformed members, a
loosened golden tolerance) ends in a BundleError that says what is wrong, before memory is
spent, and with trusted keys before anything the signature covers is parsed. Built from the
shipped int4 bundle with zipfile; no mocks."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

from edge_slm.bundle import MANIFEST, BundleError, read_bundle, write_bundle
from edge_slm.runtime.engine import IntentEngine, default_bundle_path

REPO = Path(__file__).resolve().parent.parent
REAL = default_bundle_path("int4").read_bytes()
DEEP = 100_000
"""Nesting that makes json.loads raise RecursionError."""
MiB = 1024 * 1024


def _members(blob: bytes = REAL) -> Dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _zip(entries: List[Tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED,
         per_member: Optional[Dict[str, int]] = None) -> bytes:
    """A zip of (name, data) entries in order (names may repeat)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": on purpose
        with zipfile.ZipFile(buf, "w", compression=compression) as zf:
            for name, data in entries:
                zf.writestr(name, data, compress_type=(per_member or {}).get(name))
    return buf.getvalue()


def _with_manifest_text(text: bytes, extra: Optional[Dict[str, bytes]] = None) -> bytes:
    """The shipped bundle's members with `text` as manifest.json (checksums untouched)."""
    members = dict(_members(), **(extra or {}))
    members[MANIFEST] = text
    return _zip(sorted(members.items()))


def _manifest_with(placeholder_value: str, key: str = "provenance") -> bytes:
    """The shipped manifest's text with the value of `key` replaced by raw JSON text."""
    manifest = json.loads(_members()[MANIFEST])
    manifest[key] = "@@HERE@@"
    return json.dumps(manifest).replace('"@@HERE@@"', placeholder_value).encode()


def _rebuilt(tmp_path: Path, change: Callable[[Dict[str, bytes], dict], None],
             name: str = "bad.slm") -> Path:
    """The shipped bundle with members and manifest changed by `change(members, manifest)`
    and written again, every checksum right: what a careful attacker sends."""
    members = _members()
    manifest = json.loads(members.pop(MANIFEST))
    members.pop("manifest.sig", None)
    change(members, manifest)
    keep = {k: v for k, v in manifest.items() if k not in ("magic", "format_version", "members")}
    return write_bundle(tmp_path / name, members, keep)


def _refused(fn: Callable[[], object]) -> Tuple[str, float]:
    """(message, peak Python memory in MiB) of `fn`, which must raise BundleError."""
    tracemalloc.start()
    try:
        with pytest.raises(BundleError) as info:
            fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return str(info.value), peak / MiB


# -- High 2: parsing hostile JSON -------------------------------------------------------------

@pytest.mark.parametrize("text,message", [
    (b"[" * DEEP + b"]" * DEEP, "nest"),
    (_manifest_with("[" * DEEP + "]" * DEEP), "nest"),
    (_manifest_with("[" * 200 + "]" * 200), "nest"),  # parses, but deeper than any bundle
    (_manifest_with('"' + "1" * 5000 + '"', "min_runtime_version"), "min_runtime_version"),
    (_manifest_with('"1.' + "9" * 5000 + '"', "min_runtime_version"), "min_runtime_version"),
    (_manifest_with("[1, 2]", "min_runtime_version"), "min_runtime_version"),
    (_manifest_with("1" * 5000), "number"),
    (_manifest_with("1" * 200), "number"),
])
def test_hostile_manifest_json_is_a_bundle_error(text, message):
    with pytest.raises(BundleError, match=message):
        read_bundle(_with_manifest_text(text))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """(private, public) of a trusted key."""
    pytest.importorskip("cryptography")
    from firmware_tools.signing import keygen

    return keygen(tmp_path_factory.mktemp("keys"))


HOSTILE_MANIFESTS = [b"[" * DEEP + b"]" * DEEP,
                     _manifest_with('"' + "1" * 5000 + '"', "min_runtime_version")]


@pytest.mark.parametrize("text", HOSTILE_MANIFESTS)
def test_the_signature_is_checked_before_the_manifest_is_parsed(keys, text):
    from edge_slm.signature import SignatureError, read_verified, verify
    from firmware_tools.signing import load_public, sign_bytes

    with pytest.raises(SignatureError, match="not signed"):
        verify(_with_manifest_text(text), [keys[1]])
    # signed, then the manifest swapped: the signature no longer holds, nothing is parsed
    sig = _members(sign_bytes(REAL, keys[0]))["manifest.sig"]
    swapped = _with_manifest_text(text, {"manifest.sig": sig})
    with pytest.raises(SignatureError, match="bad signature"):
        read_verified(swapped, [load_public(keys[1])])


def test_serve_with_a_trusted_key_refuses_a_hostile_bundle(keys, tmp_path):
    from edge_slm.cli.serve import engine_loader
    from edge_slm.daemon.settings import load_settings
    from edge_slm.signature import SignatureError

    path = tmp_path / "deep.slm"
    path.write_bytes(_with_manifest_text(HOSTILE_MANIFESTS[0]))
    load = engine_loader(load_settings({"trusted_key": [keys[1]], "bundle": path}))
    with pytest.raises(SignatureError, match="not signed"):
        load()


def _agent_status(tmp_path: Path, data: bytes, keys: Tuple[Path, ...] = ()) -> int:
    """The status code an agent (with `keys` trusted, else explicitly taking unsigned bundles)
    answers for `data`, sent over a simulated serial link."""
    from edge_slm.signature import load_trusted_keys
    from firmware_tools.agent import Agent
    from firmware_tools.flash import FlashConfig, FlashSender
    from firmware_tools.serial_protocol import DeviceError
    from firmware_tools.serial_twin import simulate
    from firmware_tools.slots import SlotStore

    store = SlotStore(tmp_path / "slots")
    sender = FlashSender(data, FlashConfig(baud=115200))
    simulate(sender, Agent(store, public_keys=load_trusted_keys(keys),
                           insecure_unsigned=not keys))
    assert isinstance(sender.error, DeviceError), sender.result
    assert store.active() is None
    return sender.error.code


def test_agents_answer_hostile_bundles_with_a_status(keys, tmp_path):
    from firmware_tools import serial_protocol as sp

    for text in HOSTILE_MANIFESTS:  # the attack of the finding: --trusted-key given
        assert _agent_status(tmp_path, _with_manifest_text(text), (keys[1],)) \
            == sp.STATUS_BAD_SIGNATURE
        assert _agent_status(tmp_path, _with_manifest_text(text)) == sp.STATUS_BAD_BUNDLE
    bad = _rebuilt(tmp_path, lambda m, man: m.update({"config.json": b"[]"}))
    assert _agent_status(tmp_path, bad.read_bytes()) == sp.STATUS_SELF_TEST_FAILED


# -- High 3: zip bombs and the container --------------------------------------------------------

def test_a_zip_bomb_is_refused_before_it_is_decompressed():
    # 5 x 16 MiB of zeros: 80 KB on disk, more than a bundle may unpack to
    bomb = _zip(sorted(_members().items()) + [(f"pad{i}", bytes(16 * MiB)) for i in range(5)])
    assert len(bomb) < 1 * MiB
    message, peak = _refused(lambda: read_bundle(bomb))
    assert "unpack" in message, message
    assert peak < 8, f"{peak:.1f} MiB spent on a refused bundle"


def test_a_zip_bomb_in_a_file_is_refused_by_the_command_line(tmp_path):
    path = tmp_path / "bomb.slm"
    path.write_bytes(_zip(sorted(_members().items())
                          + [(f"pad{i}", bytes(16 * MiB)) for i in range(5)]))
    proc = subprocess.run([sys.executable, "-m", "edge_slm", "parse", "--bundle", str(path),
                           "turn on the light"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO))
    assert proc.returncode == 2 and "unpack" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_too_many_members_are_refused():
    many = _zip(sorted(_members().items()) + [(f"m{i}", b"") for i in range(10_000)])
    message, peak = _refused(lambda: read_bundle(many))
    assert "members" in message, message
    assert peak < 8, f"{peak:.1f} MiB spent on a refused bundle"


def test_unlisted_members_are_refused_without_being_decompressed():
    blob = _zip(sorted(_members().items()) + [("evil.bin", b"EVIL" * 100)],
                per_member={"evil.bin": zipfile.ZIP_STORED})
    with pytest.raises(BundleError, match="evil.bin.*not listed"):
        read_bundle(blob)
    # damaged: reading it would fail its CRC; the message shows it was never read
    damaged = blob.replace(b"EVIL" * 100, b"EVIL" * 99 + b"LIVE")
    with pytest.raises(BundleError, match="evil.bin.*not listed"):
        read_bundle(damaged)
    # a name made to mess up a terminal is shown escaped and cut short
    noisy = _zip(sorted(_members().items()) + [("x\x1b[2J" * 100, b"")])
    with pytest.raises(BundleError, match="not listed") as info:
        read_bundle(noisy)
    assert "\x1b" not in str(info.value) and len(str(info.value)) < 200


def test_duplicate_member_names_are_refused():
    members = _members()
    forged = members["labels.json"].replace(b"HassTurnOn", b"HassTurnUp")
    blob = _zip([("labels.json", forged)] + sorted(members.items()))
    with pytest.raises(BundleError, match="labels.json.*more than once"):
        read_bundle(blob)


def _patch_sizes(blob: bytes, name: str, size: int) -> bytes:
    """`blob` with the uncompressed size `name`'s local and central headers declare set to
    `size` (the data unchanged): a header that lies."""
    data = bytearray(blob)
    raw = name.encode()
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = 0
        while True:
            at = data.find(sig, at)
            assert at >= 0, (sig, name)
            name_at = at + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at:name_at + len(raw)] == raw:
                data[at + offset:at + offset + 4] = size.to_bytes(4, "little")
                break
            at += 4
    return bytes(data)


def test_a_member_that_unpacks_to_more_than_its_header_says_is_stopped():
    members = _members()
    members["home.json"] = members["home.json"] + b" " * (16 * MiB)
    manifest = json.loads(members[MANIFEST])
    manifest["members"]["home.json"]["bytes"] = 1000
    members[MANIFEST] = json.dumps(manifest).encode()
    blob = _patch_sizes(_zip(sorted(members.items())), "home.json", 1000)
    message, peak = _refused(lambda: read_bundle(blob))
    assert "home.json" in message, message
    assert peak < 8, f"{peak:.1f} MiB spent on a refused bundle"


@pytest.mark.parametrize("compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_only_stored_or_deflated_members_are_read(compression):
    blob = _zip(sorted(_members().items()), per_member={"model.tflite": compression})
    with pytest.raises(BundleError, match="model.tflite.*compress"):
        read_bundle(blob)


def test_an_encrypted_member_is_a_bundle_error():
    data = bytearray(REAL)
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # general purpose flags
        at = data.find(sig)
        data[at + offset] |= 0x01
    with pytest.raises(BundleError, match="encrypted"):
        read_bundle(bytes(data))


# -- Low: malformed members, `verify`, the golden tolerance ------------------------------------

def _set_case(key: str, value: object) -> Callable[[Dict[str, bytes], dict], None]:
    def change(members: Dict[str, bytes], manifest: dict) -> None:
        manifest["golden"]["cases"][0][key] = value
    return change


def _member(name: str, data: bytes) -> Callable[[Dict[str, bytes], dict], None]:
    return lambda members, manifest: members.update({name: data})


def _fewer_intents(members: Dict[str, bytes], manifest: dict) -> None:
    labels = json.loads(members["labels.json"])
    labels["intents"] = labels["intents"][:-1]  # well formed, but not this model's
    members["labels.json"] = json.dumps(labels).encode()


@pytest.mark.parametrize("change,message", [
    (_member("config.json", b"[]"), "config.json"),
    (_member("config.json", b'{"calibration": {"temperature": "hot"}}'), "config.json"),
    (_member("config.json", b'{"calibration": []}'), "config.json"),
    (_member("labels.json", b"[" * DEEP + b"]" * DEEP), "labels.json"),
    (_member("labels.json", b'{"intents": ["<none>", "A"], "tags": ["O"], "frames": [5]}'),
     "labels.json"),
    (_fewer_intents, "labels.json"),
    (_member("values.json", b"[]"), "values.json"),
    (_member("values.json", b'{"maps": 7}'), "values.json"),
    (_member("home.json", b"[]"), "home.json"),
    (_member("tokenizer.json", b'{"model": {"type": "WordPiece", "vocab": {}}}'),
     "tokenizer.json"),
    (_member("tokenizer.json", b'{"model": {"type": "WordPiece", "vocab": 3}}'),
     "tokenizer.json"),
    (_member("model.tflite", b"TFL3" + bytes(200)), "model.tflite"),
    (_set_case("ids", None), "golden"),
    (_set_case("ids", [1, 2, 3]), "golden"),
    (_set_case("intent_logits", "high"), "golden"),
    (_set_case("tags", {"a": 1}), "golden"),
    (_set_case("tags", []), "golden"),  # would check no tag at all
])
def test_malformed_members_are_bundle_errors_at_load(tmp_path, change, message):
    path = _rebuilt(tmp_path, change)
    read_bundle(path)  # every checksum right: only loading finds what is wrong
    with pytest.raises(BundleError, match=message):
        IntentEngine.load(path)


def test_a_malformed_member_is_one_line_on_the_command_line(tmp_path):
    path = _rebuilt(tmp_path, _member("config.json", b"[]"))
    proc = subprocess.run([sys.executable, "-m", "edge_slm", "parse", "--bundle", str(path),
                           "turn on the light"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO))
    assert proc.returncode == 2 and "config.json" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_verify_refuses_unlisted_and_duplicate_members(keys, tmp_path):
    from firmware_tools.signing import sign_bytes

    signed = _members(sign_bytes(REAL, keys[0]))
    extra = tmp_path / "extra.slm"
    extra.write_bytes(_zip(sorted(signed.items()) + [("payload.sh", b"rm -rf /")]))
    forged = signed["labels.json"].replace(b"HassTurnOn", b"HassTurnUp")
    duplicate = tmp_path / "duplicate.slm"
    duplicate.write_bytes(_zip([("labels.json", forged)] + sorted(signed.items())))
    for path, message in ((extra, "not listed"), (duplicate, "more than once")):
        proc = subprocess.run([sys.executable, "-m", "firmware_tools", "verify", str(path),
                               "--trusted-key", str(keys[1])], capture_output=True,
                              text=True, timeout=120,
                              env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO))
        assert proc.returncode == 2 and message in proc.stderr, (path, proc.stdout,
                                                                 proc.stderr)


def _scaled_logits(factor: float, tolerance: object = None) -> Callable[[Dict, dict], None]:
    """Every case's expected logits times `factor` (same argmax), and the manifest's
    tolerance set to `tolerance` (None: removed)."""
    def change(members: Dict[str, bytes], manifest: dict) -> None:
        golden = manifest["golden"]
        for case in golden["cases"]:
            case["intent_logits"] = [x * factor for x in case["intent_logits"]]
        golden.pop("tolerance", None)
        if tolerance is not None:
            golden["tolerance"] = tolerance
    return change


@pytest.mark.parametrize("tolerance", [1e9, 0.5, float("nan"), float("inf"), "1e9", -1, None])
def test_a_manifest_cannot_loosen_the_golden_tolerance(tmp_path, tolerance):
    # a third off: a runtime that computes this wrongly is refused whatever the manifest says
    path = _rebuilt(tmp_path, _scaled_logits(1.5, tolerance))
    with pytest.raises(BundleError, match="golden"):
        IntentEngine.load(path)


def test_a_manifest_may_tighten_the_golden_tolerance(tmp_path):
    from edge_slm.runtime.engine import GOLDEN_TOLERANCE

    # 2% off: within the runtime's own ceiling ...
    assert GOLDEN_TOLERANCE <= 0.05
    engine = IntentEngine.load(_rebuilt(tmp_path, _scaled_logits(1.02)))
    assert 0.01 < engine.golden_max_diff < GOLDEN_TOLERANCE
    # ... unless the manifest tightens it
    with pytest.raises(BundleError, match="golden outputs not reproduced"):
        IntentEngine.load(_rebuilt(tmp_path, _scaled_logits(1.02, 0.01)))


def test_shipped_bundles_still_read_and_load():
    for quant in ("int4", "int8"):
        path = default_bundle_path(quant)
        b = read_bundle(path)
        assert set(b.extra) <= {"manifest.sig"}
        assert IntentEngine.load(b).parse("turn off the kitchen lights").intent


def test_the_json_limits_are_exact():
    from edge_slm.bundle import MAX_JSON_DEPTH, MAX_NUMBER_CHARS, load_json

    n = MAX_JSON_DEPTH
    nested: list = []
    for _ in range(n - 1):
        nested = [nested]
    assert load_json(b"[" * n + b"]" * n, "x") == nested
    assert load_json(b'["[[[[", {"a": "]]"}]', "x") == ["[[[[", {"a": "]]"}]  # strings skipped
    for deep in (b"[" * (n + 1) + b"]" * (n + 1), b"[{}" * n + b"]" * n):
        with pytest.raises(BundleError, match="nested deeper"):
            load_json(deep, "x")
    assert load_json(b"9" * MAX_NUMBER_CHARS, "x") == int("9" * MAX_NUMBER_CHARS)
    with pytest.raises(BundleError, match="number"):
        load_json(b"9" * (MAX_NUMBER_CHARS + 1), "x")
