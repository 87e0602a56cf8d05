"""Home Assistant's WebSocket API (`edge_slm.daemon.ha_client`) against a server on loopback
that speaks its documented messages (tests/ha_fixtures.py), with a real engine on the shipped
bundle: the home is read once; followed, a name resolves after a registry update; a refused
token is a clear error that never repeats the token; Home Assistant going away is survived
(the last home keeps answering) and reconnected to."""

from __future__ import annotations

import logging
import time

import pytest
from ha_fixtures import HomeAssistantServer, add_exposed_light

from edge_slm.daemon.backoff import Backoff
from edge_slm.daemon.ha_client import (HaAuthError, HaError, HomeAssistantFollower,
                                       read_home_assistant)
from edge_slm.daemon.home_sources import HOME_ASSISTANT
from edge_slm.daemon.live_home import LiveHome
from edge_slm.errors import EdgeSlmError
from edge_slm.runtime.engine import IntentEngine

TOKEN = "eyJhbGciOiJIUzI1NiJ9.test-token-never-logged"
WAIT_S = 20.0


@pytest.fixture(scope="module")
def engine():
    return IntentEngine.load()


def wait_until(done, timeout_s=WAIT_S):
    """Poll `done()` until it holds; fail the test when it does not within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            pytest.fail("the condition did not hold in time")
        time.sleep(0.01)


def _names(result):
    return [s.value for s in result.slots if s.name == "name"]


def test_the_home_is_read_once_with_the_documented_exchange():
    with HomeAssistantServer(TOKEN) as ha:
        home = read_home_assistant(ha.url, TOKEN, timeout_s=WAIT_S)
    assert home.source == HOME_ASSISTANT
    assert {e.name for e in home.inventory.entities} >= {"Desk Lamp", "Garage Door"}
    assert ha.received[0] == {"type": "auth", "access_token": TOKEN}
    kinds = [m["type"] for m in ha.received[1:]]
    assert {"config/area_registry/list", "config/floor_registry/list",
            "config/device_registry/list", "config/entity_registry/list", "get_states",
            "homeassistant/expose_entity/list", "config/entity_registry/get_entries"} \
        <= set(kinds)
    ids = [m["id"] for m in ha.received[1:]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # increasing, as HA requires
    asked = next(m for m in ha.received if m["type"] == "config/entity_registry/get_entries")
    assert "light.desk_lamp" in asked["entity_ids"]
    assert "switch.coffee_maker" not in asked["entity_ids"]  # only the exposed ones


def test_an_invalid_token_is_a_clear_error_that_does_not_repeat_it(caplog):
    caplog.set_level(logging.DEBUG)
    with HomeAssistantServer("the-right-token") as ha:
        with pytest.raises(HaAuthError, match="refused the access token") as info:
            read_home_assistant(ha.url, TOKEN, timeout_s=WAIT_S)
    assert "long-lived access token" in str(info.value)
    assert TOKEN not in str(info.value) and TOKEN not in caplog.text


def test_an_older_home_assistant_without_floors_still_gives_a_home():
    with HomeAssistantServer(TOKEN) as ha:
        del ha.data["config/floor_registry/list"]  # answered with unknown_command
        home = read_home_assistant(ha.url, TOKEN, timeout_s=WAIT_S)
    assert home.inventory.floors == [] and home.inventory.entities


def test_a_result_of_the_wrong_shape_is_skipped_and_nobody_listening_is_an_error():
    with HomeAssistantServer(TOKEN) as ha:
        ha.data["get_states"] = None  # a result all the same: the mapping skips it
        home = read_home_assistant(ha.url, TOKEN, timeout_s=WAIT_S)
        url = ha.url
    assert home.inventory.entities  # named from the registries, without states
    with pytest.raises(EdgeSlmError, match="cannot connect"):
        read_home_assistant(url, TOKEN, timeout_s=WAIT_S)  # the server is gone


def test_a_command_home_assistant_refuses_is_an_haerror():
    with HomeAssistantServer(TOKEN) as ha:
        del ha.data["homeassistant/expose_entity/list"]
        with pytest.raises(HaError, match="expose_entity/list"):
            read_home_assistant(ha.url, TOKEN, timeout_s=WAIT_S)


def test_followed_a_name_resolves_after_a_registry_update(engine):
    live = LiveHome()
    live.attach(engine)
    with HomeAssistantServer(TOKEN) as ha:
        follower = HomeAssistantFollower(ha.url, TOKEN, live, settle_s=0.05)
        follower.start()
        try:
            assert live.wait_for_change(0, WAIT_S), follower.last_error
            assert _names(engine.parse("turn on the desk lamp")) == ["Desk Lamp"]
            assert _names(engine.parse("turn on the reading light")) == ["Desk Lamp"]  # alias
            assert _names(engine.parse("turn on the bedside lamp")) == []  # not in the home
            generation = live.generation
            ha.change(lambda r: add_exposed_light(r, "light.bedside", "Bedside Lamp", "study"),
                      "entity_registry_updated")
            assert live.wait_for_change(generation, WAIT_S)
            assert _names(engine.parse("turn on the bedside lamp")) == ["Bedside Lamp"]
            assert live.merged.origin("name", "Bedside Lamp").id == "light.bedside"
        finally:
            follower.stop()
    assert follower.reads == 2 and follower.connections == 1


def test_home_assistant_going_away_is_survived_and_reconnected(engine, caplog):
    caplog.set_level(logging.INFO)
    live = LiveHome()
    live.attach(engine)
    with HomeAssistantServer(TOKEN) as ha:
        follower = HomeAssistantFollower(ha.url, TOKEN, live,
                                         backoff=Backoff(min_s=0.05, max_s=0.2), settle_s=0.05)
        follower.start()
        try:
            assert live.wait_for_change(0, WAIT_S)
            assert follower.connected.wait(WAIT_S)
            ha.restart()  # every connection dropped; the port answers again at once
            # meanwhile the engine answers for the last home
            assert _names(engine.parse("turn on the desk lamp")) == ["Desk Lamp"]
            generation = live.generation
            ha.change(lambda r: add_exposed_light(r, "light.bedside", "Bedside Lamp", "study"),
                      "area_registry_updated")
            # the event went to nobody if the follower was not back yet; its reconnection
            # reads the home again anyway
            assert live.wait_for_change(generation, WAIT_S)
            assert _names(engine.parse("turn on the bedside lamp")) == ["Bedside Lamp"]
        finally:
            follower.stop()
    assert follower.connections >= 2 and follower.last_error
    assert TOKEN not in caplog.text


def test_a_refused_token_keeps_the_follower_retrying_without_a_home(engine, caplog):
    live = LiveHome()
    live.attach(engine)
    with HomeAssistantServer("another-token") as ha:
        follower = HomeAssistantFollower(ha.url, TOKEN, live,
                                         backoff=Backoff(min_s=0.05, max_s=0.1))
        follower.start()
        try:
            wait_until(lambda: sum(m["type"] == "auth" for m in ha.received) >= 2)
        finally:
            follower.stop()
    assert "refused the access token" in (follower.last_error or "")
    assert follower.connections == 0 and live.generation == 0
    assert set(live.summary()) == {"shipped"}  # the bundle's home still answers
    assert TOKEN not in caplog.text
