"""Broker passwords are never printed: not in reprs of the settings that hold them, not in
error messages about a broker URL, and not in what `edge-slm --debug serve` and `status` write
while a real mosquitto (with a password file) refuses or accepts them."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mqtt_fixtures import MOSQUITTO, Mosquitto

from edge_slm.daemon import DaemonConfig, parse_broker_url
from edge_slm.daemon.connection import MqttConnection
from edge_slm.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-Pa55"
"""The right password (what the broker's password file holds)."""
WRONG = "wr0ng-Pa55"
"""A wrong one."""
START_TIMEOUT_S = 120.0


@pytest.mark.parametrize("url, shown", [
    (f"mqtt://edge:{SECRET}@hub:1883", "mqtt://edge:***@hub:1883"),
    (f"mqtts://edge:{SECRET}@hub", "mqtts://edge:***@hub"),
    ("mqtt://edge@hub", "mqtt://edge@hub"),
    ("mqtt://hub:1883", "mqtt://hub:1883"),
    (f"mqtt://edge:{SECRET}/x@hub", "mqtt://edge:***@hub"),  # a / inside the password
    (f"mqtt://edge:{SECRET}@x@hub", "mqtt://edge:***@hub"),  # an @ inside it
    (f"see mqtt://a:{SECRET}@h and mqtts://b:{WRONG}@k",
     "see mqtt://a:***@h and mqtts://b:***@k"),
])
def test_redact_url(url, shown):
    from edge_slm.daemon.redact import redact, redact_url

    assert redact_url(url) == shown
    assert SECRET not in redact(url) and WRONG not in redact(url)


def test_the_settings_never_show_the_password():
    config = DaemonConfig(broker=f"mqtt://edge:{SECRET}@hub:1883")
    conn = config.connection()
    assert conn.password == SECRET and config.address.password == SECRET  # still usable
    for obj in (config, conn, config.address,
                MqttConnection.from_url(f"mqtts://edge:{SECRET}@hub")):
        assert SECRET not in repr(obj) and SECRET not in str(obj), repr(obj)
    assert "mqtt://edge:***@hub:1883" in repr(config)


@pytest.mark.parametrize("url", [
    f"mqtt://edge:{SECRET}@hub:99999", f"mqtt://edge:{SECRET}@hub/path",
    f"ftp://edge:{SECRET}@hub", f"mqtt://edge:{SECRET}@", f"mqtt://edge:{SECRET}@[::1",
    f"mqtt://edge:{SECRET}@hub?q=1",
])
def test_errors_about_a_broker_url_never_show_the_password(url):
    with pytest.raises(ConfigError) as err:
        parse_broker_url(url)
    assert SECRET not in str(err.value) and "edge" in str(err.value)


def test_the_log_filter_hides_a_password_logged_anyway(caplog):
    """A password parsed from a URL is hidden from every log record, even one that prints it
    by itself (say, a library's debug line)."""
    from edge_slm.daemon.redact import RedactingFilter

    parse_broker_url(f"mqtt://edge:{SECRET}@hub")
    logger = logging.getLogger("edge_slm.test.redact")
    caplog.handler.addFilter(RedactingFilter())
    logger.warning("user %s password %s", "edge", SECRET)
    logger.warning(f"connecting with {SECRET}")
    assert SECRET not in caplog.text and caplog.text.count("***") == 2


# -- the commands, against a broker with a password file ---------------------------------------


def _run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_slm", *argv], capture_output=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          cwd=str(REPO))


def _serve_until(broker: Mosquitto, password: str, marker: str, log: Path) -> str:
    """`edge-slm --debug serve` with `password` until its output says `marker`; then SIGTERM.
    Everything it wrote (stdout and stderr)."""
    url = f"mqtt://edge:{password}@127.0.0.1:{broker.port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_slm", "--debug", "serve", "--broker", url,
             "--site-id", "secret"], stdout=out, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO))
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while marker not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            try:
                proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    return log.read_text(errors="replace")


def test_debug_output_never_shows_the_password(tmp_path):
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    broker = Mosquitto(tmp_path / "broker", users={"edge": SECRET}).start()
    try:
        refused = _serve_until(broker, WRONG, "retrying in", tmp_path / "wrong.log")
        assert "refused the connection" in refused  # it did try, and logged it
        accepted = _serve_until(broker, SECRET, "Received SUBACK", tmp_path / "right.log")
        assert "connected to" in accepted
        status = _run("--debug", "status", "--broker",
                      f"mqtt://edge:{WRONG}@127.0.0.1:{broker.port}", "--timeout", "5")
        assert status.returncode != 0
        bad_url = [_run(*debug, "serve", "--broker", f"mqtt://edge:{SECRET}@hub:99999")
                   for debug in ((), ("--debug",))]
        assert all(r.returncode != 0 and b"99999" in r.stderr for r in bad_url)
        for text in (refused, accepted, *(r.stdout.decode() + r.stderr.decode()
                                          for r in (status, *bad_url))):
            assert SECRET not in text and WRONG not in text, text[-3000:]
    finally:
        broker.stop()
