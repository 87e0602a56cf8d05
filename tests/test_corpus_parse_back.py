"""Unaugmented sentences parse back through hassil.recognize to the same intent and values."""

from __future__ import annotations

import hassil

from edge_slm.corpus.hassil_lists import slot_lists, unknown_names


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) < 1e-9
    return str(a).casefold().strip() == str(b).casefold().strip()


def _matches(result, rec) -> bool:
    if result.intent.name != rec["intent"]:
        return False
    for slot in rec["slots"]:
        ent = result.entities.get(slot["name"])
        if ent is None:
            return False
        value = slot["value"]
        if isinstance(value, (int, float)) and value < 0 and not ent.text.strip()[:1].isdigit():
            value = -value  # hassil applies a range's multiplier to digits, not to words
        if not _same(ent.value, value):
            return False
    return True


def test_unaugmented_sentences_parse_back(en_builder, en_records):
    intents = en_builder.tset.intents
    clean = [r for r in en_records if not r["augment"] and r["intent"] is not None]
    # Every template at least once where the sample has it, plus a spread of the rest.
    picked, seen = [], set()
    for rec in clean:
        if rec["template"] not in seen or len(picked) % 7 == 0:
            seen.add(rec["template"])
            picked.append(rec)
        if len(picked) >= 2500:
            break
    lists = slot_lists(en_builder.inventory,
                       {"name": unknown_names(en_builder.inventory, picked)})
    failures = []
    for rec in picked:
        results = hassil.recognize_all(rec["text"], intents, slot_lists=lists,
                                       intent_context=rec["context"] or None, language="en")
        if not any(_matches(r, rec) for r in results):
            failures.append((rec["template"], rec["text"], rec["slots"]))
    assert len(picked) >= 2000
    assert failures == []
