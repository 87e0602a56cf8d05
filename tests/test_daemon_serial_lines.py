"""`edge-slm serve --serial URL`: text lines on a serial port answered one JSON line each,
with the objects of `edge-slm parse --jsonl`; in process on a memory port pair, and as a
process on a socket:// port (a local TCP listener) that stops on SIGTERM."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_slm.cli.parse import serve_jsonl
from edge_slm.daemon.serial_lines import SerialLines
from edge_slm.runtime.engine import IntentEngine
from firmware_tools.serial_twin import memory_pair

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120.0
"""Longest wait for the daemon process to load the model and connect."""
WAIT_S = 10.0
TEXTS = ["turn off the kitchen lights", "set the bedroom temperature to 21 degrees"]


@pytest.fixture(scope="module")
def engine():
    return IntentEngine.load()


def _jsonl(engine, lines):
    """What `edge-slm parse --jsonl` answers for these input lines."""
    out = io.StringIO()
    serve_jsonl(engine, io.BytesIO(b"".join(lines)), out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _read_lines(read, count):
    """`count` JSON lines from a `read(n)` function (bytes, b"" on timeout)."""
    buf = b""
    while buf.count(b"\n") < count:
        data = read(4096)
        assert data, f"timed out after {buf!r}"
        buf += data
    return [json.loads(line) for line in buf.splitlines()]


def test_feed_answers_like_parse_jsonl(engine):
    lines = SerialLines(engine, port=None, max_line=64)
    sent = [TEXTS[0].encode() + b"\r\n", json.dumps({"text": TEXTS[1]}).encode() + b"\n",
            b"\n", b"\xff\xfe\n", b"{not json\n", b"x" * 100 + b"\n", b"   \n"]
    answers = []
    for chunk in sent:  # split mid-line: the answer comes with the LF
        answers += lines.feed(chunk[:3])
        answers += lines.feed(chunk[3:])
    assert len(answers) == len(sent) and lines.lines == len(sent)
    expected = _jsonl(engine, [json.dumps({"text": TEXTS[0]}).encode() + b"\n", sent[1],
                               b"\n", b"\xff\xfe\n", b"{not json\n"])
    assert answers[:5] == expected
    assert "intent" in answers[0] and "intent" in answers[1]
    assert answers[2] == {"error": "empty line", "line": 3}
    assert answers[3]["error"].startswith("not UTF-8") and answers[3]["line"] == 4
    assert answers[4]["error"].startswith("not JSON")
    assert answers[5] == {"error": "line too long (over 64 bytes)", "line": 6}
    assert answers[6] == {"error": "empty line", "line": 7}
    assert lines.feed(b"no newline yet") == []


def test_memory_port_round_trip_and_stop(engine):
    device, daemon_end = memory_pair()
    device.timeout = WAIT_S
    daemon_end.timeout = 0.05
    lines = SerialLines(engine, daemon_end)
    thread = threading.Thread(target=lines.run_forever, daemon=True)
    thread.start()
    try:
        device.write(b"".join(t.encode() + b"\n" for t in TEXTS) + b"\xc3\n")
        got = _read_lines(device.read, 3)
        queries = [json.dumps({"text": t}).encode() + b"\n" for t in TEXTS]
        assert got == _jsonl(engine, queries + [b"\xc3\n"])
    finally:
        lines.stop()
        thread.join(WAIT_S)
    assert not thread.is_alive()


def test_a_lone_surrogate_is_an_error_line_and_serving_goes_on(engine):
    """A JSON escape of half a UTF-16 pair is no Unicode text: it gets an error line, and the
    port keeps being served (it stopped `serve --serial` with UnicodeEncodeError)."""
    device, daemon_end = memory_pair()
    device.timeout = WAIT_S
    daemon_end.timeout = 0.05
    lines = SerialLines(engine, daemon_end)
    thread = threading.Thread(target=lines.run_forever, daemon=True)
    thread.start()
    try:
        device.write(b'{"text": "turn on the \\ud800 light"}\n'
                     b'{"text": "hi", "context": {"area": "\\udfff"}}\n'
                     + TEXTS[0].encode() + b"\n")
        got = _read_lines(device.read, 3)
        assert [a.get("line") for a in got[:2]] == [1, 2], got
        assert all("surrogate" in a["error"] for a in got[:2]), got
        assert got[2]["intent"] == "HassTurnOff"
        assert thread.is_alive()
    finally:
        lines.stop()
        thread.join(WAIT_S)


def test_reload_swaps_or_keeps_the_engine(engine):
    def broken():
        raise ValueError("bad bundle")

    lines = SerialLines(engine, port=None, reload=broken)
    assert not lines.reload_now() and lines.engine is engine
    lines.reload = IntentEngine.load
    lines.request_reload()
    assert lines.reload_now() and lines.engine is not engine
    assert not lines.reload_requested


def test_serve_serial_over_socket_until_sigterm(engine, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(START_TIMEOUT_S)
    port = listener.getsockname()[1]
    log = tmp_path / "serial.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_slm", "serve", "--serial",
             f"socket://127.0.0.1:{port}", "--baud", "9600"],
            stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(REPO)),
            cwd=str(REPO))
    try:
        conn, _ = listener.accept()
        conn.settimeout(START_TIMEOUT_S)
        with conn:
            # pyserial empties the input buffer once the port is open: bytes sent before
            # that are dropped (as on a UART), so wait for the daemon to say it is serving
            deadline = time.monotonic() + WAIT_S
            while "on serial socket://" not in log.read_text(errors="replace"):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            conn.sendall(TEXTS[0].encode() + b"\n\n")
            got = _read_lines(conn.recv, 2)
            assert got == _jsonl(engine, [json.dumps({"text": TEXTS[0]}).encode() + b"\n",
                                          b"\n"])
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        listener.close()


def test_serve_serial_bad_port_exits_2():
    proc = subprocess.run(
        [sys.executable, "-m", "edge_slm", "serve", "--serial", "nosuch://x"],
        capture_output=True, text=True, timeout=START_TIMEOUT_S,
        env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO))
    assert proc.returncode == 2 and "cannot open nosuch://x" in proc.stderr, proc.stderr
