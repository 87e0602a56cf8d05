"""Train the student's WordPiece vocabulary on corpus texts with the `tokenizers` library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Union

from ..errors import ModelFormatError
from ..tokenizer import SPECIAL_TOKENS, WordPieceTokenizer

if TYPE_CHECKING:
    from tokenizers import Tokenizer


def train_tokenizer(texts: Iterable[str], vocab_size: int = 3000, min_frequency: int = 2,
                    out: Union[str, Path, None] = None) -> WordPieceTokenizer:
    """Train an uncased WordPiece vocabulary; write tokenizer.json to `out` if given."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix="##", show_progress=False,
        # Every letter and digit alone and as a continuation, so no word becomes [UNK].
        initial_alphabet=list("abcdefghijklmnopqrstuvwxyz0123456789"))
    tok.train_from_iterator(texts, trainer=trainer)
    text = _isolate_symbols(tok.to_str())
    if out is not None:
        Path(out).write_text(text, encoding="utf-8")
    return WordPieceTokenizer.from_json(text)


def _isolate_symbols(json_text: str) -> str:
    """Drop merged tokens that glue a symbol to a word ("five°", "5°"): the BERT
    pre-tokenizer only splits punctuation, and a value must be able to end where the symbol
    starts ("thirty-five" + "°"). The symbol alone and as a continuation stay."""
    data = json.loads(json_text)
    vocab = data["model"]["vocab"]
    keep = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])
            if t in SPECIAL_TOKENS or len(t.removeprefix("##")) <= 1
            or t.removeprefix("##").isalnum()]
    data["model"]["vocab"] = {t: i for i, t in enumerate(keep)}
    return json.dumps(data, ensure_ascii=False)


def fast_tokenizer(json_text: str) -> Tokenizer:
    """The `tokenizers` object of a tokenizer.json (fast batch encoding for training)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json_text)


def token_id(tok: Tokenizer, token: str) -> int:
    """The id of `token` (a special token: "[CLS]", "[UNK]"); ModelFormatError when the
    vocabulary lacks it."""
    found = tok.token_to_id(token)
    if found is None:
        raise ModelFormatError(f"tokenizer.json: no {token} token in the vocabulary")
    return found
