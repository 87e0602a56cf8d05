"""Keras -> TFLite: the GATHER rewrite keeps outputs and lets the quantizer reach the
embedding table; quantized variants stay close to float."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_quantizer")

from edge_slm.convert.export import float_tflite, op_names  # noqa: E402
from edge_slm.convert.quantize import dynamic  # noqa: E402
from edge_slm.runtime.model import TFLiteModel  # noqa: E402


@pytest.fixture(scope="module")
def student(tiny_student):
    return tiny_student


@pytest.fixture(scope="module")
def flat(student):
    return float_tflite(student)


def _ids(n, vocab, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, vocab, size=(n, 32)).astype(np.int32)
    ids[:, 0] = 2
    for i in range(n):
        ids[i, rng.integers(3, 32):] = 0
    return ids


def test_float_tflite_matches_keras_and_has_no_gather(student, flat):
    ops = op_names(flat)
    assert "GATHER" not in ops and "EMBEDDING_LOOKUP" in ops
    model = TFLiteModel(flat)
    ids = _ids(16, 600)
    li, lt, lf = model.run_many(ids)
    ki, kt, kf = (np.asarray(x) for x in student(ids))
    assert np.allclose(li, ki, atol=1e-4) and np.allclose(lt, kt, atol=1e-4)
    assert lf.shape == kf.shape and np.allclose(lf, kf, atol=1e-4)


def test_dynamic_quantization_covers_the_embedding_table(flat):
    from ai_edge_litert.interpreter import Interpreter

    for variant, ratio in (("int8", 0.45), ("int4", 0.3)):
        q = dynamic(flat, variant)
        assert len(q) < ratio * len(flat), (variant, len(q), len(flat))
        it = Interpreter(model_content=q)
        # the (600, 64) token table is stored as integers now, not float
        tables = [d for d in it.get_tensor_details()
                  if list(d["shape"]) == [600, 64]]
        assert tables and all(d["dtype"] == np.int8 for d in tables), tables


def test_quantized_outputs_stay_close(student, flat):
    ids = _ids(64, 600, seed=1)
    ref, _, _ = TFLiteModel(flat).run_many(ids)
    for variant in ("int8", "int4"):
        li, _, _ = TFLiteModel(dynamic(flat, variant)).run_many(ids)
        scale = np.abs(ref).max()
        assert np.abs(li - ref).max() < 0.5 * scale + 1e-3, variant


def test_unknown_variant_is_refused(flat):
    with pytest.raises(ValueError, match="unknown dynamic variant"):
        dynamic(flat, "int3")


def test_int4_blocks_where_the_width_allows(flat):
    from edge_slm.convert.quantize import unblockable_scopes

    # the second layer is 96 wide (3 heads of 32; an FFN of 96): its attention output and FFN
    # down projections take 96 inputs, which blocks of 64 do not divide; everything else is 64
    assert unblockable_scopes(flat, 32) == []
    scopes = unblockable_scopes(flat, 64)
    assert len(scopes) == 2 and all("block1" in s and s.endswith(";") for s in scopes), scopes
    channels = dynamic(flat, "int4")
    for block in (32, 64):
        q = dynamic(flat, "int4", block)
        assert q != channels and len(q) < 0.3 * len(flat)
        ids = _ids(64, 600, seed=2)
        ref, _, _ = TFLiteModel(flat).run_many(ids)
        li, _, _ = TFLiteModel(q).run_many(ids)
        assert np.abs(li - ref).max() < 0.5 * np.abs(ref).max() + 1e-3, block


@pytest.mark.parametrize("variant, block", [("int4", 48), ("int8", 32)])
def test_blocks_only_for_int4_and_of_the_quantizers_sizes(flat, variant, block):
    with pytest.raises(ValueError, match="int4 takes one of 0, 32, 64, 128, 256"):
        dynamic(flat, variant, block)
