"""`edge-slm serve --trusted-key`: the bundle must be signed by a trusted key at start (else
exit status 2 with a message) and on every SIGHUP reload (else "reload refused" and the old
model keeps serving); the option comes from flags, the environment and the TOML file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mqtt_fixtures import WAIT_S, Probe, mosquitto_fixture  # noqa: F401 (fixture)
from test_daemon_resilience import _replace, _serve, _stop, _wait_log, _wait_online

from edge_slm.bundle import read_bundle
from edge_slm.daemon.settings import load_settings
from edge_slm.runtime.engine import default_bundle_path

pytest.importorskip("cryptography")
from firmware_tools.signing import keygen, sign_bytes  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TEXT = "turn off the kitchen lights"
START_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """(trusted, other, decoy): each a (private key, public key) pair."""
    base = tmp_path_factory.mktemp("keys")
    return keygen(base / "trusted"), keygen(base / "other"), keygen(base / "decoy")


@pytest.fixture(scope="module")
def variants(keys, tmp_path_factory):
    """The shipped int8 bundle unsigned, signed by the trusted key, signed by the other."""
    unsigned = default_bundle_path().read_bytes()
    return {"unsigned": unsigned, "signed": sign_bytes(unsigned, keys[0][0]),
            "other": sign_bytes(unsigned, keys[1][0])}


def test_trusted_key_from_flags_environment_and_file(tmp_path):
    s = load_settings({"trusted_key": [Path("a.pem"), Path("b.pem")]})
    assert s.trusted_keys == (Path("a.pem"), Path("b.pem"))
    s = load_settings(environ={"EDGE_SLM_TRUSTED_KEY": "x.pem,y.pem"})
    assert s.trusted_keys == (Path("x.pem"), Path("y.pem"))
    toml = tmp_path / "serve.toml"
    toml.write_text('trusted_key = ["keys/k.pem", "/abs/k2.pem"]\n')
    s = load_settings(config_file=toml)
    assert s.trusted_keys == (tmp_path / "keys/k.pem", Path("/abs/k2.pem"))
    assert load_settings().trusted_keys == ()
    toml.write_text("trusted_key = [1]\n")
    with pytest.raises(ValueError, match="trusted_key"):
        load_settings(config_file=toml)


@pytest.mark.parametrize("variant,message", [("unsigned", "not signed"),
                                             ("other", "bad signature")])
def test_start_refuses_a_bundle_no_trusted_key_signed(keys, variants, tmp_path, variant,
                                                      message):
    bundle = tmp_path / "served.slm"
    bundle.write_bytes(variants[variant])
    proc = subprocess.run(
        [sys.executable, "-m", "edge_slm", "serve", "--bundle", str(bundle),
         "--broker", "mqtt://127.0.0.1:1", "--trusted-key", str(keys[0][1])],
        capture_output=True, text=True, timeout=START_TIMEOUT_S,
        env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO))
    assert proc.returncode == 2, proc.stderr
    assert "edge-slm serve: error:" in proc.stderr and message in proc.stderr


def test_serve_accepts_a_signed_bundle_and_refuses_unsigned_reloads(
        keys, variants, mosquitto, tmp_path):
    served = tmp_path / "served.slm"
    served.write_bytes(variants["signed"])
    model_id = read_bundle(variants["signed"]).model_id
    site, log = "signed", tmp_path / "signed.log"
    probe = Probe(mosquitto, [f"edge-slm/{site}/status", f"edge-slm/{site}/intent"])
    # the second key is a decoy: any one of the trusted keys may have signed it
    proc = _serve(served, mosquitto, log, "--site-id", site, "--trusted-key", str(keys[2][1]),
                  "--trusted-key", str(keys[0][1]))
    try:
        assert _wait_online(probe, site, log)["model_id"] == model_id
        for variant, message in (("unsigned", "not signed"), ("other", "bad signature")):
            _replace(served, variants[variant])
            proc.send_signal(signal.SIGHUP)
            _wait_log(proc, log, f"reload refused, still serving {model_id}: " +
                      f"{served}: {message}")
            probe.drain()
            probe.publish(f"edge-slm/{site}/query", json.dumps({"id": variant, "text": TEXT}))
            reply = json.loads(probe.expect(f"edge-slm/{site}/intent").payload)
            assert reply["model_id"] == model_id and reply["id"] == variant
        _replace(served, variants["signed"])
        proc.send_signal(signal.SIGHUP)
        _wait_online(probe, site, log, timeout=WAIT_S * 3, model_id=model_id)
        assert "reloaded: serving" in log.read_text(errors="replace")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        _stop(proc)
        probe.close()


def test_a_bad_key_file_fails_at_start(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    proc = subprocess.run(
        [sys.executable, "-m", "edge_slm", "serve", "--broker", "mqtt://127.0.0.1:1",
         "--trusted-key", str(bad)], capture_output=True, text=True, timeout=START_TIMEOUT_S,
        env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO))
    assert proc.returncode == 2 and "not a readable PEM public key" in proc.stderr
