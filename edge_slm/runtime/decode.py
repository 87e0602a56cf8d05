"""BIO tags per token -> slot spans on the original text (shared by training and runtime).

Decisions are made per word, not per word piece: "kitch" + "##en" is one word whatever the
model says about "##en", so a span never ends inside a word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Protocol, Sequence, Tuple, Union

#: Characters that end a word even when no space follows ("50%", "20°", "on?").
BREAKING = frozenset('%°?!.,:;"()[]{}')


class Tagged(Protocol):
    """Label spaces with a BIO tag list (the runtime's `Labels`, training's `LabelSpace`)."""

    @property
    def tags(self) -> Sequence[str]: ...


@dataclass
class _Span:
    """A span being decoded: its slot, its characters, and whether the next word may extend
    it."""

    slot: str
    start: int
    end: int
    open: bool = True


def words_of(offsets: Sequence[Tuple[int, int]], text: str,
             tag_ids: Optional[Sequence[int]] = None) -> List[List[int]]:
    """Token indices grouped into words: a token glued to the previous one (no space between,
    neither of them breaking punctuation) continues its word ("kitch" + "##n", "twenty-six").
    A glued token that starts with a symbol ("-seconds", "°") opens a word of its own when one
    side is tagged O and the other is not ("11" + "-seconds" stays apart); word pieces that
    start with a letter or digit never do ("cu" + "##mi" + "##n" is one word, whatever the
    model says about "##mi")."""
    words: List[List[int]] = []
    for i, (a, b) in enumerate(offsets):
        glued = (i > 0 and offsets[i - 1][1] == a and text[a:b] not in BREAKING
                 and text[offsets[i - 1][0]:offsets[i - 1][1]] not in BREAKING)
        if (glued and tag_ids is not None and a < len(text) and not text[a].isalnum()
                and (tag_ids[i] == 0) != (tag_ids[words[-1][0]] == 0)):
            glued = False
        if words and glued:
            words[-1].append(i)
        else:
            words.append([i])
    return words


def _repeats(text: str, span: _Span, a: int, b: int) -> bool:
    """Whether the word at a:b says again the last word of `span` ("on on the first floor":
    the second "on" starts something else; no value says a word twice in a row)."""
    last = text[span.start:span.end].split()[-1:]
    return bool(last) and last[0].casefold() == text[a:b].casefold()


def decode_spans(tag_ids: Sequence[int], offsets: Sequence[Tuple[int, int]],
                 labels: Union[Tagged, Sequence[str]],
                 text: Optional[str] = None) -> List[Tuple[str, int, int]]:
    """(slot, start, end) spans from per-token tag ids (`labels`: a LabelSpace or its tag list).

    Decisions are per word (see `words_of`), an "O" word closes a span, and
    when `text` is given, neighbouring words of the same slot with only spaces between are one
    span (a model often starts every word of a multi-word value with B-).
    """
    if not any(tag_ids):
        return []  # every token O (most questions, every non-command)
    tags = labels.tags if not isinstance(labels, Sequence) else labels
    groups = (words_of(offsets, text, tag_ids) if text is not None
              else [[i] for i in range(len(offsets))])
    spans: List[_Span] = []
    for group in groups:
        # A word's tag is its first token's, or its first tagged piece's when the first
        # piece is O ("wi" O + "##pe" B-item: the word "wipe" starts the item).
        tag_id = next((tag_ids[k] for k in group if tag_ids[k] != 0), 0)
        if text is not None and all(text[offsets[k][0]:offsets[k][1]] in BREAKING
                                    for k in group):
            a, b = offsets[group[0]][0], offsets[group[-1]][1]
            inside = 0 < a and b < len(text) and text[a - 1].isalnum() and text[b].isalnum()
            if not inside:
                tag_id = 0  # trailing punctuation ("20°", "50%", "on?") is not part of a value
        a, b = offsets[group[0]][0], offsets[group[-1]][1]
        tag = tags[tag_id] if 0 <= tag_id < len(tags) else "O"
        if tag == "O":
            if spans:
                spans[-1].open = False  # an "O" closes the open span
            continue
        kind, name = tag.split("-", 1)
        if spans and spans[-1].slot == name and spans[-1].open and (
                kind == "I" or (text is not None and not text[spans[-1].end:a].strip()
                                and not _repeats(text, spans[-1], a, b))):
            spans[-1].end = b
            continue
        if spans:
            spans[-1].open = False
        spans.append(_Span(name, a, b))
    return [(s.slot, s.start, s.end) for s in spans]
