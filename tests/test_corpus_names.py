"""Synthetic device names (corpus/names.py): varied, never-seen, reproducible."""

from __future__ import annotations

import random
import re

from edge_slm.corpus.names import DOMAIN_NOUNS, NAMED_LIKE_PEOPLE, WORDS, pseudo_word, synth_name


def test_names_are_varied_and_reproducible():
    names = [synth_name(random.Random(7), "light") for _ in range(3)]
    assert len(set(names)) == 1  # one seed, one name
    rng = random.Random(1)
    many = [synth_name(rng, "light") for _ in range(2000)]
    assert all(n.strip() == n and n for n in many)
    assert len(set(many)) > 1500
    known = set(WORDS) | set(DOMAIN_NOUNS["light"])
    made_up = [n for n in many if not any(w in known for w in re.split(r"[ _-]", n))]
    codes = [n for n in many if re.search(r"[a-z]\d|\d{2}", n)]
    assert len(made_up) > 200 and len(codes) > 200


def test_people_places_and_robots_are_called_by_name():
    rng = random.Random(2)
    people = [synth_name(rng, "person") for _ in range(500)]
    assert sum(p in NAMED_LIKE_PEOPLE["person"] for p in people) > 250


def test_pseudo_words_are_pronounceable_and_new():
    rng = random.Random(3)
    words = [pseudo_word(rng) for _ in range(500)]
    assert all(re.fullmatch(r"[a-z]+\d?", w) for w in words)
    assert all(re.search(r"[aeiouy]", w) for w in words)
    assert len(set(words)) > 450 and not set(words) & set(WORDS)
