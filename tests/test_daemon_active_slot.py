"""`edge-slm serve --slots DIR` follows the A/B slots that firmware-tools' agents install
into: it serves the active slot's bundle and loads the new one as soon as another becomes
active, without a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mqtt_fixtures import WAIT_S, Probe, mosquitto_fixture  # noqa: F401 (fixture)
from test_daemon_resilience import _stop, _wait_online

from edge_slm.bundle import BundleError, read_bundle
from edge_slm.daemon.active_slot import ActiveSlotWatcher, active_bundle
from edge_slm.daemon.settings import load_settings
from edge_slm.runtime.engine import default_bundle_path
from firmware_tools.slots import SlotStore

REPO = Path(__file__).resolve().parent.parent
INT8, INT4 = default_bundle_path(), default_bundle_path("int4")


def test_the_watcher_sees_every_new_active_bundle(tmp_path):
    with pytest.raises(BundleError, match="no active slot"):
        active_bundle(tmp_path)
    store = SlotStore(tmp_path)
    seen = []
    watcher = ActiveSlotWatcher(tmp_path, lambda: seen.append(store.active()))
    assert not watcher.check()
    for data in (INT8, INT4, INT8):  # a, b, then a again (a new file in slot a)
        store.install(data.read_bytes(), read_bundle)
        assert watcher.check() and not watcher.check()
        assert active_bundle(tmp_path) == store.active_path()
    assert seen == ["a", "b", "a"]


def test_slots_is_a_setting_and_excludes_bundle(tmp_path):
    assert load_settings({"slots": Path("/var/lib/edge-slm/slots")}).slots == \
        Path("/var/lib/edge-slm/slots")
    assert load_settings(environ={"EDGE_SLM_SLOTS": "/s"}).slots == Path("/s")
    proc = subprocess.run(
        [sys.executable, "-m", "edge_slm", "serve", "--slots", str(tmp_path), "--broker",
         "mqtt://127.0.0.1:1"], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO), EDGE_SLM_BUNDLE=str(INT8)), cwd=str(REPO))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "EDGE_SLM_BUNDLE and --slots: give --bundle or --slots, not both" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "edge_slm", "serve", "--slots", str(tmp_path), "--broker",
         "mqtt://127.0.0.1:1"], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO))
    assert proc.returncode == 2 and "no active slot" in proc.stderr, proc.stderr


def test_serve_follows_the_active_slot(mosquitto, tmp_path):
    store = SlotStore(tmp_path / "slots")
    store.install(INT8.read_bytes(), read_bundle)
    old_id, new_id = read_bundle(INT8).model_id, read_bundle(INT4).model_id
    site, log = "follower", tmp_path / "serve.log"
    probe = Probe(mosquitto, [f"edge-slm/{site}/status", f"edge-slm/{site}/intent"])
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_slm", "serve", "--slots", str(store.root),
             "--broker", mosquitto.url, "--site-id", site], stdout=out,
            stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO))
    try:
        assert _wait_online(probe, site, log)["model_id"] == old_id
        store.install(INT4.read_bytes(), read_bundle)  # what an agent does: no signal sent
        _wait_online(probe, site, log, timeout=WAIT_S * 3, model_id=new_id)
        probe.publish(f"edge-slm/{site}/query", json.dumps({"id": "q", "text": "turn on the "
                                                            "kitchen light"}))
        assert json.loads(probe.expect(f"edge-slm/{site}/intent").payload)["model_id"] == new_id
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        _stop(proc)
        probe.close()
