"""User inputs: inventories and custom sentences, good and malformed."""

from __future__ import annotations

import pytest

from edge_slm.cli import main
from edge_slm.corpus.build import CorpusBuilder, CorpusConfig
from edge_slm.corpus.inventory import default_inventory, load_inventory
from edge_slm.errors import CorpusInputError

INVENTORY_YAML = """
floors:
  - name: top floor
areas:
  - name: bunker
    aliases: [the hole]
    floor: top floor
  - name: greenhouse
entities:
  - name: zorp lamp
    domain: light
    area: bunker
  - name: glimmer switch
    domain: switch
    area: greenhouse
  - name: drip valve
    domain: valve
"""

CUSTOM_YAML = """
language: en
intents:
  FeedTheCat:
    data:
      - sentences:
          - "feed [the] cat [in the] {area}"
          - "give [the] cat {portion} food"
        slots:
          pet: cat
lists:
  portion:
    values:
      - in: "(a little|some)"
        out: small
      - in: "(lots of|plenty of)"
        out: large
"""


def test_default_inventory_is_large_and_varied():
    inv = default_inventory("en")
    assert len(inv.areas) >= 30
    assert len(inv.entities) >= 300
    assert len({e.domain for e in inv.entities}) >= 15
    assert any("'" in e.name for e in inv.entities)
    assert any(any(ch.isdigit() for ch in e.name) for e in inv.entities)


def test_user_inventory_feeds_slots(tmp_path):
    inv_file = tmp_path / "home.yaml"
    inv_file.write_text(INVENTORY_YAML)
    inv = load_inventory(inv_file)
    assert [a.name for a in inv.areas] == ["bunker", "greenhouse"]
    b = CorpusBuilder(CorpusConfig(count=3000, seed=1, inventory=str(inv_file)), inventory=inv)
    values = {(s["name"], s["value"]) for r in b.records() for s in r["slots"]}
    assert ("area", "bunker") in values and ("name", "zorp lamp") in values
    assert not any(n == "area" and v not in ("bunker", "greenhouse") for n, v in values)


def test_custom_sentences_are_sampled(tmp_path):
    f = tmp_path / "cat.yaml"
    f.write_text(CUSTOM_YAML)
    b = CorpusBuilder(CorpusConfig(count=20000, seed=1, sentences=[str(f)]))
    cat = [r for r in b.records() if r["intent"] == "FeedTheCat"]
    assert len(cat) >= 30
    assert all(r["source"] == "custom" and r["fixed_slots"] == {"pet": "cat"} for r in cat)
    portions = {s["value"] for r in cat for s in r["slots"] if s["name"] == "portion"}
    assert portions == {"small", "large"}
    for r in cat:
        for s in r["slots"]:
            assert r["text"][s["start"]:s["end"]] == s["text"]


@pytest.mark.parametrize("content, problem", [
    ("areas: [", "not valid YAML"),
    ("- just a list", "must be a mapping"),
    ("areas:\n  - name: a\nentities:\n  - name: x\n    domain: toaster\n", "'domain' must be"),
    ("areas:\n  - name: a\nentities:\n  - name: x\n    domain: light\n    area: b\n",
     "unknown area 'b'"),
    ("areas:\n  - name: a\nentities:\n  - name: x\n    domain: light\n"
     "  - name: X\n    domain: light\n", "duplicate entity name"),
    ("areas:\n  - {aliases: [z]}\nentities: []\n", "missing or empty 'name'"),
    ("rooms: []\n", "unknown top-level keys"),
])
def test_malformed_inventory_names_file_and_problem(tmp_path, content, problem):
    f = tmp_path / "bad_inventory.yaml"
    f.write_text(content)
    with pytest.raises(CorpusInputError) as err:
        load_inventory(f)
    assert str(f) in str(err.value) and problem in str(err.value)


@pytest.mark.parametrize("content, problem", [
    ("intents: [", "not valid YAML"),
    ("language: en\n", "missing 'intents'"),
    ("intents:\n  X:\n    sentences: [a]\n", "needs a 'data' list"),
    ("intents:\n  X:\n    data:\n      - sentences: []\n", "'sentences' must be a non-empty"),
    ("intents:\n  X:\n    data:\n      - sentences: ['turn (on|off']\n", "bad template syntax"),
    ("intents:\n  X:\n    data:\n      - sentences: ['do {nolist}']\n", "nolist"),
    ("intents:\n  X:\n    data:\n      - sentences: ['do <norule>']\n", "norule"),
])
def test_malformed_sentences_names_file_and_problem(tmp_path, content, problem):
    f = tmp_path / "bad_sentences.yaml"
    f.write_text(content)
    with pytest.raises(CorpusInputError) as err:
        CorpusBuilder(CorpusConfig(count=50, seed=1, sentences=[str(f)]))
        list(CorpusBuilder(CorpusConfig(count=50, seed=1, sentences=[str(f)])).records())
    assert str(f) in str(err.value) and problem in str(err.value)


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    f = tmp_path / "inv.yaml"
    f.write_text("areas: [")
    assert main(["corpus", "--count", "5", "--inventory", str(f)]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "Traceback" not in err


def test_cli_writes_corpus(tmp_path, capsys):
    out = tmp_path / "c.jsonl"
    assert main(["corpus", "--count", "300", "--seed", "4", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 300
    assert (tmp_path / "c.jsonl.stats.json").exists()
    assert main(["corpus", "--count", "4", "--seed", "4"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4


def test_wildcard_lists_of_every_source(tmp_path):
    from edge_slm.corpus.templates import wildcard_lists

    shipped = wildcard_lists("en")
    assert {"search_query", "shopping_list_item", "timer_name"} <= set(shipped)
    assert "color" not in shipped and "brightness" not in shipped
    f = tmp_path / "recipes.yaml"
    f.write_text('language: "en"\nintents:\n  FindRecipe:\n    data:\n      - sentences:\n'
                 '          - "find a recipe for {dish}"\nlists:\n  dish:\n    wildcard: true\n')
    assert "dish" in wildcard_lists("en", [f]) and "dish" not in shipped
