"""`edge-slm status` prints what anyone could have left retained on the broker: control and
format characters (terminal escapes, bidirectional overrides) in it are shown escaped, never
sent to the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mqtt_fixtures import WAIT_S, Probe, mosquitto_fixture  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
HOSTILE = "\x1b[2J\x1b[31mPWNED\x07\u202eevil\r\n\x9b"
"""Clears the screen, turns it red, rings, reverses the text, rewrites the line, and a C1
escape."""


def _printable(text: str) -> bool:
    """No control or format character (U+202E, say), not even a line end."""
    return text.isprintable()


def test_retained_control_characters_are_escaped(mosquitto):
    from edge_slm.cli.status import collect, format_report

    status = json.dumps({"state": "online", "model_id": HOSTILE, "version": HOSTILE})
    sites = collect({"edge-slm/evil/status": status.encode(),
                     f"edge-slm/x{HOSTILE[:5]}/status": status.encode(),
                     "edge-slm/evil/telemetry": b'{"mode": "\\u001b[2J"}'})
    lines = format_report(sites, now=0.0)
    assert lines and all(_printable(line) for line in lines), lines
    assert any("\\x1b[2J\\x1b[31mPWNED\\x07\\u202eevil\\r\\n\\x9b" in line for line in lines)

    publisher = Probe(mosquitto, ["unused/topic"])
    try:
        info = publisher.client.publish("edge-slm/evil/status", status, qos=1, retain=True)
        info.wait_for_publish(WAIT_S)
        out = subprocess.run(
            [sys.executable, "-m", "edge_slm", "status", "--broker", mosquitto.url,
             "--site-id", "evil"], capture_output=True, timeout=60, cwd=str(REPO),
            env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert out.returncode == 0, out.stderr
        text = out.stdout.decode("utf-8")
        assert "evil: online, model \\x1b[2J" in text, text
        assert all(_printable(line) for line in text.split("\n")), text
    finally:
        publisher.client.publish("edge-slm/evil/status", b"", qos=1,
                                 retain=True).wait_for_publish(WAIT_S)
        publisher.close()
