"""Units of the model package: tags and spans, distillation loss, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from edge_slm.model.calibrate import (
    accept,
    choose_threshold,
    expected_calibration_error,
    fit_temperature,
    softmax,
)
from edge_slm.model.data import LabelSpace, decode_spans, tags_for

LABELS = LabelSpace(["<none>", "HassTurnOn"], ["area", "name"])


def test_tags_and_spans_round_trip():
    text = "turn on the living room lamp"
    slots = [{"name": "area", "start": 12, "end": 23}, {"name": "name", "start": 24, "end": 28}]
    offsets = [(0, 4), (5, 7), (8, 11), (12, 18), (19, 23), (24, 26), (26, 28)]
    tags = tags_for(offsets, slots, LABELS)
    assert [LABELS.tags[t] for t in tags] == ["O", "O", "O", "B-area", "I-area", "B-name",
                                              "I-name"]
    spans = decode_spans(tags, offsets, LABELS)
    assert [(n, text[a:b]) for n, a, b in spans] == [("area", "living room"), ("name", "lamp")]


def test_an_o_tag_closes_a_span():
    b, i = LABELS.tags.index("B-area"), LABELS.tags.index("I-area")
    spans = decode_spans([b, 0, i], [(0, 3), (4, 6), (7, 9)], LABELS)
    assert spans == [("area", 0, 3), ("area", 7, 9)]


def test_distillation_loss_is_zero_when_student_equals_teacher():
    tf = pytest.importorskip("tensorflow")
    from edge_slm.model.distill import kd_terms

    rng = np.random.default_rng(0)
    li = rng.normal(size=(4, 5)).astype(np.float32)
    lt = rng.normal(size=(4, 6, 7)).astype(np.float32)
    t_int = tf.nn.softmax(li).numpy()
    t_tags = tf.nn.softmax(lt).numpy()
    mask = np.ones((4, 6), np.float32)
    kl_i, kl_t = kd_terms(li, lt, t_int, t_tags, mask, temperature=2.0)
    assert np.allclose(kl_i, 0, atol=1e-5) and np.allclose(kl_t, 0, atol=1e-5)
    kl_i2, kl_t2 = kd_terms(li + rng.normal(size=li.shape).astype(np.float32), lt, t_int, t_tags,
                            mask, temperature=2.0)
    assert float(np.min(kl_i2)) > 1e-3 and np.allclose(kl_t2, 0, atol=1e-5)


def test_temperature_scaling_lowers_ece_on_an_overconfident_model():
    rng = np.random.default_rng(1)
    n, k = 5000, 6
    true_logits = rng.normal(size=(n, k)) * 1.5
    labels = np.array([rng.choice(k, p=p) for p in softmax(true_logits)])
    overconfident = true_logits * 4.0
    before = expected_calibration_error(softmax(overconfident), labels)
    t = fit_temperature(overconfident, labels)
    after = expected_calibration_error(softmax(overconfident, t), labels)
    assert 3.0 < t < 5.0
    assert after < before / 3


def test_threshold_meets_the_false_accept_target():
    rng = np.random.default_rng(2)
    oos = softmax(rng.normal(size=(1000, 5)) * 3)
    th = choose_threshold(oos, 0.02)
    accepted, _ = accept(oos, th)
    assert accepted.mean() <= 0.02
    assert accept(oos, th * 0.9)[0].mean() >= accepted.mean()


def test_word_level_decoding_joins_pieces_and_hyphenated_numbers():
    labels = LabelSpace(["<none>", "HassStartTimer"], ["minutes", "name"])
    b_min, i_min = labels.tags.index("B-minutes"), labels.tags.index("I-minutes")
    b_name = labels.tags.index("B-name")
    text = "timer for twenty-six minutes"
    offsets = [(0, 5), (6, 9), (10, 16), (16, 17), (17, 20), (21, 28)]
    # The model tags "-" and "six" oddly; the glued run still takes the first token's tag.
    tags = [0, 0, b_min, b_name, b_min, 0]
    assert decode_spans(tags, offsets, labels, text) == [("minutes", 10, 20)]
    # "11-seconds": the glued "-seconds" is tagged O, so the span stops at "11".
    text2 = "stop 11-seconds"
    offsets2 = [(0, 4), (5, 7), (7, 8), (8, 15)]
    assert decode_spans([0, b_min, 0, 0], offsets2, labels, text2) == [("minutes", 5, 7)]
    # Word pieces ("kitch" "##n") and B- on every word of one value make one span.
    text3 = "porridge oats kitchn"
    offsets3 = [(0, 8), (9, 13), (14, 19), (19, 20)]
    assert decode_spans([b_name, b_name, b_min, i_min], offsets3, labels, text3) == \
        [("name", 0, 13), ("minutes", 14, 20)]
    # ... but a word said twice is two things ("on on the first floor")
    text4 = "lights on on floor"
    offsets4 = [(0, 6), (7, 9), (10, 12), (13, 18)]
    assert decode_spans([0, b_name, b_name, 0], offsets4, labels, text4) == \
        [("name", 7, 9), ("name", 10, 12)]


def test_word_pieces_decide_as_one_word_and_trailing_symbols_stay_out():
    labels = LabelSpace(["<none>", "HassListAddItem"], ["item", "temperature"])
    b_item, i_item = labels.tags.index("B-item"), labels.tags.index("I-item")
    b_t = labels.tags.index("B-temperature")
    # "cu" "##mi" "##n": the model's O on the middle piece does not cut the word in two.
    text = "strike cumin off"
    offsets = [(0, 6), (7, 9), (9, 11), (11, 12), (13, 16)]
    assert decode_spans([0, b_item, 0, b_item, 0], offsets, labels, text) == [("item", 7, 12)]
    # "wi" O + "##pe" B-item: the word "wipe" opens the item, which runs on.
    text2 = "take wipe down off"
    offsets2 = [(0, 4), (5, 7), (7, 9), (10, 14), (15, 18)]
    assert decode_spans([0, 0, b_item, i_item, 0], offsets2, labels, text2) == \
        [("item", 5, 14)]
    # "21.5°": the decimal point inside the number stays, the degree sign after it does not.
    text3 = "set it to 21.5°"
    offsets3 = [(0, 3), (4, 6), (7, 9), (10, 12), (12, 13), (13, 14), (14, 15)]
    assert decode_spans([0, 0, 0, b_t, b_t, b_t, b_t], offsets3, labels, text3) == \
        [("temperature", 10, 14)]


def test_score_reports_slot_f1_after_resolution_against_the_home():
    from edge_slm.model.data import Batch
    from edge_slm.model.evaluate import score
    from edge_slm.runtime.resolve import HomeNames

    labels = LabelSpace(["<none>", "HassTurnOn"], ["area", "name"])
    b_area, b_name = labels.tags.index("B-area"), labels.tags.index("B-name")
    text = "turn on man cave tv"
    offsets = [(0, 4), (5, 7), (8, 11), (12, 16), (17, 19)]
    rec = {"text": text, "intent": "HassTurnOn",
           "slots": [{"name": "name", "text": "man cave tv", "start": 8, "end": 19}]}
    tags = np.zeros((1, 6, len(labels.tags)), dtype=np.float32)
    for pos, tag in enumerate([0, 0, b_area, labels.tags.index("I-area"), b_name]):
        tags[0, 1 + pos, tag] = 5.0
    batch = Batch(np.ones((1, 6), dtype=np.int32), np.array([1]), np.zeros((1, 6), np.int32),
                  [offsets])
    intent_logits = np.array([[0.0, 5.0]])
    plain = score(intent_logits, tags, batch, [rec], labels)
    assert plain["slot_f1"] == 0.0 and "slot_f1_resolved" not in plain
    home = HomeNames.build(names=["man cave tv"], areas=["man cave"])
    resolved = score(intent_logits, tags, batch, [rec], labels, home=home)
    assert resolved["slot_f1"] == 0.0 and resolved["slot_f1_resolved"] == 1.0
    assert resolved["exact_match"] == 1.0


def test_trained_vocabulary_never_glues_a_symbol_to_a_word():
    pytest.importorskip("tokenizers")
    from edge_slm.model.tokenizer_train import train_tokenizer

    texts = ["set it to 21°", "set it to twenty-five°", "heat to 5° please"] * 50
    tok = train_tokenizer(texts, vocab_size=200)
    assert all(t in ("°", "##°") or "°" not in t for t in tok.vocab)
    enc = tok.encode("twenty-five°")
    assert enc.tokens[-1] == "##°" and enc.offsets[-1] == (11, 12)


RESULTS = {
    "teacher": {"params": 22713216, "calibration": {"ece_after": 0.0123},
                "heldout_templates": {"intent_acc": 0.91234, "slot_f1": 0.8,
                                      "slot_f1_resolved": 0.85, "frame_acc": 0.99},
                "heldout_oos": {"false_accept": 0.004}},
    "pruned": {"params": 151000, "calibration": {"ece_after": 0.04567},
               "heldout_templates": {"intent_acc": 0.5, "slot_f1": 0.25},
               "heldout_oos": {"false_accept": 0.0625},
               "dev": {"intent_acc": 0.75, "intent_acc_thresholded": 0.7,
                       "rejected_top_right": 0.05}},
}


def test_the_closing_table_and_the_stage_figures_say_the_same():
    from edge_slm.model.report import StageReport, format_stage, format_table, headline

    # The table as the training run has always written it (pinned before stages existed).
    assert format_table(RESULTS).split("\n") == [
        "| model | params | held-out intent acc | held-out slot F1 | held-out slot F1 (resolved)"
        " | held-out frames | OOS false accepts | dev intent acc | dev acc (thresholded)"
        " | dev rejected, top-1 right | ECE after T |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        "| teacher | 22,713,216 | 91.23% | 80.00% | 85.00% | 99.00% | 0.40% | - | - | - "
        "| 0.012 |",
        "| pruned | 151,000 | 50.00% | 25.00% | - | - | 6.25% | 75.00% | 70.00% | 5.00% "
        "| 0.046 |"]
    # A student stage's figures are its row, as numbers; missing cells are left out.
    assert headline(RESULTS["pruned"]) == {
        "params": 151000, "held-out intent acc": 0.5, "held-out slot F1": 0.25,
        "OOS false accepts": 0.0625, "dev intent acc": 0.75, "dev acc (thresholded)": 0.7,
        "dev rejected, top-1 right": 0.05, "ECE after T": 0.04567}
    line = format_stage("pruning", StageReport(True, {"params": 151000, "vocab": "1200 -> 900",
                                                      "rows": {"train": 5000}}, 12.34))
    assert line == ("pruning (resumed, 12.3 s): params 151,000; vocab 1200 -> 900; "
                    "rows (train 5,000)")


def test_a_seeded_student_starts_from_the_same_weights():
    pytest.importorskip("tensorflow")
    from edge_slm.model.student import ModelConfig, build_student

    config = ModelConfig(vocab_size=50, max_len=8, d_model=16, n_heads=[1], head_dim=16,
                         ffn_dims=[16], n_intents=3, n_tags=3, n_frames=1)

    def weights(seed):
        return [np.asarray(w) for w in build_student(config, seed=seed).weights]

    same, other = zip(weights(0), weights(0)), zip(weights(0), weights(1))
    assert all(np.array_equal(a, b) for a, b in same)
    assert not all(np.array_equal(a, b) for a, b in other)


def test_row_lengths_count_up_to_the_last_real_token():
    from edge_slm.model.data import row_lengths

    ids = np.array([[2, 5, 6, 0], [2, 0, 0, 0], [2, 7, 8, 9], [0, 0, 0, 0]], np.int32)
    assert row_lengths(ids).tolist() == [3, 1, 4, 1]


def test_length_batches_cover_an_epoch_once_in_full_batches_of_near_equal_length():
    from edge_slm.model.data import length_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 33, size=1000)
    batches = length_batches(np.random.default_rng(1), lengths, batch_size=8, steps=120, pool=10)
    assert len(batches) == 120 and all(len(b) == 8 for b in batches)
    rows = np.concatenate(batches)
    assert len(set(rows.tolist())) == 960  # no row twice in an epoch
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    random_spread = np.mean([lengths[b].max() - lengths[b].min()
                             for b in np.split(rng.permutation(1000)[:960], 120)])
    assert spread < random_spread / 4
    # the batch order is shuffled, not sorted by length
    means = [lengths[b].mean() for b in batches]
    assert means != sorted(means)
    again = length_batches(np.random.default_rng(1), lengths, batch_size=8, steps=120, pool=10)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_a_row_trimmed_to_its_length_reads_as_the_padded_row():
    pytest.importorskip("tensorflow")
    from edge_slm.model.student import ModelConfig, build_student

    config = ModelConfig(vocab_size=50, max_len=8, d_model=16, n_heads=[2], head_dim=8,
                         ffn_dims=[16], n_intents=3, n_tags=3, n_frames=2)
    model = build_student(config, seed=0)
    ids = np.array([[2, 5, 6, 0, 0, 0, 0, 0], [2, 7, 8, 0, 0, 0, 0, 0]], np.int32)
    full = [np.asarray(x) for x in model(ids)]
    trimmed = [np.asarray(x) for x in model(ids[:, :3])]
    np.testing.assert_allclose(trimmed[0], full[0], atol=1e-5)  # intents
    np.testing.assert_allclose(trimmed[1], full[1][:, :3], atol=1e-5)  # tags of real tokens
    np.testing.assert_allclose(trimmed[2], full[2], atol=1e-5)  # frames


def test_calibration_sentences_are_the_calibration_splits_negatives():
    from edge_slm.model.stages import calibration_records

    recs = [{"split": "calib", "intent": None, "text": "a"},
            {"split": "calib", "intent": "HassTurnOn", "text": "b"},
            {"split": "valid", "intent": None, "text": "c"},
            {"split": "train", "intent": None, "text": "d"}]
    assert [r["text"] for r in calibration_records(recs)] == ["a"]
    # a corpus made before the calibration split: the validation split's negatives
    assert [r["text"] for r in calibration_records(recs[2:])] == ["c"]
