"""Ed25519 signing of bundles: keygen, sign, verify, and every way a bundle can be refused."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import sys
import zipfile

import pytest
from bundle_edits import rezip

pytest.importorskip("cryptography")

from edge_slm.bundle import BundleError  # noqa: E402
from edge_slm.runtime.engine import default_bundle_path  # noqa: E402
from firmware_tools import signing  # noqa: E402


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "firmware_tools", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture()
def keys(tmp_path):
    return signing.keygen(tmp_path / "keys")


@pytest.fixture()
def bundle(tmp_path):
    path = tmp_path / "model.slm"
    path.write_bytes(default_bundle_path("int4").read_bytes())
    return path


def test_keygen_writes_a_private_and_a_pub_file(keys, tmp_path):
    key, pub = keys
    assert "pub" in pub.name and "pub" not in key.name
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes() and b"PUBLIC KEY" in pub.read_bytes()
    with pytest.raises(signing.SignatureError, match="refusing to overwrite"):
        signing.keygen(tmp_path / "keys")


def test_sign_then_verify_from_the_command_line(keys, bundle):
    key, pub = keys
    assert _cli("verify", bundle, "--pubkey", pub).returncode == 2  # not signed yet
    r = _cli("sign", bundle, "--key", key)
    assert r.returncode == 0, r.stderr
    r = _cli("verify", bundle, "--pubkey", pub)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr
    # the signed bundle is still a bundle the engine loads
    from edge_slm.runtime.engine import IntentEngine

    assert IntentEngine.load(bundle).parse("turn on the light").top_intent


def test_unsigned_wrong_key_and_tampering_are_refused(keys, bundle, tmp_path):
    key, pub = keys
    other_key, other_pub = signing.keygen(tmp_path / "other")
    with pytest.raises(signing.SignatureError, match="not signed"):
        signing.verify(bundle, [pub])
    signed = signing.sign_bytes(bundle.read_bytes(), key)
    signing.verify(signed, [pub])
    assert signing.verify_bundle(signing.read_bundle(signed),
                                 [signing.load_public(other_pub),
                                  signing.load_public(pub)]) == 1
    with pytest.raises(signing.SignatureError, match="bad signature"):
        signing.verify(signed, [other_pub])

    def bump_metric(m):
        manifest = json.loads(m["manifest.json"])
        manifest["metrics"]["heldout"]["top1_acc"] = 0.999
        m["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(signing.SignatureError, match="bad signature"):
        signing.verify(rezip(signed, bump_metric), [pub])

    def flip_model(m):
        data = bytearray(m["model.tflite"])
        data[100] ^= 1
        m["model.tflite"] = bytes(data)
    with pytest.raises(BundleError, match="SHA-256"):
        signing.verify(rezip(signed, flip_model), [pub])

    def forge_signature(m):
        m["manifest.sig"] = bytes(64)
    with pytest.raises(signing.SignatureError, match="bad signature"):
        signing.verify(rezip(signed, forge_signature), [pub])


def test_resigning_replaces_the_signature(keys, bundle, tmp_path):
    key, pub = keys
    other_key, other_pub = signing.keygen(tmp_path / "other")
    once = signing.sign_bytes(bundle.read_bytes(), key)
    twice = signing.sign_bytes(once, other_key)
    with zipfile.ZipFile(io.BytesIO(twice)) as zf:
        assert [i.filename for i in zf.infolist()].count("manifest.sig") == 1
    signing.verify(twice, [other_pub])
    with pytest.raises(signing.SignatureError):
        signing.verify(twice, [pub])


def test_bad_key_files_are_clear_errors(tmp_path, bundle):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    r = _cli("sign", bundle, "--key", junk)
    assert r.returncode == 2 and "not a readable" in r.stderr and "Traceback" not in r.stderr
    r = _cli("verify", bundle, "--pubkey", tmp_path / "missing.pem")
    assert r.returncode == 2 and "error" in r.stderr
