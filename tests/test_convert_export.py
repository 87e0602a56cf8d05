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
