"""Resolution of place spans against the home's names."""

from __future__ import annotations

from edge_slm.runtime.resolve import HomeNames, resolve_spans

HOME = HomeNames.build(
    names=["man cave tv", "deadbolt", "spot 3", "tv", "star projector", "Kitchen Light"],
    areas=["man cave", "gym", "kitchen", "playroom", "living room"],
    floors=["second floor"],
)


def spans_text(text, spans):
    return [(slot, text[a:b]) for slot, a, b in spans]


def test_area_and_name_that_together_are_a_device_merge():
    text = "so unmute man cave tv!"
    got = resolve_spans(text, [("area", 10, 18), ("name", 19, 21)], HOME)
    assert spans_text(text, got) == [("name", "man cave tv")]


def test_two_known_names_side_by_side_are_left_alone():
    text = "tv kitchen light"
    spans = [("name", 0, 2), ("name", 3, 16)]
    assert resolve_spans(text, spans, HOME) == spans


def test_device_word_after_a_known_name_is_trimmed():
    text = "is deadbolt lock on"
    assert spans_text(text, resolve_spans(text, [("name", 3, 16)], HOME)) == \
        [("name", "deadbolt")]


def test_unknown_name_made_of_an_area_and_a_device_word_is_the_area():
    text = "did we leave gym light off"
    assert spans_text(text, resolve_spans(text, [("name", 13, 22)], HOME)) == [("area", "gym")]


def test_area_then_known_device_splits():
    text = "switch playroom star projector off"
    assert spans_text(text, resolve_spans(text, [("name", 7, 30)], HOME)) == \
        [("area", "playroom"), ("name", "star projector")]


def test_name_grows_to_a_neighbouring_word_when_that_makes_it_known():
    text = "turn on spot 3 now"
    assert spans_text(text, resolve_spans(text, [("name", 8, 12)], HOME)) == \
        [("name", "spot 3")]


def test_relabels_by_what_the_home_calls_it():
    text = "turn on living room and the floor second floor"
    got = resolve_spans(text, [("name", 8, 19), ("area", 34, 46)], HOME)
    assert spans_text(text, got) == [("area", "living room"), ("floor", "second floor")]


def test_case_and_plural_are_ignored_and_other_slots_pass_through():
    text = "set KITCHEN LIGHTS to 50 percent"
    spans = [("name", 4, 18), ("brightness", 22, 24)]
    assert resolve_spans(text, spans, HOME) == spans


def test_unknown_words_and_an_empty_home_change_nothing():
    text = "turn on the garden gnome"
    spans = [("name", 12, 24)]
    assert resolve_spans(text, spans, HOME) == spans
    assert resolve_spans("man cave tv", [("area", 0, 8), ("name", 9, 11)], HomeNames()) == \
        [("area", 0, 8), ("name", 9, 11)]


def test_strict_drops_places_the_home_does_not_have():
    text = "did our flood detector detect anything in the gym"
    spans = [("name", 8, 22), ("area", 46, 49)]
    assert spans_text(text, resolve_spans(text, spans, HOME)) == \
        [("name", "flood detector"), ("area", "gym")]
    assert spans_text(text, resolve_spans(text, spans, HOME, strict=True)) == [("area", "gym")]


def test_strict_keeps_misspellings_and_relabels_known_places():
    text = "is the star projecter on in the playroom"
    spans = [("name", 7, 21), ("name", 32, 40)]
    got = resolve_spans(text, spans, HOME, strict=True)
    assert spans_text(text, got) == [("name", "star projecter"), ("area", "playroom")]
    other = [("state", 23, 25)]  # not a place: never dropped
    assert resolve_spans(text, other, HOME, strict=True) == other


def test_in_the_users_home_a_device_class_said_as_a_name_is_that_entity():
    home = HomeNames.build(names=["Sliding Door", "Curtain Left"], areas=["Kitchen"])
    text = "close the sliding door"
    spans = [("device_class", 10, 22)]
    assert spans_text(text, resolve_spans(text, spans, home, names_win=True)) == \
        [("name", "sliding door")]
    text = "close the curtain left"
    spans = [("device_class", 10, 17)]
    assert spans_text(text, resolve_spans(text, spans, home, names_win=True)) == \
        [("name", "curtain left")]
    # the shipped fallback home is no authority: the class stays a class
    assert resolve_spans(text, spans, home, strict=True) == spans


def test_free_text_slots_pass_untouched():
    home = HomeNames.build(names=["Kettle"], areas=["Kitchen"])
    text = "start a timer named tea for five minutes"
    spans = [("name", 20, 23)]
    assert resolve_spans(text, spans, home, strict=True) == []
    assert resolve_spans(text, spans, home, strict=True, free=["name"]) == spans


def test_an_area_and_a_cover_word_are_the_area_and_the_class():
    text = "close the playroom blinds"
    got = resolve_spans(text, [("name", 10, 25)], HOME)
    assert spans_text(text, got) == [("area", "playroom"), ("device_class", "blinds")]


def test_in_the_users_home_a_place_and_a_class_that_make_a_name_are_it():
    home = HomeNames.build(names=["Bedroom Curtain"], areas=["Bedroom"])
    text = "set bedroom curtain to 50%"
    spans = [("area", 4, 11), ("device_class", 12, 19)]
    assert spans_text(text, resolve_spans(text, spans, home, names_win=True)) == \
        [("name", "bedroom curtain")]
    text = "open the bedroom curtains"
    spans = [("area", 9, 16), ("device_class", 17, 25)]
    assert resolve_spans(text, spans, home, names_win=True) == spans


def test_a_complete_home_without_places_drops_every_place():
    text = "play the office"
    spans = [("area", 9, 15)]
    assert resolve_spans(text, spans, HomeNames(), strict=True) == []
    assert resolve_spans(text, spans, HomeNames()) == spans


def test_name_grows_over_a_value_read_as_its_last_word():
    """"salt lamp" + brightness "1" of "set salt lamp 1 to 63%": the longer name of the home
    wins, even beside a shorter one, and the value goes."""
    home = HomeNames.build(names=["salt lamp 1", "salt lamp", "light 3"])
    text = "set salt lamp 1 to 63 percent"
    spans = [("name", 4, 13), ("brightness", 14, 15), ("brightness", 19, 21)]
    assert spans_text(text, resolve_spans(text, spans, home)) == \
        [("name", "salt lamp 1"), ("brightness", "63")]
    # no longer name of the home: the value stands
    text = "set salt lamp to 1 percent"
    spans = [("name", 4, 13), ("brightness", 17, 18)]
    assert resolve_spans(text, spans, home) == spans
    other = HomeNames.build(names=["salt lamp"])
    text = "set salt lamp 1 to 63 percent"
    assert spans_text(text, resolve_spans(text, [("name", 4, 13), ("brightness", 14, 15)],
                                          other)) == [("name", "salt lamp"),
                                                      ("brightness", "1")]
