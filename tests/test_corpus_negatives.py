"""The out-of-scope sentences: the hard lines are clean, unique, and not commands that Home
Assistant's own matcher recognizes."""

from __future__ import annotations

from importlib import resources
from typing import Dict, List, Tuple

import pytest
import yaml

from edge_slm.corpus.negatives import load_negatives
from edge_slm.home import default_inventory


def _groups(lang: str) -> Dict[str, List[str]]:
    res = resources.files("edge_slm") / "data" / "negatives" / f"{lang}.yaml"
    data = yaml.safe_load(res.read_text(encoding="utf-8"))
    return {group: [str(line) for line in lines] for group, lines in data["groups"].items()}


def test_hard_lines_are_lower_case_and_unique_across_groups():
    groups = _groups("en")
    assert {"near_miss", "idioms", "trivia"} <= set(groups)
    seen: Dict[str, str] = {}
    clashes: List[Tuple[str, str, str]] = []
    for group, lines in groups.items():
        for line in lines:
            assert line == line.lower() and line == line.strip() and "  " not in line, line
            if line in seen:
                clashes.append((line, seen[line], group))
            seen[line] = group
    assert clashes == []


def test_loaded_negatives_hold_every_hard_line_once():
    hard = [n for n in load_negatives("en") if n.source == "hard"]
    assert len(hard) == len({n.text for n in hard}) == sum(len(v) for v in _groups("en").values())
    assert {n.group for n in hard} == set(_groups("en"))


def test_no_hard_line_is_a_command_home_assistant_recognizes():
    """A hard negative that Home Assistant's matcher executes would teach the model to refuse a
    real command: every line is checked with hassil over the package's English intents and
    the default home."""
    pytest.importorskip("hassil")
    from hassil.intents import Intents
    from hassil.recognize import recognize_best
    from edge_slm.corpus.hassil_lists import slot_lists
    from edge_slm.corpus.templates import package_intents

    intents = Intents.from_dict(package_intents("en"))
    lists = slot_lists(default_inventory("en"))
    # The check can fail: a command in the same form is recognized.
    assert recognize_best("turn on the kitchen lights", intents, slot_lists=lists,
                          language="en") is not None
    recognized = []
    for group, lines in _groups("en").items():
        for line in lines:
            match = recognize_best(line, intents, slot_lists=lists, language="en")
            if match is not None:
                recognized.append((group, line, match.intent.name))
    assert recognized == []
