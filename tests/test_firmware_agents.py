"""`firmware-tools serial-agent` and `ota-agent` as an attacker meets them: they install only
bundles signed by a trusted key unless told `--insecure-unsigned`; a bundle with two labels
swapped (same model id, golden outputs intact) reaches no slot."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mqtt_fixtures import mosquitto_fixture  # noqa: F401 (fixture "mosquitto")

from edge_slm.bundle import MANIFEST, read_bundle, write_bundle
from edge_slm.errors import ConfigError
from edge_slm.runtime.engine import IntentEngine, default_bundle_path
from firmware_tools.agent import Agent
from firmware_tools.slots import SlotStore

pytest.importorskip("cryptography")
from firmware_tools import signing  # noqa: E402

BUNDLE = default_bundle_path("int4")
CLI_TIMEOUT_S = 120


def _relabelled(data: bytes) -> bytes:
    """The bundle with HassTurnOn and HassTurnOff swapped in labels.json and the manifest's
    checksums redone: the same model id, golden cases that still pass."""
    b = read_bundle(data)
    labels = b.json("labels.json")
    intents = labels["intents"]
    i, j = intents.index("HassTurnOn"), intents.index("HassTurnOff")
    intents[i], intents[j] = intents[j], intents[i]
    members = {k: v for k, v in b.members.items() if k != MANIFEST}
    members["labels.json"] = json.dumps(labels).encode()
    manifest = {k: v for k, v in b.manifest.items() if k != "members"}
    with tempfile.TemporaryDirectory() as d:
        return write_bundle(Path(d) / "x.slm", members, manifest).read_bytes()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return signing.keygen(tmp_path_factory.mktemp("keys"))


def _cli(*args, timeout=CLI_TIMEOUT_S):
    return subprocess.run([sys.executable, "-m", "firmware_tools", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def _ota_agent(broker, site, slots, *options):
    return subprocess.Popen([sys.executable, "-m", "firmware_tools", "ota-agent", "--broker",
                             broker.url, "--site-id", site, "--slots", str(slots), "--once",
                             *map(str, options)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ota(broker, site, bundle):
    return _cli("ota", bundle, "--broker", broker.url, "--site-id", site, "--no-progress")


def test_the_relabelled_bundle_passes_every_check_of_the_bundle_itself(tmp_path):
    bad = tmp_path / "relabelled.slm"
    bad.write_bytes(_relabelled(BUNDLE.read_bytes()))
    engine = IntentEngine.load(bad)  # format, checksums and golden outputs: all fine
    assert engine.bundle.model_id == read_bundle(BUNDLE).model_id
    assert engine.parse("turn on the kitchen light").top_intent == "HassTurnOff"


@pytest.mark.parametrize("command,options", [
    ("serial-agent", ["--port", "loop://"]),
    ("ota-agent", ["--broker", "mqtt://127.0.0.1:1", "--site-id", "x"])])
def test_the_agents_need_a_trusted_key_or_an_explicit_insecure_unsigned(
        tmp_path, command, options, keys):
    try:
        r = _cli(command, *options, "--slots", tmp_path / "slots", "--once", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} started without a trusted key (and waited for a bundle)")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--trusted-key" in r.stderr and "--insecure-unsigned" in r.stderr, r.stderr
    r = _cli(command, *options, "--slots", tmp_path / "slots", "--once",
             "--trusted-key", keys[1], "--insecure-unsigned", timeout=30)
    assert r.returncode == 2 and "--insecure-unsigned" in r.stderr, r.stderr
    with pytest.raises(ConfigError, match="insecure_unsigned"):
        Agent(SlotStore(tmp_path / "lib"))


def test_an_unsigned_relabelled_bundle_reaches_no_slot(mosquitto, tmp_path, keys):
    key, pub = keys
    bad, good = tmp_path / "relabelled.slm", tmp_path / "signed.slm"
    bad.write_bytes(_relabelled(BUNDLE.read_bytes()))
    good.write_bytes(signing.sign_bytes(BUNDLE.read_bytes(), key))
    slots = tmp_path / "slots"
    agent = _ota_agent(mosquitto, "sig1", slots, "--trusted-key", pub)
    try:
        r = _ota(mosquitto, "sig1", bad)
        assert r.returncode == 2 and "not signed" in r.stderr, r.stderr
        assert agent.wait(timeout=60) == 2
        assert SlotStore(slots).active() is None and not list(slots.glob("?.slm"))
    finally:
        if agent.poll() is None:
            agent.kill()
    agent = _ota_agent(mosquitto, "sig1", slots, "--trusted-key", pub)
    try:
        r = _ota(mosquitto, "sig1", good)
        assert r.returncode == 0, r.stderr
        assert agent.wait(timeout=60) == 0
        assert SlotStore(slots).active_path().read_bytes() == good.read_bytes()
    finally:
        if agent.poll() is None:
            agent.kill()


# -- rollback: a signed, increasing bundle version ---------------------------------------------

def _sign(tmp_path, key, data, version, name):
    path = tmp_path / name
    path.write_bytes(data)
    r = _cli("sign", path, "--key", key, "--bundle-version", version)
    assert r.returncode == 0 and f"bundle version {version}" in r.stdout, r.stderr
    return path.read_bytes()


def _flash_sim(agent, data):
    from firmware_tools.flash import FlashConfig, FlashSender
    from firmware_tools.serial_twin import simulate

    sender = FlashSender(data, FlashConfig(baud=None))
    simulate(sender, agent, baud=None)
    return sender


def test_an_older_signed_bundle_is_refused_unless_downgrades_are_allowed(tmp_path, keys):
    from bundle_edits import rezip

    from firmware_tools import serial_protocol as sp

    key, pub = keys
    int4, int8 = BUNDLE.read_bytes(), default_bundle_path("int8").read_bytes()
    v1 = _sign(tmp_path, key, int4, 1, "v1.slm")  # the old release, still validly signed
    v2 = _sign(tmp_path, key, int8, 2, "v2.slm")
    v2_again = _sign(tmp_path, key, int4, 2, "v2-int4.slm")
    r = _cli("verify", tmp_path / "v2.slm", "--trusted-key", pub)
    assert r.returncode == 0 and "bundle version 2" in r.stdout, r.stderr

    def bump(m):  # the version is covered by the signature
        manifest = json.loads(m["manifest.json"])
        manifest["bundle_version"] = 99
        m["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(signing.SignatureError, match="bad signature"):
        signing.verify(rezip(v1, bump), [pub])

    store = SlotStore(tmp_path / "slots")
    agent = Agent(store, public_keys=[signing.load_public(pub)])
    assert _flash_sim(agent, v2).result is not None
    for older in (v1, v2_again):
        sender = _flash_sim(agent, older)
        assert isinstance(sender.error, sp.DeviceError), sender.error
        assert sender.error.code == sp.STATUS_DOWNGRADE and "not newer" in str(sender.error)
        assert store.path(store.active()).read_bytes() == v2
    lenient = Agent(store, public_keys=[signing.load_public(pub)], allow_downgrade=True)
    assert _flash_sim(lenient, v1).result is not None
    assert store.path(store.active()).read_bytes() == v1
    assert _flash_sim(agent, v2_again).result is not None  # 2 > 1 again


def test_sign_keeps_a_bundles_version_and_otherwise_sets_a_new_one(tmp_path, keys):
    key, _ = keys
    signed = signing.sign_bytes(BUNDLE.read_bytes(), key)
    first = signing.bundle_version(read_bundle(signed))
    assert first >= 1_700_000_000  # the signing time, in seconds: later signings are newer
    resigned = signing.sign_bytes(signed, key)  # e.g. with another key: the same release
    assert signing.bundle_version(read_bundle(resigned)) == first
    assert signing.bundle_version(read_bundle(BUNDLE.read_bytes())) == 0  # never signed
    for bad in (0, -1, True, 2 ** 63):
        with pytest.raises(ValueError):
            signing.sign_bytes(BUNDLE.read_bytes(), key, version=bad)


# -- faults and mistakes: one line, never a traceback, never a dead agent ----------------------

def test_a_full_disk_is_answered_storage_and_the_agent_carries_on(mosquitto, tmp_path):
    """RLIMIT_FSIZE makes the agent's writes fail past 100 kB as on a full disk (EFBIG); the
    sender is told "could not store", the partial file is gone, and once there is room again
    the same agent installs the bundle."""
    limit = 100_000

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    slots = tmp_path / "slots"
    agent = subprocess.Popen(
        [sys.executable, "-m", "firmware_tools", "ota-agent", "--broker", mosquitto.url,
         "--site-id", "disk", "--slots", str(slots), "--insecure-unsigned"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=small_disk)
    try:
        r = _ota(mosquitto, "disk", BUNDLE)
        assert r.returncode == 2 and "could not store the bundle" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert agent.poll() is None, agent.stderr.read()  # still serving
        assert not list((slots / "incoming").iterdir())  # what it had taken is freed
        assert SlotStore(slots).active() is None
        resource.prlimit(agent.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))  # room again
        r = _ota(mosquitto, "disk", BUNDLE)
        assert r.returncode == 0, r.stderr
        assert SlotStore(slots).active_path().read_bytes() == BUNDLE.read_bytes()
        agent.send_signal(signal.SIGTERM)
        out, err = agent.communicate(timeout=30)
        assert agent.returncode == 0, err
        assert "could not store the bundle" in out and "installed and active" in out
    finally:
        if agent.poll() is None:
            agent.kill()


@pytest.mark.parametrize("command,options", [
    ("serial-agent", ["--port", "loop://"]),
    ("ota-agent", ["--broker", "mqtt://127.0.0.1:1", "--site-id", "x"])])
def test_a_slots_folder_that_cannot_be_written_is_one_line(tmp_path, command, options):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = _cli(command, *options, "--slots", blocker / "slots", "--once", "--insecure-unsigned",
             timeout=30)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"slots folder {blocker / 'slots'}: cannot write it" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def _ca_file(path: Path) -> Path:
    """A self-signed CA certificate (PEM) that signed nothing the broker has."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge-slm test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.mark.parametrize("command", ["ota", "ota-agent"])
def test_tls_failures_of_the_ota_commands_are_one_line(mosquitto, tmp_path, command):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    args = ([BUNDLE, "--no-progress"] if command == "ota" else
            ["--slots", tmp_path / "slots", "--once", "--insecure-unsigned"])
    broker = f"mqtts://127.0.0.1:{mosquitto.port}"  # a plain MQTT listener: no TLS there
    cases = [(["--tls-ca", tmp_path / "missing.pem"], f"--tls-ca {tmp_path / 'missing.pem'}"),
             (["--tls-ca", junk], "TLS"),
             (["--tls-ca", _ca_file(tmp_path / "ca.pem")], f"127.0.0.1:{mosquitto.port}")]
    for tls, message in cases:
        r = _cli(command, *args, "--broker", broker, "--site-id", "tls", *tls, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
