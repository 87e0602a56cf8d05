"""Hypothesis strategies the fuzz tests share: JSON values of every kind (deep, huge numbers,
lone surrogates, NaN spelled out), objects built from a message's own keys, JSON payloads
mangled as bytes, and byte mutations of a valid file.

    from fuzz_strategies import json_payloads, mutated

How many examples each target gets is the profile's (tests/conftest.py: "ci", "soak").
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from hypothesis import strategies as st

NASTY_TEXT = ("", " ", "\x00", "\ud800", "\udfff", "\u202e", "é", "\U0001f4a9", "a" * 5000,
              "+", "#", "/", "$share/x/y", "edge-slm/+/query", "hermes/nlu/query", "\n",
              "..", "../../etc/passwd", "~nobody-here/x", "NaN", "1e999")
"""Strings that have broken parsers before: NUL, lone surrogates, wildcards, long ones."""

texts = st.one_of(st.text(max_size=40), st.sampled_from(NASTY_TEXT))
"""Short text, or one of NASTY_TEXT."""

numbers = st.one_of(
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 2 ** 31, 2 ** 64, 10 ** 30, 1e308, -0.0, 5e-324]))
"""Numbers JSON can carry."""

scalars = st.one_of(st.none(), st.booleans(), numbers, texts,
                    st.sampled_from([float("nan"), float("inf")]))
"""Any JSON scalar (and NaN and Infinity, which `raw_json` writes as Python's json does)."""

json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12)
"""Any JSON value, a few levels deep."""


def objects_with(keys: Sequence[str]) -> st.SearchStrategy:
    """JSON objects holding some of `keys` (a message's own) with any values, and maybe a
    stranger key."""
    return st.builds(lambda known, extra: {**extra, **known},
                     st.dictionaries(st.sampled_from(list(keys)), json_values, max_size=len(keys)),
                     st.dictionaries(texts, json_values, max_size=2))


def raw_json(value: Any) -> bytes:
    """`value` as JSON bytes, the way a careless client might write it (NaN allowed, lone
    surrogates escaped)."""
    return json.dumps(value, allow_nan=True).encode("ascii")


@st.composite
def _spliced(draw: Any, base: bytes) -> bytes:
    """`base` with a slice replaced by random bytes, or cut short."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        cut = draw(st.integers(0, 8))
        data[at:at + cut] = draw(st.binary(max_size=8))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))):]
    return bytes(data)


def mutated(base: bytes) -> st.SearchStrategy:
    """Byte mutations of a valid input: slices replaced, bytes flipped, the end cut off."""
    flips = st.lists(st.tuples(st.integers(0, max(0, len(base) - 1)), st.integers(1, 255)),
                     min_size=1, max_size=4)

    def flip(pairs: Any) -> bytes:
        data = bytearray(base)
        for at, mask in pairs:
            if data:
                data[at] ^= mask
        return bytes(data)

    return st.one_of(flips.map(flip), _spliced(base))


DEEP = [b"[" * 100_000, b'{"a":' * 50_000, b'{"id": ' + b"9" * 5000 + b"}",
        b'{"id": 1e999999}', b'{"text": "\\ud800"}', b'{"input": "\\udfff", "id": "x"}',
        b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b'{"a": NaN}', b'{"a": -Infinity}']
"""Payloads that have crashed JSON readers: deep nesting, 5,000-digit numbers, an exponent
past float, lone surrogates, byte-order marks, NaN."""


def json_payloads(keys: Sequence[str], valid: Sequence[bytes] = ()) -> st.SearchStrategy:
    """What arrives as a payload meant for a message with `keys`: objects of its keys, any
    JSON, random bytes, mutations of `valid` payloads, and DEEP."""
    parts = [objects_with(keys).map(raw_json), json_values.map(raw_json), st.binary(max_size=64),
             st.sampled_from(DEEP)]
    parts += [mutated(v) for v in valid]
    return st.one_of(*parts)
