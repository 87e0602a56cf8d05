"""Spans tidied for the intent they answer."""

from __future__ import annotations

from edge_slm.runtime.tidy import (by_unit, extend_media_class, for_intent, grow_closed,
                                   half_unit, join_free, search_after_play, split_media_class,
                                   timer_starts, trim_closed)


def said(text, spans):
    return [(slot, text[a:b]) for slot, a, b in spans]


def test_slots_the_intent_never_takes_and_duration_twins():
    spans = [("hours", 0, 1), ("area", 2, 9), ("color", 10, 13)]
    assert for_intent(spans, ["start_hours", "area"]) == [("start_hours", 0, 1),
                                                          ("area", 2, 9)]
    assert for_intent(spans, None) == spans


def test_a_level_read_as_another_intents_is_the_intents_own():
    """"turn bedroom to 50%" answered as a light setting with the 50 read as a volume level:
    it is the brightness. An intent taking no level, or two, drops it as before."""
    spans = [("area", 5, 12), ("volume_level", 16, 18)]
    want = [("area", 5, 12), ("brightness", 16, 18)]
    assert for_intent(spans, ["area", "brightness", "color"]) == want
    assert for_intent(spans, ["area", "name"]) == [("area", 5, 12)]
    assert for_intent([("percentage", 0, 2)], ["volume_level", "position"]) == []


def test_the_unit_after_a_number():
    text = "timer for 1 and a half hours and 5-minute"
    assert by_unit(text, "minutes", 11) == "hours"
    assert by_unit(text, "start_hours", 35) == "start_minutes"
    assert by_unit("add 5 to the timer", "minutes", 5) == "minutes"


def test_a_half_after_a_whole_number_is_the_next_smaller_unit():
    def at(text, word, slot="hours"):
        a = text.index(word, text.index(" and ")) if " and " in text else text.index(word)
        return half_unit(text, slot, a, a + len(word))

    assert at("timer for 70 and 1/2 hours", "1/2") == "minutes"
    assert at("set a timer for 2 and a half hours", "half") == "minutes"
    assert at("remove 84 and a 1/2 minutes off my timer", "1/2", "minutes") == "seconds"
    assert at("from the 1 and a half hour timer", "half", "start_hours") == "start_minutes"
    # alone before its unit: the same ("a half hour" is 30 minutes, as "half an hour" is)
    assert at("half an hour timer", "half", "hours") == "minutes"
    assert at("wake me up in a 1/2 hour", "1/2") == "minutes"
    assert at("a half-minute timer", "half", "start_minutes") == "start_seconds"
    # no unit after it, a unit with nothing smaller: the tagger's slot
    assert at("set a timer for a minute and a half", "half", "seconds") is None
    assert at("half the lights", "half", "minutes") is None
    assert at("timer for 5 and a half seconds", "half", "seconds") is None
    assert at("timer for 5 and 30 minutes", "30", "minutes") is None
    # the whole number before it is the unit said after the half
    assert by_unit("timer for 2 and 1/2 hours", "minutes", 11) == "hours"
    assert by_unit("timer for 2 and a 1/2 minutes", "hours", 11) == "minutes"


def test_closed_lists_end_where_their_phrase_does():
    text = "are all the fans off on the first floor"
    got = trim_closed(text, [("state", 17, 23)], {"state": ["off", "on"]})
    assert said(text, got) == [("state", "off")]
    free = trim_closed(text, [("item", 17, 23)], {"state": ["off"]})
    assert said(text, free) == [("item", "off on")]


