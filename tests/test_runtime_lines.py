"""Lines in, one answer out (`edge_slm.runtime.lines`), with the shipped engine: a plain text
line answers as its JSON query does, the line's context wins over the caller's area, and every
bad line is one error object with its number."""

from __future__ import annotations

import json

import pytest

from edge_slm.runtime.engine import IntentEngine
from edge_slm.runtime.lines import answer_line, answer_query, answer_text

TEXT = "turn off the kitchen lights"


@pytest.fixture(scope="module")
def engine():
    return IntentEngine.load()


def test_a_plain_text_line_answers_as_its_query(engine):
    query = json.dumps({"text": TEXT}).encode() + b"\n"
    expected = engine.parse(TEXT).to_dict()
    assert answer_line(engine, query, 1) == expected
    assert answer_line(engine, b"  " + TEXT.encode() + b" \n", 1, plain_text=True) == expected
    assert answer_line(engine, query, 1, plain_text=True) == expected
    assert answer_text(engine, TEXT, 1) == expected
    # without plain_text, a text line is not JSON
    assert answer_line(engine, TEXT.encode(), 7)["error"].startswith("not JSON")


def test_the_lines_context_gives_the_area(engine):
    text = "turn on the lights"
    said = engine.parse(text, area="Kitchen").to_dict()
    query = {"text": text, "context": {"area": "Kitchen"}}
    assert answer_query(engine, query, 1) == said
    assert answer_query(engine, {"text": text}, 1, area="Kitchen") == said
    assert answer_query(engine, {"text": text, "context": None}, 1) == engine.parse(text).to_dict()
    assert answer_text(engine, text, 1, area="Kitchen") == said


@pytest.mark.parametrize("raw, error", [
    (b"\xff\xfe\n", "not UTF-8: "),
    (b" \t\n", "empty line"),
    (b"{not json\n", "not JSON: "),
    (b'["text"]\n', 'expected an object with "text"'),
    (b'{"text": "hi", "context": 3}\n', '"context" must be an object'),
    (b'{"text": "hi", "context": {"area": " "}}\n', 'context "area" must be a non-empty string'),
    (b'{"text": 12}\n', "text must be a string"),
    (b'{"text": "turn on \\ud83d lights"}\n', "text has a lone UTF-16 surrogate (\\ud83d at 8)"),
    (b'{"text": "hi", "context": {"area": "K\\udc00"}}\n',
     'context "area" has a lone UTF-16 surrogate'),
])
def test_a_bad_line_is_one_error_object_with_its_number(engine, raw, error):
    # a plain text line is a query only when it starts with {
    for plain_text in (False, True) if not raw.startswith(b"[") else (False,):
        answer = answer_line(engine, raw, 5, plain_text=plain_text)
        assert set(answer) == {"error", "line"} and answer["line"] == 5, answer
        assert answer["error"].startswith(error), answer


def test_a_surrogate_pair_is_one_character_and_fine(engine):
    answer = answer_line(engine, b'{"text": "turn on the lights \\ud83d\\ude00"}\n', 1)
    assert answer["text"].endswith("\U0001f600") and "intent" in answer


def test_to_line_never_gives_text_that_cannot_be_written(engine):
    """Whatever an answer holds, its line encodes as UTF-8 (a lone surrogate escaped)."""
    from edge_slm.runtime.lines import to_line

    line = to_line({"error": "x\ud800", "line": 1})
    assert json.loads(line) == {"error": "x\ud800", "line": 1} and line.endswith("\n")
    line.encode("utf-8")
    assert to_line({"text": "Küche"}) == '{"text": "Küche"}\n'
