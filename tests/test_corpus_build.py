"""The corpus as a whole: exact spans at scale, coverage, splits, determinism, languages."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from edge_slm.corpus.build import (
    SPLIT_CALIB,
    SPLIT_HELDOUT,
    SPLIT_TRAIN,
    CorpusBuilder,
    CorpusConfig,
    write_corpus,
)


def test_spans_exact_over_60k_sentences(en_records):
    assert len(en_records) == 60000
    errors = []
    for rec in en_records:
        text = rec["text"]
        assert text == text.strip() and "  " not in text, rec
        for slot in rec["slots"]:
            s, e = slot["start"], slot["end"]
            if not (0 <= s < e <= len(text)) or text[s:e] != slot["text"]:
                errors.append(rec)
            elif slot["text"] != slot["text"].strip():
                errors.append(rec)
            elif slot["value"] is None:
                errors.append(rec)
    assert errors == []


def test_every_intent_is_covered(en_records, en_builder):
    import home_assistant_intents as hai

    package_intents = set(hai.get_intents("en")["intents"])
    seen = {r["intent"] for r in en_records}
    assert package_intents <= seen
    assert None in seen  # out-of-scope lines are present
    slot_names = {s["name"] for r in en_records for s in r["slots"]}
    assert {"name", "area", "floor", "brightness", "temperature", "item"} <= slot_names


def test_records_have_the_documented_fields(en_records):
    keys = {"text", "base", "intent", "slots", "fixed_slots", "context", "name_domain",
            "template", "source", "split", "augment", "lang"}
    for rec in en_records[:500]:
        assert set(rec) == keys
        assert rec["augment"] or rec["base"] == rec["text"]
        assert rec["source"] in {"ha", "ext", "custom", "oos-chatterbot", "oos-hard",
                                 "oos-template"}


def test_heldout_templates_never_in_training(en_records, en_builder):
    heldout_ids = {t.id for t in en_builder.tset.templates if t.heldout}
    assert heldout_ids
    for rec in en_records:
        if rec["template"] in heldout_ids:
            assert rec["split"] == SPLIT_HELDOUT
    # Every intent keeps training templates.
    train_intents = {r["intent"] for r in en_records if r["split"] == SPLIT_TRAIN}
    assert {r["intent"] for r in en_records} == train_intents


def test_sentence_split_is_by_unaugmented_text(en_records):
    by_text = {}
    for rec in en_records:
        if not rec["augment"] and rec["split"] not in (SPLIT_HELDOUT, SPLIT_CALIB):
            by_text.setdefault(rec["text"], set()).add(rec["split"])
    assert all(len(splits) == 1 for splits in by_text.values())
    splits = {s for ss in by_text.values() for s in ss}
    assert splits == {"train", "valid", "test"}


def test_out_of_scope_has_both_sources_and_heldout(en_records):
    oos = [r for r in en_records if r["intent"] is None]
    assert 0.08 < len(oos) / len(en_records) < 0.16
    assert {r["source"] for r in oos} == {"oos-chatterbot", "oos-hard", "oos-template"}
    from_templates = [r["text"] for r in oos if r["source"] == "oos-template"]
    assert len(set(from_templates)) > 0.8 * len(from_templates)  # variety, not repetition
    assert any(r["split"] == SPLIT_HELDOUT for r in oos)
    assert all(r["slots"] == [] for r in oos)


def test_calibration_split_is_out_of_scope_wording_never_trained_on(en_records):
    calib = [r for r in en_records if r["split"] == SPLIT_CALIB]
    oos = [r for r in en_records if r["intent"] is None]
    assert 0.02 < len(calib) / len(oos) < 0.09  # about calib_fraction of the negatives
    assert all(r["intent"] is None for r in calib)
    assert {r["source"] for r in calib} == {"oos-chatterbot", "oos-hard", "oos-template"}
    # A calibration template or line is never in training, nor held out.
    keys = {(r["template"] if r["source"] == "oos-template" else r["base"]) for r in calib}
    for rec in oos:
        key = rec["template"] if rec["source"] == "oos-template" else rec["base"]
        if key in keys:
            assert rec["split"] == SPLIT_CALIB, rec


def test_augmentations_are_flagged_and_varied(en_records):
    flags = {f for r in en_records for f in r["augment"]}
    assert flags == {"number", "contraction", "asr", "typo", "filler", "wake_word",
                     "punctuation", "casing"}
    clean = sum(1 for r in en_records if not r["augment"])
    assert 0.3 < clean / len(en_records) < 0.7


def test_deterministic_for_a_seed(en_builder):
    def run(seed):
        cfg = replace(en_builder.config, count=3000, seed=seed)
        b = CorpusBuilder(cfg, tset=en_builder.tset, inventory=en_builder.inventory)
        return [json.dumps(r, sort_keys=True) for r in b.records()]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_write_corpus_file_and_stats(tmp_path, en_builder):
    cfg = replace(en_builder.config, count=2000, seed=2)
    out = tmp_path / "c.jsonl"
    summary = write_corpus(cfg, out, builder=CorpusBuilder(
        cfg, tset=en_builder.tset, inventory=en_builder.inventory))
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2000
    stats = json.loads((tmp_path / "c.jsonl.stats.json").read_text())
    assert stats == json.loads(json.dumps(summary))
    assert sum(v["sentences"] for v in stats["stats"]["intents"].values()) == 2000
    assert stats["templates"]["HassTurnOn"]["templates"] >= stats["templates"]["HassTurnOn"]["ha"]


@pytest.mark.parametrize("lang", ["de", "fr"])
def test_other_languages(lang):
    b = CorpusBuilder(CorpusConfig(lang=lang, count=3000, seed=1))
    recs = list(b.records())
    assert len({r["intent"] for r in recs}) > 20
    for rec in recs:
        for slot in rec["slots"]:
            assert rec["text"][slot["start"]:slot["end"]] == slot["text"]
    assert all(r["lang"] == lang for r in recs)


def test_unknown_language_is_a_clear_error():
    with pytest.raises(ValueError, match="available"):
        CorpusBuilder(CorpusConfig(lang="xx", count=1))


def test_state_and_class_words_are_tagged_wherever_they_are_said(en_records):
    """A template that fixes `state: off` and says "off" tags it like Home Assistant's own
    `{on_off_states:state}` does, so the same word is never a slot in one sentence and plain
    text in the next."""
    fixed_said = fixed_tagged = 0
    for rec in en_records:
        fixed = rec.get("fixed_slots") or {}
        if fixed.get("state") in ("on", "off") and rec["intent"] == "HassGetState" \
                and not rec["augment"]:
            words = rec["text"].lower().split()
            if fixed["state"] in words:
                fixed_said += 1
                # ("is anything left open on den": the state said is "open", and "on" is
                # the preposition)
                fixed_tagged += any(s["name"] == "state" for s in rec["slots"])
    assert fixed_said > 20
    assert fixed_tagged == fixed_said


def test_names_carry_their_domain_and_free_text_its_list(en_records, en_builder):
    domains = {e.name: e.domain for e in en_builder.inventory.entities}
    named = [r for r in en_records if any(s["name"] == "name" and "list" not in s
                                          for s in r["slots"])]
    assert named and all(r["name_domain"] for r in named)
    for r in named[:2000]:
        value = next(s["value"] for s in r["slots"] if s["name"] == "name")
        if value in domains:
            assert r["name_domain"] == domains[value], r
    timers = [s for r in en_records if r["intent"] == "HassStartTimer" for s in r["slots"]
              if s["name"] == "name"]
    assert timers and all(s["list"] == "timer_name" for s in timers)


def test_conversation_intents_are_never_negatives(en_records, en_builder):
    """"how are you" is Home Assistant's HassRespond: no out-of-scope line says it."""
    from edge_slm.corpus.build import conversation_matcher

    matches = conversation_matcher(en_builder.tset)
    assert matches("how are you") and matches("never mind") and not matches("turn on the tv")
    oos = {r["text"] for r in en_records if r["intent"] is None and not r["augment"]}
    assert oos and not [t for t in oos if matches(t)]
