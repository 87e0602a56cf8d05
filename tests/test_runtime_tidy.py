"""Spans tidied for the intent they answer."""

from __future__ import annotations

from edge_slm.runtime.tidy import by_unit, for_intent, split_media_class, trim_closed


def said(text, spans):
    return [(slot, text[a:b]) for slot, a, b in spans]


def test_slots_the_intent_never_takes_and_duration_twins():
    spans = [("hours", 0, 1), ("area", 2, 9), ("color", 10, 13)]
    assert for_intent(spans, ["start_hours", "area"]) == [("start_hours", 0, 1),
                                                          ("area", 2, 9)]
    assert for_intent(spans, None) == spans


def test_the_unit_after_a_number():
    text = "timer for 1 and a half hours and 5-minute"
    assert by_unit(text, "minutes", 11) == "hours"
    assert by_unit(text, "start_hours", 35) == "start_minutes"
    assert by_unit("add 5 to the timer", "minutes", 5) == "minutes"


def test_closed_lists_end_where_their_phrase_does():
    text = "are all the fans off on the first floor"
    got = trim_closed(text, [("state", 17, 23)], {"state": ["off", "on"]})
    assert said(text, got) == [("state", "off")]
    free = trim_closed(text, [("item", 17, 23)], {"state": ["off"]})
    assert said(text, free) == [("item", "off on")]


def test_a_search_that_starts_with_a_media_class():
    classes = ["movie", "tv show", "artist"]
    for text, want in (("play the movie Inception", [("media_class", "movie"),
                                                     ("search_query", "Inception")]),
                       ("play tv show Breaking Bad", [("media_class", "tv show"),
                                                      ("search_query", "Breaking Bad")]),
                       ("play The Office", [("search_query", "The Office")]),
                       ("play the tv show Breaking Bad", [("media_class", "tv show"),
                                                          ("search_query", "Breaking Bad")])):
        start = len("play ")
        assert said(text, split_media_class(text, [("search_query", start, len(text))],
                                            classes)) == want, text
    text = "play the song Bohemian Rhapsody"
    got = split_media_class(text, [("search_query", 14, len(text))], ["song"])
    assert said(text, got) == [("media_class", "song"), ("search_query", "Bohemian Rhapsody")]
