"""One model, several sentence lengths: the merged signatures share their weights, compute
what the longest computes, a sentence runs at the shortest length that holds it, and the
golden check holds every length to account."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_quantizer")

from edge_slm.bundle import BundleError, read_bundle  # noqa: E402
from edge_slm.convert.export import float_tflite  # noqa: E402
from edge_slm.convert.quantize import dynamic  # noqa: E402
from edge_slm.convert.signatures import merge  # noqa: E402
from edge_slm.runtime.model import TFLiteModel  # noqa: E402

LENGTHS = (8, 16, 32)


@pytest.fixture(scope="module")
def student(tiny_student):
    return tiny_student


@pytest.fixture(scope="module")
def flats(student):
    return {n: float_tflite(student, n) for n in LENGTHS}


def _row(n_tokens, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.zeros(32, np.int32)
    ids[0] = 2
    ids[1:n_tokens] = rng.integers(4, 600, size=n_tokens - 1)
    return ids


def _constant_buffers(flat):
    """Per subgraph, the indices of the buffers of 1 KiB or more its tensors read."""
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    from edge_slm.convert.signatures import _data, _inline

    model = _inline(fbu.convert_bytearray_to_object(bytearray(flat)), flat)
    return [{t.buffer for t in g.tensors if len(_data(model.buffers[t.buffer])) >= 1024}
            for g in model.subgraphs]


@pytest.mark.parametrize("variant", ["float", "int8", "int4"])
def test_merged_lengths_share_weights_and_agree(flats, variant):
    per_length = {n: f if variant == "float" else dynamic(f, variant) for n, f in flats.items()}
    merged = merge(per_length)
    # every weight stored once: each length's graph reads the longest one's weight buffers
    # (all but its own slice of the position table)
    graphs = _constant_buffers(merged)
    assert len(graphs) == 3 and len(graphs[0]) >= 5
    for other in graphs[1:]:
        assert len(graphs[0] - other) <= 1, (len(graphs[0]), len(graphs[0] - other))
    model = TFLiteModel(merged)
    assert model.lengths == [8, 16, 32] and model.max_len == 32
    alone = TFLiteModel(per_length[32])
    for n_tokens in (3, 8, 9, 16, 30):
        ids = _row(n_tokens, seed=n_tokens)
        ref_i, ref_t, ref_f = alone.run(ids)
        for length in [m for m in LENGTHS if m >= n_tokens]:
            li, lt, lf = model.run(ids, length)
            assert lt.shape[0] == length
            # the mask makes padding count for nothing: the same logits up to rounding (and,
            # quantized, up to the activation scales, which see fewer padded rows)
            tol = 1e-4 if variant == "float" else 0.05 * max(1.0, np.abs(ref_i).max())
            assert np.abs(li - ref_i).max() <= tol, (variant, n_tokens, length)
            assert (lt[:n_tokens].argmax(-1) == ref_t[:n_tokens].argmax(-1)).mean() >= 0.8
            assert lf.argmax() == ref_f.argmax()


def test_a_row_runs_at_the_shortest_length_that_holds_it(flats):
    model = TFLiteModel(merge(flats))
    for n_tokens, length in ((1, 8), (8, 8), (9, 16), (16, 16), (17, 32), (32, 32)):
        _, lt, _ = model.run(_row(n_tokens))
        assert lt.shape[0] == length, (n_tokens, lt.shape)
    with pytest.raises(ValueError, match="cannot run at length 8"):
        model.run(_row(12), 8)
    with pytest.raises(ValueError, match="cannot run at length 10"):
        model.run(_row(4), 10)


def test_a_model_without_lengths_still_runs(flats):
    """A bundle converted before lengths existed: one `serve` signature, every row at 32."""
    model = TFLiteModel(flats[32])
    assert model.lengths == [32]
    _, lt, _ = model.run(_row(5))
    assert lt.shape[0] == 32


def test_merge_refuses_what_it_cannot_merge(flats):
    with pytest.raises(ValueError, match="no models"):
        merge({})
    two = merge({16: flats[16], 32: flats[32]})
    with pytest.raises(ValueError, match="one subgraph"):
        merge({32: two, 8: flats[8]})


def test_the_golden_check_holds_every_length(tmp_path):
    """The shipped int8 bundle with its 8-token signature swapped for one whose weights are
    shuffled: the longest signature still reproduces the golden outputs, the load is refused
    and the message names the length that does not."""
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    from edge_slm.bundle import write_bundle
    from edge_slm.convert.signatures import _inline
    from edge_slm.runtime.engine import IntentEngine, default_bundle_path

    bundle = read_bundle(default_bundle_path("int8"))
    flat = bundle.model
    model = _inline(fbu.convert_bytearray_to_object(bytearray(flat)), flat)
    keys = {s.signatureKey.decode(): s.subgraphIndex for s in model.signatureDefs}
    assert {"serve", "serve_8"} <= set(keys), keys
    graph = model.subgraphs[keys["serve_8"]]
    others = {t.buffer for g, sg in enumerate(model.subgraphs) if g != keys["serve_8"]
              for t in sg.tensors}
    rng = np.random.default_rng(0)
    for t in graph.tensors:  # give the 8-token graph its own, shuffled copy of each weight
        buf = model.buffers[t.buffer]
        if t.buffer in others and buf.data is not None and len(buf.data) > 4000:
            data = np.asarray(buf.data, np.uint8).copy()
            rng.shuffle(data)
            copy = type(buf)()
            copy.data = data
            model.buffers.append(copy)
            t.buffer = len(model.buffers) - 1
    tampered = bytes(fbu.convert_object_to_bytearray(model))
    members = {k: v for k, v in bundle.members.items() if k != "manifest.json"}
    members["model.tflite"] = tampered
    path = write_bundle(tmp_path / "tampered.slm", members, bundle.manifest)
    with pytest.raises(BundleError, match="at 8 tokens"):
        IntentEngine.load(path)
    # the same bundle, checked by no golden case, does load: the check is what refuses it
    IntentEngine.load(path, check_golden=False)
