"""The home: one format for the user's home, the corpus inventory and a bundle's home.json."""

from __future__ import annotations

import json

import pytest

from edge_slm.errors import HomeError
from edge_slm.home import (
    home_from_bundle_json,
    home_json,
    inventory_from_dict,
    load_inventory,
)

HOME_YAML = """
floors:
  - name: First Floor
    aliases: [ground floor]
areas:
  - name: Kitchen
    floor: First Floor
entities:
  - name: Garage Door
    domain: cover
    device_class: garage
  - name: Skylight
    domain: binary_sensor
    area: Kitchen
    attributes: {device_class: window}
"""


def test_a_home_file_with_domains_and_device_classes(tmp_path):
    f = tmp_path / "home.yaml"
    f.write_text(HOME_YAML)
    home = load_inventory(f)
    assert [e.device_class for e in home.entities] == ["garage", "window"]
    assert home.entity("garage door").domain == "cover"
    assert home.names()["floor"] == [["First Floor", "ground floor"]]


def test_homes_need_not_have_areas_or_entities():
    assert not inventory_from_dict({})
    only = inventory_from_dict({"entities": [{"name": "TV", "domain": "media_player"}]})
    assert only.names()["area"] == [] and only.entity("tv").name == "TV"


def test_the_corpus_still_needs_something_to_sample(tmp_path):
    from edge_slm.corpus.inventory import load_inventory as corpus_inventory
    from edge_slm.errors import CorpusInputError

    f = tmp_path / "h.yaml"
    f.write_text("entities: [{name: x, domain: light}]\n")
    with pytest.raises(CorpusInputError, match="at least one area"):
        corpus_inventory(f)


def test_bundle_home_json_round_trips_and_upgrades_format_1(tmp_path):
    f = tmp_path / "home.yaml"
    f.write_text(HOME_YAML)
    home = load_inventory(f)
    again = home_from_bundle_json(json.loads(home_json(home)))
    assert again.to_dict() == home.to_dict()
    old = home_from_bundle_json({"name": [["kitchen ceiling", "main light"], "kettle"],
                                 "area": ["kitchen"], "floor": []})
    assert [(e.name, e.aliases, e.domain) for e in old.entities] == \
        [("kitchen ceiling", ("main light",), ""), ("kettle", (), "")]


@pytest.mark.parametrize("data, problem", [
    ({"entities": [{"name": "x", "domain": "light", "device_class": 3}]}, "device_class"),
    ({"areas": [{"name": "a", "floor": "nowhere"}]}, "unknown floor"),
    ({"rooms": []}, "unknown top-level keys"),
    ({1: "x", "b": "y"}, "unknown top-level keys"),  # fuzzing: sorting int and str
    ({"areas": [{"name": "a", "floor": []}]}, "unknown floor"),  # fuzzing: unhashable
    ({"areas": [{"name": "a"}], "entities": [{"name": "e", "domain": "light", "area": {}}]},
     "unknown area"),
])
def test_malformed_homes_say_what_is_wrong(data, problem):
    with pytest.raises(HomeError, match=problem):
        inventory_from_dict(data, "my_home.yaml")


def test_a_home_nested_too_deeply_is_a_home_error(tmp_path):
    """Found by fuzzing: PyYAML's RecursionError escaped."""
    path = tmp_path / "home.yaml"
    path.write_text("[" * 1500)
    with pytest.raises(HomeError, match="nested too deeply"):
        load_inventory(path)
