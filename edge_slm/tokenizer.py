"""WordPiece tokenization with character offsets, in pure Python (what runs on the Pi).

It reads the `tokenizer.json` that `edge_slm.model.tokenizer_train` writes with the
`tokenizers` library and reproduces that library's BERT normalizer, pre-tokenizer and
WordPiece model exactly (a test checks ids and offsets on thousands of corpus sentences), so
training and the device agree on every id without the device needing `tokenizers`.

Offsets are character positions in the original text, so slot tags map back to exact spans.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
#: ASCII characters the normalizer removes (controls other than tab, newline, return).
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: An ASCII word (no whitespace, no punctuation) or one ASCII punctuation character.
_ASCII_WORD = re.compile(r"[^ \t\n\r!-/:-@\[-`{-~]+|[!-/:-@\[-`{-~]")
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP)
#: Words whose pieces a tokenizer remembers (cleared when full: bounded memory).
WORD_CACHE_SIZE = 20000


@dataclass(frozen=True)
class Encoding:
    """Token ids of one text with each token's character span in the original text."""

    ids: List[int]
    """Token ids, without [CLS] or padding."""
    offsets: List[Tuple[int, int]]
    """(start, end) of each token in the original text."""
    tokens: List[str]
    """The tokens themselves."""


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_chinese(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Cn", "Co", "Cs")


class WordPieceTokenizer:
    """BERT-style uncased WordPiece over a fixed vocabulary."""

    def __init__(self, vocab: Dict[str, int], lowercase: bool = True, strip_accents: bool = True,
                 prefix: str = "##", max_word_chars: int = 100) -> None:
        self.vocab = vocab
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.prefix = prefix
        self.max_word_chars = max_word_chars
        self.unk_id = vocab[UNK]
        self.pad_id = vocab[PAD]
        self.cls_id = vocab[CLS]
        self.id_to_token = {i: t for t, i in vocab.items()}
        # words seen before and their pieces (a home's commands repeat their words)
        self._cache: Dict[str, Tuple[Tuple[str, int, int], ...]] = {}

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "WordPieceTokenizer":
        """Load a `tokenizers` tokenizer.json (WordPiece model, BERT normalizer)."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    @classmethod
    def from_json(cls, text: str) -> "WordPieceTokenizer":
        """Build from the JSON text of a tokenizer.json."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: Any) -> "WordPieceTokenizer":
        """Build from a parsed tokenizer.json; ValueError when it is not a WordPiece one with
        token -> id pairs and the special tokens."""
        model = (data.get("model") if isinstance(data, dict) else None) or {}
        norm = (data.get("normalizer") if isinstance(data, dict) else None) or {}
        if not isinstance(model, dict) or not isinstance(norm, dict):
            raise ValueError("tokenizer.json: 'model' and 'normalizer' must be objects")
        if model.get("type") != "WordPiece":
            raise ValueError(f"expected a WordPiece tokenizer, got {model.get('type')!r}")
        vocab = model.get("vocab")
        if not isinstance(vocab, dict) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0
                for i in vocab.values()):
            raise ValueError("tokenizer.json: 'model.vocab' must map tokens to ids")
        missing = [t for t in (UNK, PAD, CLS) if t not in vocab]
        if missing:
            raise ValueError(f"tokenizer.json: no {', '.join(missing)} token")
        prefix = model.get("continuing_subword_prefix", "##")
        if not isinstance(prefix, str):
            raise ValueError("tokenizer.json: 'continuing_subword_prefix' must be a string")
        strip = norm.get("strip_accents")
        lower = bool(norm.get("lowercase", True))
        return cls(dict(vocab), lowercase=lower,
                   strip_accents=lower if strip is None else bool(strip), prefix=prefix,
                   max_word_chars=int(model.get("max_input_chars_per_word", 100)))

    @property
    def vocab_size(self) -> int:
        """Number of tokens."""
        return len(self.vocab)

    def _normalize(self, text: str) -> List[Tuple[str, int]]:
        out: List[Tuple[str, int]] = []
        for i, ch in enumerate(text):
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_whitespace(ch):
                out.append((" ", i))
                continue
            if _is_chinese(cp):
                out.extend(((" ", i), (ch, i), (" ", i)))
                continue
            piece = ch
            if self.strip_accents:
                piece = "".join(c for c in unicodedata.normalize("NFD", piece)
                                if unicodedata.category(c) != "Mn")
            if self.lowercase:
                piece = piece.lower()
            out.extend((c, i) for c in piece)
        return out

    def _words(self, text: str) -> List[Tuple[str, int, int]]:
        if text.isascii() and not _ASCII_CONTROL.search(text):
            # The common case, 10x faster: nothing to strip, lowercasing keeps positions.
            low = text.lower() if self.lowercase else text
            return [(m.group(), m.start(), m.end()) for m in _ASCII_WORD.finditer(low)]
        chars = self._normalize(text)
        words: List[Tuple[str, int, int]] = []
        cur: List[Tuple[str, int]] = []

        def flush() -> None:
            if cur:
                words.append(("".join(c for c, _ in cur), cur[0][1], cur[-1][1] + 1))
                cur.clear()

        for ch, i in chars:
            if ch == " " or _is_whitespace(ch):
                flush()
            elif _is_punctuation(ch):
                flush()
                words.append((ch, i, i + 1))
            else:
                cur.append((ch, i))
        flush()
        return words

    def encode(self, text: str) -> Encoding:
        """Tokenize `text` (no special tokens added)."""
        ids: List[int] = []
        offsets: List[Tuple[int, int]] = []
        tokens: List[str] = []
        vocab = self.vocab
        for word, start, end in self._words(text):
            pieces = self._cache.get(word)
            if pieces is None:
                pieces = self._pieces(word)
                if len(word) <= self.max_word_chars:  # an over-long word is no key to keep
                    if len(self._cache) >= WORD_CACHE_SIZE:
                        self._cache.clear()
                    self._cache[word] = pieces
            if not pieces:
                ids.append(self.unk_id)
                offsets.append((start, end))
                tokens.append(UNK)
                continue
            # Map piece positions (in the normalized word) back to original characters: the
            # word's characters are contiguous in the original unless normalization expanded
            # one (a word as written shifts by its start, the common case, with no table).
            char_pos = (None if end - start == len(word)
                        else self._char_positions(text, start, end, len(word)))
            for piece, a, b in pieces:
                ids.append(vocab[piece])
                offsets.append((start + a, start + b) if char_pos is None
                               else (char_pos[a], char_pos[b - 1] + 1))
                tokens.append(piece)
        return Encoding(ids, offsets, tokens)

    def _pieces(self, word: str) -> Tuple[Tuple[str, int, int], ...]:
        """A word's WordPiece pieces (token, start, end in the word), greedy longest match
        first; () when it is one [UNK] (too long, or a part no token covers)."""
        if len(word) > self.max_word_chars:
            return ()
        vocab = self.vocab
        pieces: List[Tuple[str, int, int]] = []
        pos = 0
        while pos < len(word):
            stop = len(word)
            found = None
            while stop > pos:
                sub = word[pos:stop]
                if pos > 0:
                    sub = self.prefix + sub
                if sub in vocab:
                    found = sub
                    break
                stop -= 1
            if found is None:
                return ()
            pieces.append((found, pos, stop))
            pos = stop
        return tuple(pieces)

    def _char_positions(self, text: str, start: int, end: int, n: int) -> List[int]:
        if end - start == n:
            return list(range(start, end))
        positions = [i for c, i in self._normalize(text[start:end]) if c != " "]
        return [start + p for p in positions][:n] or [start] * n

    def encode_batch(self, texts: Sequence[str]) -> List[Encoding]:
        """Tokenize several texts."""
        return [self.encode(t) for t in texts]
