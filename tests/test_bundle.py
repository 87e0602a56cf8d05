"""The bundle reader refuses anything that is not exactly what the converter wrote."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from edge_slm.bundle import (FORMAT_VERSION, MANIFEST, REQUIRED_MEMBERS, BundleError, read_bundle,
                             sha256, write_bundle)


@pytest.fixture(scope="module")
def good(small_bundles):
    return (small_bundles[0] / "en-int8.slm").read_bytes()


def _members(blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _rezip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_good_bundle_reads(good):
    b = read_bundle(good)
    assert b.quantization == "int8" and b.model_id.startswith("en-int8-")
    assert set(REQUIRED_MEMBERS) <= set(b.members)
    m = b.manifest
    assert m["format_version"] == FORMAT_VERSION
    for name, info in m["members"].items():
        assert info["sha256"] == sha256(b.members[name])
    assert m["golden"]["cases"] and m["metrics"]["heldout"]["intent_acc"] > 0
    assert {"packages", "seed", "code_version"} <= set(m["provenance"])


@pytest.mark.parametrize("member", list(REQUIRED_MEMBERS))
def test_a_flipped_byte_in_any_member_is_refused(good, member):
    members = _members(good)
    data = bytearray(members[member])
    data[len(data) // 2] ^= 0x01
    members[member] = bytes(data)
    with pytest.raises(BundleError, match=f"{member} fails its SHA-256 check"):
        read_bundle(_rezip(members))


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9, 0.999])
def test_truncation_is_refused(good, keep):
    with pytest.raises(BundleError):
        read_bundle(good[:int(len(good) * keep)])


def test_a_flipped_byte_in_the_file_is_refused(good):
    # anywhere in the zip: its own CRC, our checksums or the structure catches it
    for pos in range(100, len(good), max(1, len(good) // 40)):
        blob = bytearray(good)
        blob[pos] ^= 0x40
        try:
            b = read_bundle(bytes(blob))
        except BundleError:
            continue
        # a flip in zip padding/metadata that leaves every member intact is harmless
        assert b.members == read_bundle(good).members


def test_wrong_version_magic_and_missing_members_are_refused(good):
    members = _members(good)
    manifest = json.loads(members[MANIFEST])
    for change, message in ((("format_version", 99), "format version 99"),
                            (("magic", "something-else"), "wrong magic"),
                            (("min_runtime_version", "99.0"), "needs edge-slm >= 99.0")):
        bad = dict(manifest)
        bad[change[0]] = change[1]
        with pytest.raises(BundleError, match=message):
            read_bundle(_rezip(dict(members, **{MANIFEST: json.dumps(bad).encode()})))
    without = {k: v for k, v in members.items() if k != "tokenizer.json"}
    with pytest.raises(BundleError, match="tokenizer.json is missing"):
        read_bundle(_rezip(without))
    with pytest.raises(BundleError, match="not a zip"):
        read_bundle(b"GGUF" + good)
    with pytest.raises(BundleError, match="no such bundle"):
        read_bundle("/nonexistent/model.slm")


def test_golden_outputs_not_reproduced_are_refused_at_load(good, tmp_path):
    from edge_slm.runtime.engine import IntentEngine

    members = _members(good)
    manifest = json.loads(members.pop(MANIFEST))
    case = manifest["golden"]["cases"][0]
    # what a runtime that miscomputes would show: the expected logits no longer match
    case["intent_logits"] = [-x for x in case["intent_logits"]]
    keep = {k: manifest[k] for k in manifest if k not in ("magic", "format_version", "members")}
    path = write_bundle(tmp_path / "bad.slm", members, keep)
    read_bundle(path)  # every checksum is right ...
    with pytest.raises(BundleError, match="golden outputs not reproduced"):
        IntentEngine.load(path)  # ... but the model does not give the recorded outputs
    IntentEngine.load(tmp_path / "bad.slm", check_golden=False)


def test_write_refuses_an_incomplete_bundle(tmp_path):
    with pytest.raises(BundleError, match="without"):
        write_bundle(tmp_path / "x.slm", {"model.tflite": b"x"}, {})