def test_closed_lists_go_on_to_the_end_of_their_phrase():
    phrases = {"temperature": {"day light", "candle light", "warm white"}, "state": {"on"}}
    text = "set the lamp to day light please"
    day = text.index("day")
    assert said(text, grow_closed(text, [("temperature", day, day + 3)], phrases)) == \
        [("temperature", "day light")]
    # a phrase already, another slot's words next, no phrase within two words: as tagged
    text = "set the lamp to warm white light"
    warm = text.index("warm")
    assert said(text, grow_closed(text, [("temperature", warm, warm + 10)], phrases)) == \
        [("temperature", "warm white")]
    text = "turn the candle light on"
    spans = [("temperature", 9, 15), ("name", 16, 21)]
    assert grow_closed(text, spans, phrases) == spans
    text = "the candle is nice light"
    assert grow_closed(text, [("temperature", 4, 10)], phrases) == [("temperature", 4, 10)]


def test_pieces_of_one_free_text_slot_a_word_apart_are_one():
    text = "add make a doctor's appointment to the packing list"
    spans = [("item", 4, 8), ("item", 11, 31), ("name", 39, 46)]
    assert said(text, join_free(text, spans, {"item"})) == [
        ("item", "make a doctor's appointment"), ("name", "packing")]
    # closed lists and places stay apart, and so do pieces with a slot or two words between
    assert join_free(text, spans, set()) == spans
    apart = [("item", 4, 8), ("name", 9, 10), ("item", 11, 31)]
    assert join_free(text, apart, {"item"}) == apart
    text = "add apples to my trader joes list"
    far = [("item", 4, 10), ("item", 17, 23)]
    assert join_free(text, far, {"item"}) == far


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


TIMER_CHANGE = ["hours", "minutes", "seconds", "start_hours", "start_minutes", "start_seconds"]


def at(text, slot, phrase):
    a = text.index(phrase)
    return (slot, a, a + len(phrase))


def test_a_duration_that_names_the_timer_is_its_start():
    text = "remove 1 hour from the 1 hour timer"
    spans = [("hours", 7, 8), ("hours", 23, 24)]  # both "1"s
    got = timer_starts(text, spans, TIMER_CHANGE)
    assert [s for s, _, _ in got] == ["hours", "start_hours"]
    text = "add 5 minutes to my 10-minute timer"
    spans = [("minutes", 4, 5), at(text, "minutes", "10")]
    assert timer_starts(text, spans, TIMER_CHANGE)[1] == at(text, "start_minutes", "10")
    # the intent takes no start_ slot, or the number is not the timer's name: left alone
    assert timer_starts(text, spans, ["minutes"]) == spans
    text = "add 10 minutes to the timer"
    assert timer_starts(text, [at(text, "minutes", "10")], TIMER_CHANGE) == \
        [at(text, "minutes", "10")]


def test_a_media_class_completed_by_the_search_after_it():
    text = "play the tv show Breaking Bad"
    spans = [at(text, "media_class", "tv"), at(text, "search_query", "show Breaking Bad")]
    got = extend_media_class(text, spans, ["tv show", "movie", "tv"])
    assert said(text, got) == [("media_class", "tv show"), ("search_query", "Breaking Bad")]
    # a search that does not complete a class stays whole
    text = "play the movie Show Boat"
    spans = [at(text, "media_class", "movie"), at(text, "search_query", "Show Boat")]
    assert extend_media_class(text, spans, ["tv show", "movie"]) == spans


def test_a_search_is_what_follows_play():
    text = "play The Office on the TV"
    got = search_after_play(text, [at(text, "search_query", "Office"), at(text, "name", "TV")])
    assert said(text, got) == [("search_query", "The Office"), ("name", "TV")]
    # the article before a media class is not the search; a search of articles is none
    text = "play the album Queen"
    spans = [at(text, "search_query", "the"), at(text, "media_class", "album"),
             at(text, "search_query", "Queen")]
    assert said(text, search_after_play(text, spans)) == [("media_class", "album"),
                                                          ("search_query", "Queen")]
    # not after "play": the article stays outside ("put on the workout playlist")
    text = "put on the workout playlist"
    spans = [at(text, "search_query", "workout")]
    assert search_after_play(text, spans) == spans
