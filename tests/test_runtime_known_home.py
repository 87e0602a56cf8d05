"""The home indexed for parsing: spellings, domains, names said word for word."""

from __future__ import annotations

from edge_slm.home import inventory_from_dict
from edge_slm.runtime.known_home import KnownHome

HOME = KnownHome(inventory_from_dict({
    "floors": [{"name": "First Floor"}],
    "areas": [{"name": "Living Room", "aliases": ["lounge"]}],
    "entities": [{"name": "Play Corner", "domain": "light"},
                 {"name": "Play Corner Speaker", "domain": "media_player"},
                 {"name": "Home", "domain": "weather"},
                 {"name": "TV", "domain": "media_player"}]}), user=True)


def found(slot, text, taken=(), domains=None):
    span = HOME.find(slot, text, list(taken), domains)
    return None if span is None else text[span[1]:span[2]]


def test_spelling_and_domains():
    assert HOME.canonical("area", "the lounge") == "Living Room"
    assert HOME.canonical("name", "play corner") == "Play Corner"
    assert HOME.domain_of("play corner speaker") == "media_player"
    assert HOME.domain_of("kitchen") is None


def test_names_said_word_for_word_longest_first():
    assert found("name", "turn on play corner lights") == "play corner"
    assert found("name", "mute the play corner speaker") == "play corner speaker"
    assert found("name", "pause TV") == "TV"
    assert found("area", "lights on in the living room") == "living room"
    assert found("floor", "everything on the first floor") == "first floor"
    assert found("name", "turn on the lights") is None


def test_only_where_no_span_is_and_only_of_the_domains_asked():
    text = "turn on play corner lights"
    assert found("name", text, taken=[(8, 12)]) is None  # "play" is already a slot
    assert found("name", "is everyone home", domains=["person", "light"]) is None
    assert found("name", "is everyone home") == "home"
    # a name inside a longer name of another domain is not that name
    assert found("name", "mute the play corner speaker", domains=["light"]) is None
    assert found("name", "mute the play corner speaker", domains=["media_player"]) == \
        "play corner speaker"
