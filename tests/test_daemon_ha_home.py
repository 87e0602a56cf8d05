"""Home Assistant's registries as a home (`edge_slm.daemon.ha_home`), on payloads shaped as its
WebSocket API sends them (tests/ha_fixtures.py): only entities exposed to Assist, in a domain
the engine knows, and not disabled, become names; names, aliases, areas (the entity's, else
its device's), floors and device classes come from where Home Assistant keeps them; malformed
entries are skipped and counted, never raised."""

from __future__ import annotations

import logging

import pytest
from ha_fixtures import add_exposed_light, registries

from edge_slm.daemon.ha_home import HaRegistries, exposed_ids, home_from_registries
from edge_slm.daemon.home_sources import HOME_ASSISTANT
from edge_slm.daemon.live_home import key


def _reg(data=None, **changes) -> HaRegistries:
    data = data or registries()
    reg = HaRegistries(
        areas=data["config/area_registry/list"], floors=data["config/floor_registry/list"],
        devices=data["config/device_registry/list"],
        entities=data["config/entity_registry/list"], states=data["get_states"],
        exposed=data["homeassistant/expose_entity/list"], extended=data["extended"])
    return HaRegistries(**{**reg.__dict__, **changes})


def _by_name(home):
    return {e.name: e for e in home.inventory.entities}


def test_only_exposed_usable_entities_become_names():
    home = home_from_registries(_reg())
    assert home.source == HOME_ASSISTANT
    assert set(_by_name(home)) == {"Desk Lamp", "Kitchen Ceiling", "Garage Door", "Front Door",
                                   "Hall Motion", "Porch Light"}
    # not exposed (coffee maker), a domain no intent names (sun), disabled (old lamp)
    names = {n.casefold() for n in _by_name(home)}
    assert not names & {"coffee maker", "sun", "old lamp"}


def test_names_aliases_areas_and_device_classes_come_from_where_home_assistant_keeps_them():
    entities = _by_name(home_from_registries(_reg()))
    lamp = entities["Desk Lamp"]
    # the friendly name; the entity registry's aliases (a null alias means "the name" itself);
    # no area of its own, so its device's (Study)
    assert (lamp.domain, lamp.area, lamp.aliases) == ("light", "Study", ("reading light",))
    assert entities["Kitchen Ceiling"].area == "Kitchen"
    assert entities["Kitchen Ceiling"].aliases == ("kitchen light",)
    assert entities["Garage Door"].device_class == "garage"  # original_device_class
    assert entities["Hall Motion"].device_class == "motion"
    assert entities["Front Door"].area == "Hall"
    # no friendly name in its state: the device's name (has_entity_name, no entity name)
    assert entities["Porch Light"].area == "Hall"


def test_areas_and_floors_with_their_aliases_and_ids():
    home = home_from_registries(_reg())
    floors = {f.name: f for f in home.inventory.floors}
    areas = {a.name: a for a in home.inventory.areas}
    assert floors["Ground Floor"].aliases == ("downstairs",)
    assert areas["Living Room"].aliases == ("lounge",)
    assert areas["Living Room"].floor == "Ground Floor" and areas["Study"].floor == "First Floor"
    assert areas["Hall"].floor is None
    assert home.ids[key("area", "living room")] == "living_room"
    assert home.ids[key("floor", "Ground Floor")] == "ground_floor"
    assert home.ids[key("name", "Desk Lamp")] == "light.desk_lamp"
    assert home.skipped == 0


def test_a_new_exposed_light_and_a_rename_show_up():
    data = registries()
    add_exposed_light(data, "light.bedside", "Bedside Lamp", "study", aliases=("night light",))
    data["get_states"][1]["attributes"]["friendly_name"] = "Pantry Light"
    entities = _by_name(home_from_registries(_reg(data)))
    assert entities["Bedside Lamp"].aliases == ("night light",)
    assert "Pantry Light" in entities and "Kitchen Ceiling" not in entities


def test_exposed_ids_reads_only_conversation_true():
    assert exposed_ids({"exposed_entities": {"a.b": {"conversation": True},
                                             "c.d": {"conversation": "yes"},
                                             "e.f": {}, "g.h": None, 3: {"conversation": True}}}
                       ) == ["a.b"]
    assert exposed_ids(["not", "an", "object"]) == []


def test_without_a_state_the_registry_names_the_entity():
    data = registries()
    data["get_states"] = [s for s in data["get_states"] if s["entity_id"] != "light.desk_lamp"]
    # has_entity_name with no entity name: the device's user-given name
    assert "Desk Lamp" in _by_name(home_from_registries(_reg(data)))
    data["config/entity_registry/list"][1]["original_name"] = "Ceiling"
    data["get_states"] = [s for s in data["get_states"]
                          if s["entity_id"] != "light.kitchen_ceiling"]
    # no device, no name of its own: the integration's original name
    assert "Ceiling" in _by_name(home_from_registries(_reg(data)))


@pytest.mark.parametrize("field,value", [
    ("areas", "not a list"), ("areas", [1, None, {"name": "No Id"}, {"area_id": "x"}]),
    ("floors", [{"floor_id": 3, "name": "Attic"}]), ("devices", [{"name": "no id"}]),
    ("entities", [["light.a"]]), ("states", [{"entity_id": 5}, {"entity_id": "a.b",
                                                                "attributes": "x"}]),
    ("exposed", {"exposed_entities": "all"}), ("extended", ["not", "a", "dict"]),
])
def test_malformed_entries_are_skipped_and_counted(field, value, caplog):
    caplog.set_level(logging.WARNING)
    home = home_from_registries(_reg(**{field: value}))
    assert isinstance(home.inventory.entities, list)  # built, not raised
    if field not in ("exposed", "extended"):
        assert home.skipped >= 1 and caplog.records


def test_a_wrong_alias_or_name_type_is_dropped_not_raised():
    data = registries()
    data["extended"]["light.desk_lamp"]["aliases"] = [3, "", "  ", "Reading Light", "desk lamp"]
    data["get_states"][0]["attributes"]["friendly_name"] = ["not", "a", "name"]
    lamp = _by_name(home_from_registries(_reg(data)))["Desk Lamp"]  # falls back to the device
    assert lamp.aliases == ("Reading Light",)  # the name itself is no alias of it


def test_two_entities_of_one_name_keep_the_first():
    data = registries()
    add_exposed_light(data, "light.desk_lamp_2", "Desk Lamp", "kitchen")
    home = home_from_registries(_reg(data))
    assert [e.name for e in home.inventory.entities].count("Desk Lamp") == 1
    assert home.ids[key("name", "Desk Lamp")] == "light.desk_lamp"
    assert home.skipped == 1
