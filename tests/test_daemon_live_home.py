"""The merged home (`edge_slm.daemon.live_home`): one clear precedence (file, Home Assistant,
MQTT discovery, Zigbee2MQTT), names of every source united, each with its origin, the shipped
home as the fallback only, and the swap into a real engine atomic while another thread
parses."""

from __future__ import annotations

import threading

import pytest

from edge_slm.daemon.home_sources import (FILE, HOME_ASSISTANT, MQTT_DISCOVERY, SHIPPED,
                                          ZIGBEE2MQTT)
from edge_slm.daemon.live_home import LiveHome, SourceHome, file_home, key, merge
from edge_slm.errors import HomeError
from edge_slm.home import Area, Entity, Floor, Inventory
from edge_slm.runtime.engine import IntentEngine


@pytest.fixture(scope="module")
def engine():
    return IntentEngine.load()


def _home(source, entities=(), areas=(), floors=(), ids=None):
    return SourceHome(source, Inventory(list(floors), list(areas), list(entities), source),
                      ids or {})


FILE_HOME = _home(FILE, [Entity("Desk Lamp", "light", "Study")], [Area("Study")])
HA_HOME = _home(HOME_ASSISTANT,
                [Entity("desk lamp", "switch", "kitchen"), Entity("Oven", "switch", "study")],
                [Area("kitchen", floor="Ground Floor"), Area("study", ("office",))],
                [Floor("Ground Floor", ("downstairs",))],
                {key("name", "Oven"): "switch.oven", key("area", "study"): "study_id"})
MQTT_HOME = _home(MQTT_DISCOVERY, [Entity("Hall Light", "light", "Hall")], [Area("Hall")])


def test_the_file_wins_then_home_assistant_then_the_broker():
    merged = merge([MQTT_HOME, HA_HOME, FILE_HOME])  # order given does not matter
    by_name = {e.name.casefold(): e for e in merged.inventory.entities}
    assert set(by_name) == {"desk lamp", "oven", "hall light"}  # united
    lamp = by_name["desk lamp"]
    assert (lamp.name, lamp.domain, lamp.area) == ("Desk Lamp", "light", "Study")  # the file's
    assert merged.origin("name", "DESK LAMP").source == FILE
    assert merged.origin("name", "Oven").id == "switch.oven"
    assert merged.origin("name", "Hall Light").source == MQTT_DISCOVERY
    # areas are one per name: the file's spelling of Study, Home Assistant's Kitchen
    areas = {a.name: a for a in merged.inventory.areas}
    assert set(areas) == {"Study", "kitchen", "Hall"}
    assert by_name["oven"].area == "Study"  # the merged home's spelling of its area
    assert areas["kitchen"].floor == "Ground Floor"
    assert merged.origin("area", "Study").source == FILE
    assert merged.summary() == {FILE: {"names": 1, "areas": 1, "floors": 0},
                                HOME_ASSISTANT: {"names": 1, "areas": 1, "floors": 1},
                                MQTT_DISCOVERY: {"names": 1, "areas": 1, "floors": 0}}
    assert merged.given[HOME_ASSISTANT] == {"names": 2, "areas": 2, "floors": 1, "skipped": 0}


def test_json_shows_every_name_with_its_source_and_id():
    out = merge([FILE_HOME, HA_HOME]).to_dict()
    oven = next(e for e in out["entities"] if e["name"] == "Oven")
    assert oven == {"name": "Oven", "domain": "switch", "area": "Study", "device_class": None,
                    "aliases": [], "source": HOME_ASSISTANT, "id": "switch.oven"}
    assert out["floors"][0]["aliases"] == ["downstairs"]
    assert set(out["sources"]) == {FILE, HOME_ASSISTANT}


def test_a_source_home_names_a_known_source():
    with pytest.raises(ValueError):
        SourceHome("somewhere", Inventory())
    assert merge([]).inventory.entities == [] and not merge([]).inventory


def test_the_home_file_as_a_source(tmp_path):
    path = tmp_path / "home.yaml"
    path.write_text("areas: [{name: Study}]\nentities:\n"
                    "  - {name: Desk Lamp, domain: light, area: Study}\n")
    home = file_home(path)
    assert home.ids[key("name", "desk lamp")] == "entities[0]"
    assert home.ids[key("area", "Study")] == "areas[0]"
    (tmp_path / "bad.yaml").write_text("entities: [{name: X, domain: toaster}]\n")
    with pytest.raises(HomeError, match="domain"):
        file_home(tmp_path / "bad.yaml")


def test_the_engine_answers_for_the_merged_home_and_falls_back_to_the_shipped_one(engine):
    live = LiveHome()
    live.attach(engine)
    assert not engine.home.user and set(live.summary()) == {SHIPPED}
    assert live.update(MQTT_HOME) and live.generation == 1
    assert engine.home.user and engine.home.inventory is live.merged.inventory
    assert not live.update(MQTT_HOME) and live.generation == 1  # nothing new: no swap
    assert live.update(_home(ZIGBEE2MQTT, [Entity("Hall Light", "light")])) is False
    assert live.update(_home(MQTT_DISCOVERY))  # discovery's names are gone...
    assert live.merged.origin("name", "Hall Light").source == ZIGBEE2MQTT  # ...not Z2M's
    assert live.update(_home(ZIGBEE2MQTT))  # nothing left from any source
    assert not engine.home.user and set(live.summary()) == {SHIPPED}
    other = IntentEngine.load()
    live.update(FILE_HOME)
    assert live.attach(other) is other and other.home.inventory is live.merged.inventory


def test_set_home_is_atomic_while_another_thread_parses(engine):
    """Homes swapped 200 times while another thread parses: no parse fails, and each names
    the lamp of one whole home (a smoke test: the race window is narrow)."""
    a = Inventory([], [Area("Study")], [Entity("Desk Lamp", "light", "Study")])
    b = Inventory([], [Area("Attic")], [Entity("Bedside Lamp", "light", "Attic")])
    engine.set_home(a)
    stop = threading.Event()
    errors, seen = [], set()

    def parse_forever():
        while not stop.is_set():
            try:
                r = engine.parse("turn on the desk lamp and the bedside lamp")
                seen.add(tuple(s.value for s in r.slots if s.name == "name"))
            except Exception as err:  # noqa: BLE001 (the test reports any)
                errors.append(err)
                return

    thread = threading.Thread(target=parse_forever)
    thread.start()
    try:
        for i in range(200):
            engine.set_home(b if i % 2 else a)
    finally:
        stop.set()
        thread.join(30)
    engine.set_home(None)
    assert not errors
    # each parse named the lamp of the home it saw, never both homes' lamps
    assert seen and all(len(set(names)) <= 1 for names in seen)
    assert all(set(names) <= {"Desk Lamp"} or set(names) <= {"Bedside Lamp"} for names in seen)
