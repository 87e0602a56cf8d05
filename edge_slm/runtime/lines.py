"""Lines in, one answer object out: what `edge-slm parse --jsonl` and `serve --serial` share.

    answer_line(engine, b'{"text": "turn on the lights", "context": {"area": "Kitchen"}}\\n', 1)
    answer_line(engine, b"turn off the kitchen lights\\n", 2, plain_text=True)

A line is a JSON query (`{"text": ..., "context": {"area": ...}}`, the context optional) or,
with `plain_text`, any line that does not start with `{` is the text itself. The answer is the
parse (`ParseResult.to_dict()`), or `{"error": ..., "line": n}` for a line that is not UTF-8,
empty, not JSON, not a query, a text or area with a lone UTF-16 surrogate (a JSON escape of
half a pair: no Unicode text, which no UTF-8 output can write), or a text the engine refuses.
`to_line` writes an answer as its output line. Nothing here reads or writes: the callers own
their streams and ports.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Optional

from .engine import InputError, IntentEngine

Answer = Dict[str, Any]
"""One answer object: a parse, or an error with the line's number."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def error(message: str, n: int) -> Answer:
    """The error object of line `n`."""
    return {"error": message, "line": n}


def answer_line(engine: IntentEngine, raw: bytes, n: int, area: Optional[str] = None,
                plain_text: bool = False) -> Answer:
    """The answer to line `n` (`raw`, its LF included or not; `area`: the area when the line's
    own `context` gives none; `plain_text`: a line not starting with `{` is the text)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return error(f"not UTF-8: {err}", n)
    if not line.strip():
        return error("empty line", n)
    if plain_text and not line.lstrip().startswith("{"):
        return answer_text(engine, line.strip(), n, area)
    try:
        query = json.loads(line)
    except ValueError as err:
        return error(f"not JSON: {err}", n)
    except RecursionError:  # the decoder recurses per nested array or object
        return error("not JSON: nested too deeply", n)
    return answer_query(engine, query, n, area)


def answer_query(engine: IntentEngine, query: object, n: int, area: Optional[str] = None) -> Answer:
    """The answer to a decoded query (`{"text": ..., "context": {"area": ...}}`)."""
    if not isinstance(query, dict) or "text" not in query:
        return error('expected an object with "text"', n)
    context = query.get("context", {})
    if context is None:
        context = {}
    if not isinstance(context, dict):
        return error('"context" must be an object such as {"area": "Kitchen"}', n)
    return answer_text(engine, query["text"], n, context.get("area", area))


def answer_text(engine: IntentEngine, text: object, n: int, area: Optional[str] = None) -> Answer:
    """The answer to a text heard in `area` (None: the satellite's area is unknown)."""
    if area is not None and not (isinstance(area, str) and area.strip()):
        return error('context "area" must be a non-empty string', n)
    for what, value in (("text", text), ('context "area"', area)):
        found = _SURROGATE.search(value) if isinstance(value, str) else None
        if found:
            return error(f"{what} has a lone UTF-16 surrogate (\\u{ord(found.group()):04x} at "
                         f"{found.start()}): not Unicode text", n)
    try:
        return engine.parse(text, area=area).to_dict()
    except InputError as err:
        return error(str(err), n)


def to_line(answer: Answer) -> str:
    """`answer` as one JSON line (UTF-8 as it is; a lone surrogate, should one ever be in
    it, escaped), so that writing it can never fail."""
    line = json.dumps(answer, ensure_ascii=False)
    if _SURROGATE.search(line):
        line = json.dumps(answer)
    return line + "\n"
