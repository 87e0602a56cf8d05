"""Word evidence at run time: its features, its log-odds, its member, and the engine's use."""

from __future__ import annotations

import io

import numpy as np
import pytest

from edge_slm.bundle import BundleError, read_bundle
from edge_slm.runtime.engine import IntentEngine, default_bundle_path
from edge_slm.runtime.evidence import MAX_BUCKETS, MEMBER, EvidenceConfig, WordEvidence

from bundle_edits import rezip


def _evidence(weight: float = 0.5) -> WordEvidence:
    rng = np.random.default_rng(0)
    return WordEvidence(EvidenceConfig(vocab_size=10, buckets=16, weight=weight),
                        rng.normal(size=10).astype(np.float32),
                        rng.normal(size=16).astype(np.float32), bias=-0.25)


def test_features_are_the_pieces_and_the_hashed_pairs_with_both_ends():
    cols = WordEvidence.features([3, 5, 3], vocab_size=10, buckets=16)
    assert [c for c in cols if c < 10] == [3, 5]  # each distinct piece once
    pairs = [c - 10 for c in cols if c >= 10]
    # (start, 3), (3, 5), (5, 3), (3, end): four pairs, within the buckets
    assert 1 <= len(pairs) <= 4 and all(0 <= p < 16 for p in pairs)
    assert cols == sorted(set(cols))
    # pieces outside the vocabulary (a tampered input) are not features
    assert WordEvidence.features([3, 99, -1], 10, 16) == WordEvidence.features([3], 10, 16)


def test_it_reads_the_pieces_the_model_reads():
    ev = WordEvidence(EvidenceConfig(10, 16, 1.0, max_pieces=3), np.arange(10.0),
                      np.zeros(16), 0.0)
    assert ev.log_odds([1, 2, 3, 9, 9]) == ev.log_odds([1, 2, 3]) == 6.0
    assert WordEvidence.from_bytes(ev.to_bytes()).config.max_pieces == 3


def test_log_odds_is_the_bias_plus_the_weights_of_its_features():
    ev = _evidence()
    ids = [1, 4, 4, 7]
    cols = WordEvidence.features(ids, 10, 16)
    want = -0.25 + sum(ev.pieces[c] if c < 10 else ev.pairs[c - 10] for c in cols)
    assert ev.log_odds(ids) == pytest.approx(float(want), rel=1e-6)
    assert ev.shift(ids) == pytest.approx(0.5 * float(want), rel=1e-6)
    assert _evidence(weight=0.0).shift(ids) == 0.0


def test_the_member_round_trips_in_half_precision():
    ev = _evidence()
    back = WordEvidence.from_bytes(ev.to_bytes())
    assert back.config == ev.config
    assert back.bias == ev.bias
    np.testing.assert_allclose(back.pieces, ev.pieces, rtol=1e-3, atol=1e-3)
    assert back.log_odds([2, 3]) == pytest.approx(ev.log_odds([2, 3]), abs=1e-2)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # small as sent, large once unpacked
    return buf.getvalue()


@pytest.mark.parametrize("data", [
    b"not an npz",
    b"",
    _npz(pieces=np.zeros(10), pairs=np.zeros(16), bias=np.float64(0)),  # no config
    _npz(pieces=np.zeros(10), pairs=np.zeros(16), bias=np.float64(0), weight=np.float64(1),
         config=np.array([10, MAX_BUCKETS * 4, 0])),  # a table larger than any bundle's
    _npz(pieces=np.zeros(9), pairs=np.zeros(16), bias=np.float64(0), weight=np.float64(1),
         config=np.array([10, 16, 0])),  # shapes that disagree with the config
    _npz(pieces=np.zeros(10), pairs=np.zeros(16), bias=np.float64(np.nan),
         weight=np.float64(1), config=np.array([10, 16, 0])),
    _npz(pieces=np.full(10, np.inf), pairs=np.zeros(16), bias=np.float64(0),
         weight=np.float64(1), config=np.array([10, 16, 0])),  # weights that are no numbers
    _npz(pieces=np.zeros(10), pairs=np.zeros(16), bias=np.float64(0), weight=np.float64(1),
         config=np.array([10, 16, -1])),
    _npz(pieces=np.zeros(10), pairs=np.zeros(16), bias=np.float64(0), weight=np.float64(1),
         config=np.array([10, 16])),  # a config short of its fields
    _npz(pieces=np.zeros(10), pairs=np.zeros(1 << 19), bias=np.float64(0),
         weight=np.float64(1), config=np.array([10, 1 << 19, 0])),  # arrays past the limit
    _npz(pieces=np.array([object()], dtype=object), pairs=np.zeros(16), bias=np.float64(0),
         weight=np.float64(1), config=np.array([10, 16, 0])),  # a pickle is never read
])
def test_a_malformed_member_is_a_bundle_error(data):
    with pytest.raises(BundleError, match="evidence"):
        WordEvidence.from_bytes(data)


@pytest.fixture(scope="module")
def shipped():
    return IntentEngine.load()


def test_the_shipped_bundles_carry_evidence_that_moves_the_model_s_odds(shipped):
    assert shipped.evidence is not None and shipped.evidence.config.weight > 0
    ids, _ = shipped.tokens("which is the status of my vacuum")
    raw = shipped.model.run_tokens(ids)
    li, lt, lf = shipped.intent_logits(ids, raw)
    shift = shipped.evidence.shift(ids[1:])
    assert shift != 0
    # "no intent" lowered by T x shift; every other logit as the model gave it
    np.testing.assert_allclose(li[0], raw[0][0] - shipped.temperature * shift, rtol=1e-5)
    np.testing.assert_array_equal(li[1:], raw[0][1:])

    def odds(z):
        z = np.asarray(z, np.float64) / shipped.temperature
        return np.log(np.exp(z[1:]).sum()) - z[0]
    assert odds(li) - odds(raw[0]) == pytest.approx(shift, abs=1e-4)


def _rebuilt(tmp_path, change):
    """The shipped bundle with its listed members passed through `change`, manifest remade."""
    from edge_slm.convert.build import _bundle_bytes

    bundle = read_bundle(default_bundle_path())
    members = {k: v for k, v in bundle.members.items() if k in bundle.manifest["members"]}
    change(members)
    path = tmp_path / "b.slm"
    path.write_bytes(_bundle_bytes(members, dict(bundle.manifest)))
    return path


def test_a_bundle_without_evidence_answers_on_the_model_alone(shipped, tmp_path):
    plain = IntentEngine.load(_rebuilt(tmp_path, lambda m: m.pop(MEMBER)))
    assert plain.evidence is None
    ids, _ = plain.tokens("which is the status of my vacuum")
    raw = plain.model.run_tokens(ids)
    np.testing.assert_array_equal(plain.intent_logits(ids, raw)[0], raw[0])
    # and removing the member from a signed-off bundle is tampering, caught
    blob = rezip(default_bundle_path().read_bytes(), lambda m: m.pop(MEMBER))
    with pytest.raises(BundleError):
        read_bundle(blob)


def test_evidence_for_another_tokenizer_is_refused(shipped, tmp_path):
    ev = shipped.evidence
    wrong = WordEvidence(EvidenceConfig(ev.config.vocab_size + 1, ev.config.buckets,
                                        ev.config.weight),
                         np.zeros(ev.config.vocab_size + 1), ev.pairs, ev.bias)
    path = _rebuilt(tmp_path, lambda m: m.update({MEMBER: wrong.to_bytes()}))
    with pytest.raises(BundleError, match="word pieces"):
        IntentEngine.load(path)
