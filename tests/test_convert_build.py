"""`edge-slm convert`: bundles, the report, and a gate that refuses a broken variant."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from edge_slm.bundle import read_bundle  # noqa: E402
from edge_slm.convert.build import (ConvertConfig, gate_variant, judge, limits,  # noqa: E402
                                    load_eval_sets)
from edge_slm.runtime.engine import default_bundle_path  # noqa: E402


def test_convert_writes_gated_bundles_and_a_report(small_bundles):
    out, report = small_bundles
    for q in ("float", "int8", "int4"):
        assert report["variants"][q]["status"] == "ok"
        b = read_bundle(out / f"en-{q}.slm")
        assert b.quantization == q
    sizes = {q: (out / f"en-{q}.slm").stat().st_size for q in ("float", "int8", "int4")}
    assert sizes["int4"] < sizes["int8"] < sizes["float"]
    for q in ("int8", "int4"):
        m = report["variants"][q]["metrics"]
        # The small profile's model is 64 wide and trained for minutes: many of its answers
        # are near ties, which int4 rounding may flip; a broken conversion agrees on ~1/43.
        assert m["agreement_with_float"] >= 0.85
        assert m["heldout"]["top1_acc"] > 0.3  # far above chance (43 classes)
        assert "EMBEDDING_LOOKUP" in m["ops"] and "GATHER" not in m["ops"]
    assert (out / "report.md").read_text().startswith("| variant |")
    assert json.loads((out / "report.json").read_text())["variants"].keys() == \
        report["variants"].keys()
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_bundles_carry_the_whole_training_config(small_run, small_bundles):
    # the model can be trained again from a bundle: its config travels whole, not as a hash
    from edge_slm.bundle import sha256
    from edge_slm.model.pipeline import TrainConfig

    run_cfg = json.loads((small_run[0] / "train_config.json").read_text())
    prov = read_bundle(small_bundles[0] / "en-int4.slm").manifest["provenance"]
    assert prov["train_config"] == run_cfg
    assert prov["train_config_sha256"] == sha256(json.dumps(run_cfg, sort_keys=True).encode())
    assert TrainConfig.from_dict(prov["train_config"]).distill.epochs == \
        run_cfg["distill"]["epochs"]


def _scramble(flat: bytes) -> bytes:
    """The same graph with every large float weight shuffled: runs fine, means nothing (the
    weights every length's signature shares, once each, so that the lengths still agree)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    model = fbu.convert_bytearray_to_object(bytearray(flat))
    rng = np.random.default_rng(0)
    users: dict = {}
    for g, graph in enumerate(model.subgraphs):
        for t in graph.tensors:
            if t.type == schema.TensorType.FLOAT32:
                users.setdefault(t.buffer, set()).add(g)
    for index, graphs in users.items():
        buf = model.buffers[index]
        if len(graphs) == len(model.subgraphs) and buf.data is not None \
                and len(buf.data) > 4000:
            w = np.frombuffer(bytes(buf.data), np.float32).copy()
            rng.shuffle(w)
            buf.data = np.frombuffer(w.tobytes(), np.uint8)
    return bytes(fbu.convert_object_to_bytearray(model))


def test_gate_refuses_a_broken_variant(small_run, small_bundles):
    out, _ = small_bundles
    float_bundle = read_bundle(out / "en-float.slm")
    common = {k: v for k, v in float_bundle.members.items()
              if k not in ("manifest.json", "model.tflite")}
    sets = load_eval_sets(small_run[0], 300, None)
    config = ConvertConfig(latency_runs=20)
    ref, _, top = gate_variant("en", "float", float_bundle.model, common, {}, sets, config)
    assert judge(ref, ref, 1.0) == []
    broken, blob, _ = gate_variant("en", "int8", _scramble(float_bundle.model), common, {},
                                   sets, config, top)
    reasons = judge(ref, broken, 1.0)
    assert reasons and "points below float" in reasons[0], (ref["heldout"], broken["heldout"])
    assert broken["agreement_with_float"] < 0.5
    # the manifest of what was measured records those very numbers
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["metrics"]["heldout"] == broken["heldout"]


def test_limits_refuse_a_bundle_too_large_or_too_ready_to_answer_chat(small_bundles):
    _, report = small_bundles
    m = report["variants"]["int4"]["metrics"]
    assert limits("int4", m, ConvertConfig(max_false_accept=1.0)) == []
    too_big = limits("int4", m, ConvertConfig(max_false_accept=1.0,
                                              max_bundle_bytes={"int4": m["bundle_bytes"] - 1}))
    assert len(too_big) == 1 and "above the int4 limit" in too_big[0]
    # a variant the limits do not name has none
    assert limits("float", m, ConvertConfig(max_false_accept=1.0,
                                            max_bundle_bytes={"int4": 1})) == []
    chatty = dict(m, oos=dict(m["oos"], false_accept=0.02),
                  oos_home=dict(m["oos_home"], false_accept=0.011))
    reasons = limits("int4", chatty, ConvertConfig(max_bundle_bytes={}))
    assert len(reasons) == 2
    assert reasons[0].startswith("out-of-scope false accepts 2.00% above the limit 1.00%")
    assert reasons[1].startswith("out-of-scope false accepts in the example home 1.10%")
    at_limit = dict(m, oos=dict(m["oos"], false_accept=0.01),
                    oos_home=dict(m["oos_home"], false_accept=0.0))
    assert limits("int4", at_limit, ConvertConfig(max_bundle_bytes={})) == []


@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_shipped_bundles_keep_the_limits_they_were_gated_by(quant):
    manifest = read_bundle(default_bundle_path(quant)).manifest
    config = ConvertConfig(**manifest["provenance"]["convert_config"])
    assert config.max_bundle_bytes[quant] == {"int8": 1_600_000, "int4": 1_000_000}[quant]
    size = default_bundle_path(quant).stat().st_size
    assert limits(quant, dict(manifest["metrics"], bundle_bytes=size), config) == []


def test_limits_judge_what_ships_not_the_float_reference(small_run, tmp_path):
    from edge_slm.convert.build import convert

    config = ConvertConfig(quants=["int8"], eval_sentences=100, latency_runs=10, margin=100.0,
                           max_false_accept=1.0, max_bundle_bytes={"float": 1, "int8": 10**8})
    report = convert(small_run[0] / "model", tmp_path, config, log=lambda m: None,
                     progress=False)
    assert report["variants"]["float"]["status"] == "reference"  # over its limit, not shipped
    assert report["refused"] == [] and (tmp_path / "en-int8.slm").exists()
