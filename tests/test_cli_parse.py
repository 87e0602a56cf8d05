"""`edge-slm parse`, `eval` and `models` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "edge_slm", *args], input=stdin,
                          capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def bundle(small_bundles):
    return str(small_bundles[0] / "en-int4.slm")


def test_parse_one_text(bundle):
    r = _cli("parse", "--bundle", bundle, "turn off the kitchen lights")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["text"] == "turn off the kitchen lights" and "intent" in out


def test_jsonl_keeps_order_and_count_and_reports_bad_lines(bundle):
    texts = [f"turn on light number {i}" for i in range(40)]
    lines = [json.dumps({"text": t}) for t in texts]
    lines[5] = ""
    lines[9] = "{not json"
    lines[13] = json.dumps({"text": 12})
    lines[17] = json.dumps(["text"])
    stdin = ("\n".join(lines) + "\n").encode() + b'{"text": "\xff\xfe"}\n'
    r = _cli("parse", "--jsonl", "--bundle", bundle, stdin=stdin)
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert len(out) == 41
    for i, o in enumerate(out[:40]):
        if i in (5, 9, 13, 17):
            assert "error" in o and o["line"] == i + 1, o
        else:
            assert o["text"] == texts[i]
    assert "error" in out[40] and "UTF-8" in out[40]["error"]


def test_eval_prints_the_metrics(bundle, small_run):
    r = _cli("eval", "--bundle", bundle, "--data", str(small_run[0] / "corpus.jsonl"),
             "--split", "heldout", "--limit", "200", "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["n"] == 200 and 0 < m["top1_acc"] <= 1 and 0 <= m["slot_f1"] <= 1
    assert "false_accept" in m


def test_a_broken_bundle_is_a_clear_error(tmp_path, bundle):
    bad = tmp_path / "bad.slm"
    data = bytearray(open(bundle, "rb").read())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    r = _cli("parse", "--bundle", str(bad), "turn on the light")
    assert r.returncode == 2
    assert b"error" in r.stderr and b"Traceback" not in r.stderr


HOME_YAML = """
floors:
  - name: First Floor
areas:
  - name: Kitchen
    floor: First Floor
  - name: Den
entities:
  - name: Reading Lamp
    domain: light
    area: Den
"""


def test_the_satellites_area_and_the_users_home(tmp_path):
    """The shipped model: --area and a line's context reach the engine; with --home the
    answers name only places of that home, in its spelling."""
    home = tmp_path / "home.yaml"
    home.write_text(HOME_YAML)
    r = _cli("parse", "--home", str(home), "--area", "kitchen", "turn off the lights")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    slots = {s["name"]: s for s in out["slots"]}
    assert out["intent"] == "HassTurnOff"
    assert slots["area"]["value"] == "Kitchen" and slots["area"]["start"] is None
    assert slots["domain"]["value"] == "light" and slots["domain"]["raw"] == ""
    lines = [{"text": "turn off the lights", "context": {"area": "Den"}},
             {"text": "turn off the lights"},
             {"text": "turn on the lights on the first floor"},
             {"text": "switch off the lava lamp"},  # only the shipped example home has one
             {"text": "turn off the lights", "context": {"area": 3}},
             {"text": "turn off the lights", "context": "den"}]
    stdin = "\n".join(json.dumps(x) for x in lines) + "\n"
    r = _cli("parse", "--jsonl", "--home", str(home), "--area", "Kitchen", stdin=stdin.encode())
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.decode().splitlines()]
    values = [{s["name"]: s["value"] for s in o.get("slots", [])} for o in out]
    assert values[0]["area"] == "Den" and values[1]["area"] == "Kitchen"
    assert values[2].get("floor") == "First Floor" and "area" not in values[2]
    assert "name" not in values[3]
    assert "error" in out[4] and "error" in out[5]


def test_an_empty_area_is_refused():
    r = _cli("parse", "--area", " ", "turn on the lights")
    assert r.returncode == 2 and b"--area" in r.stderr


def test_jsonl_answers_a_lone_surrogate_with_an_error_and_goes_on():
    """A lone UTF-16 surrogate (a JSON escape of half a pair) truncated the output: stdout
    could not encode it. It is one error line now, and the lines after it are answered."""
    stdin = (b'{"text": "turn off the lights"}\n{"text": "turn on \\ud800 lights"}\n'
             b'{"text": "turn off the kitchen lights"}\n')
    r = _cli("parse", "--jsonl", stdin=stdin)
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert len(out) == 3 and "intent" in out[0] and "intent" in out[2], out
    assert out[1]["line"] == 2 and "surrogate" in out[1]["error"]
