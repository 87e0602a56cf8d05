"""A bundle's model quantized again (`edge-slm convert --bundle`): its int8 weights back to
float compute what the int8 model computes, the variants made from them are gated on the
run's held-out sets and carry the source's calibration, and what cannot be done well is
refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_quantizer")

from edge_slm.bundle import read_bundle  # noqa: E402
from edge_slm.convert.build import ConvertConfig, convert_bundle  # noqa: E402
from edge_slm.convert.requantize import dequantized_lengths  # noqa: E402
from edge_slm.errors import ConfigError  # noqa: E402
from edge_slm.runtime.model import TFLiteModel  # noqa: E402


def _ids(n, vocab, length, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, vocab, size=(n, length)).astype(np.int32)
    ids[:, 0] = 2
    for i in range(n):
        ids[i, rng.integers(3, length):] = 0
    return ids


def test_int8_weights_back_to_float_compute_what_int8_computes(small_bundles):
    out, _ = small_bundles
    source = read_bundle(out / "en-int8.slm")
    int8 = TFLiteModel(source.model)
    per_length = dequantized_lengths(source.model, "int8")
    # one model per signature of the source, the longest among them
    assert max(per_length) == int8.max_len and len(per_length) >= 2
    for length, flat in per_length.items():
        model = TFLiteModel(flat)
        assert model.max_len == length
        ids = _ids(32, 300, length)
        li, _, _ = model.run_many(ids)
        qi, _, _ = int8.run_many(np.pad(ids, ((0, 0), (0, int8.max_len - length))))
        # int8's kernels also round the activations: close, not equal
        assert np.abs(li - qi).max() < 0.05 * np.abs(qi).max() + 1e-3, length
        assert (li.argmax(-1) == qi.argmax(-1)).mean() >= 0.9


def test_a_bundle_quantized_again_is_gated_and_keeps_the_sources_calibration(
        small_run, small_bundles, tmp_path):
    out, _ = small_bundles
    source = read_bundle(out / "en-int8.slm")
    config = ConvertConfig(quants=["int4"], int4_block=32, eval_sentences=300,
                           latency_runs=20, margin=100.0, max_false_accept=1.0)
    report = convert_bundle(out / "en-int8.slm", tmp_path, config, small_run[0],
                            log=lambda m: None, progress=False)
    assert report["variants"]["int4"]["status"] == "ok", report["variants"]["int4"]
    made = read_bundle(tmp_path / "en-int4.slm")
    assert made.quantization == "int4"
    prov = made.manifest["provenance"]
    assert prov["requantized_from"]["model_id"] == source.model_id
    assert prov["convert_config"]["int4_block"] == 32
    assert prov["corpus_config"] == source.manifest["provenance"]["corpus_config"]
    for member in ("config.json", "tokenizer.json", "labels.json", "values.json", "home.json"):
        assert made.members[member] == source.members[member], member
    # the reference is the source's own model: it scores what the source's manifest says
    ref = report["variants"]["float"]["metrics"]["heldout"]
    assert ref["top1_acc"] == pytest.approx(source.manifest["metrics"]["heldout"]["top1_acc"],
                                            abs=0.02)
    assert report["variants"]["int4"]["metrics"]["agreement_with_float"] >= 0.85
    assert json.loads((tmp_path / "report.json").read_text())["model"].endswith(
        "requantized)")


def test_what_cannot_be_quantized_again_well_is_refused(small_run, small_bundles, tmp_path):
    out, _ = small_bundles
    int4 = read_bundle(out / "en-int4.slm")
    with pytest.raises(ConfigError, match="int4 bundle cannot be quantized again"):
        dequantized_lengths(int4.model, "int4")
    with pytest.raises(ConfigError, match="not a TFLite model"):
        dequantized_lengths(b"\x00" * 64, "int8")
    config = ConvertConfig(quants=["int4"], latency_runs=20)
    with pytest.raises(ConfigError, match="only to int8 or int4"):
        convert_bundle(out / "en-int8.slm", tmp_path, ConvertConfig(quants=["int8-full"]),
                       small_run[0])
    with pytest.raises(ConfigError, match="would overwrite"):
        convert_bundle(out / "en-int8.slm", out, ConvertConfig(quants=["int8"]), small_run[0])
    other = tmp_path / "other-run"
    other.mkdir()
    train_cfg = json.loads((small_run[0] / "train_config.json").read_text())
    train_cfg["corpus"]["seed"] = train_cfg["corpus"].get("seed", 1) + 1
    (other / "train_config.json").write_text(json.dumps(train_cfg))
    with pytest.raises(ConfigError, match="not the one .* was measured on"):
        convert_bundle(out / "en-int8.slm", tmp_path / "o", config, other)
