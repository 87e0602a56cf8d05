"""The TensorFlow Lite Micro export compiles with a C++ compiler and holds the model's bytes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from edge_slm.bundle import read_bundle
from edge_slm.runtime.engine import default_bundle_path
from firmware_tools.carray import TFLM_RESOLVER, export_c

CXX = shutil.which("g++") or shutil.which("c++")

MAIN = r"""
#include <cstdio>
#include "edge_slm_model_data.h"
#include "edge_slm_tables.h"
int main(int argc, char** argv) {
  std::FILE* f = std::fopen(argv[1], "wb");
  std::fwrite(g_edge_slm_model_data, 1, g_edge_slm_model_data_len, f);
  std::fclose(f);
  std::printf("%u %u %u %s %s %.6f %.6f %u %d %u %llx\n", g_edge_slm_vocab_len,
              g_edge_slm_intents_len, g_edge_slm_tags_len, g_edge_slm_vocab[4],
              g_edge_slm_intents[1], g_edge_slm_temperature, g_edge_slm_threshold,
              kEdgeSlmMaxLen, (int)(((unsigned long)g_edge_slm_model_data) % 16),
              g_edge_slm_frames_len, g_edge_slm_intent_frames[1]);
  return 0;
}
"""


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_export_compiles_and_equals_the_model(tmp_path):
    bundle = read_bundle(default_bundle_path("int4"))
    res = export_c(default_bundle_path("int4"), tmp_path / "src")
    (tmp_path / "src" / "main.cc").write_text(MAIN)
    exe = tmp_path / "check"
    cc = subprocess.run([CXX, "-std=c++17", "-O0", "-o", str(exe), "main.cc",
                         "edge_slm_model_data.cc", "edge_slm_tables.cc"],
                        cwd=tmp_path / "src", capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    out = subprocess.run([str(exe), str(tmp_path / "model.bin")], capture_output=True,
                         text=True, check=True).stdout.split()
    assert (tmp_path / "model.bin").read_bytes() == bundle.model
    vocab = json.loads(bundle.members["tokenizer.json"])["model"]["vocab"]
    labels = bundle.json("labels.json")
    cal = bundle.json("config.json")["calibration"]
    assert int(out[0]) == len(vocab) and int(out[1]) == len(labels["intents"])
    assert int(out[2]) == len(labels["tags"])
    assert out[3] == [w for w, i in vocab.items() if i == 4][0]
    assert out[4] == labels["intents"][1]
    assert float(out[5]) == pytest.approx(cal["temperature"], abs=1e-5)
    assert float(out[6]) == pytest.approx(cal["threshold"], abs=1e-5)
    assert int(out[7]) == 32 and out[8] == "0"  # 16-byte aligned
    assert int(out[9]) == len(labels["frames"])
    own = labels["intent_frames"].get(labels["intents"][1], [0]) or [0]
    assert int(out[10], 16) == sum(1 << f for f in own)
    ops_h = (tmp_path / "src" / "edge_slm_ops.h").read_text()
    for op in res.ops:
        if op in TFLM_RESOLVER:
            assert f"resolver.{TFLM_RESOLVER[op]}()" in ops_h
        else:
            assert f"NO TFLM KERNEL: {op}" in ops_h


def test_hybrid_bundles_and_missing_kernels_are_warned_about(tmp_path):
    res = export_c(default_bundle_path("int8"), tmp_path)
    assert any("hybrid" in w for w in res.warnings)
    # the shipped student uses GELU, which TFLM has no kernel for
    assert "GELU" in res.unsupported_ops and any("GELU" in w for w in res.warnings)


def test_command_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "firmware_tools", "export-c",
                        str(default_bundle_path("int8")), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "edge_slm_model_data.cc" in r.stdout and "warning" in r.stderr
    r = subprocess.run([sys.executable, "-m", "firmware_tools", "export-c",
                        str(default_bundle_path("int8")), "--out", str(tmp_path),
                        "--name", "bad-name"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "letters, digits" in r.stderr
