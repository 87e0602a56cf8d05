"""The pure-Python WordPiece tokenizer reproduces the `tokenizers` library exactly."""

from __future__ import annotations

import pytest

from edge_slm.model.tokenizer_train import fast_tokenizer, train_tokenizer
from edge_slm.tokenizer import WordPieceTokenizer

ODD = ["Ünïcode café naïve", "İstanbul lights", "你好 lights on", "hello\u200bworld",
       "tab\there\nnew", "x" * 120, "Turn OFF the Kitchen-Lights!!", "50% brightness, please?",
       "what's the temp in bob's room", "  leading and trailing  ", "", "é" * 3, "emoji 💡 on"]


@pytest.fixture(scope="module")
def trained(en_records, tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok = train_tokenizer((r["text"] for r in en_records[:20000]), vocab_size=1500, out=path)
    assert WordPieceTokenizer.from_file(path).vocab == tok.vocab
    return tok, fast_tokenizer(path.read_text())


def test_parity_with_tokenizers(trained, en_records):
    tok, fast = trained
    texts = [r["text"] for r in en_records[20000:26000]] + ODD
    for text in texts:
        mine = tok.encode(text)
        theirs = fast.encode(text, add_special_tokens=False)
        assert mine.ids == theirs.ids, text
        assert mine.offsets == [tuple(o) for o in theirs.offsets], text


def test_remembered_words_tokenize_as_the_first_time(trained, en_records, monkeypatch):
    tok, fast = trained
    texts = [r["text"] for r in en_records[26000:27000]] + ODD
    first = [tok.encode(t) for t in texts]
    assert tok._cache  # the words are remembered
    again = [tok.encode(t) for t in texts]  # from the cache
    assert [(e.ids, e.offsets) for e in again] == [(e.ids, e.offsets) for e in first]
    # "Kitchen" and "kitchen" are one word once lower-cased, with their own offsets
    assert tok.encode("Kitchen kitchen").ids[:1] * 2 == tok.encode("kitchen kitchen").ids[:2]
    # bounded: a full cache starts over
    monkeypatch.setattr("edge_slm.tokenizer.WORD_CACHE_SIZE", 3)
    for t in ["qzxa qzxb", "qzxc qzxd qzxe", "lamp qzxf"] + texts[:20]:
        assert tok.encode(t).ids == fast.encode(t, add_special_tokens=False).ids
        assert len(tok._cache) <= 3


def test_offsets_point_into_the_text(trained):
    tok, _ = trained
    text = "Could you turn off the LIVING room lamp?"
    enc = tok.encode(text)
    pieces = [text[a:b] for a, b in enc.offsets]
    assert "".join(p.lower() for p in pieces).replace("?", "") == \
        text.lower().replace(" ", "").replace("?", "")
    assert all(a < b for a, b in enc.offsets)


def test_special_tokens_and_vocab(trained):
    tok, _ = trained
    assert tok.pad_id == 0 and tok.vocab_size == 1500
    assert tok.encode("zzzzqqqq").ids  # never empty for a real word: letters are in the vocab
    assert tok.unk_id not in tok.encode("qwertyuiop asdf").ids


def test_rejects_non_wordpiece():
    with pytest.raises(ValueError, match="WordPiece"):
        WordPieceTokenizer.from_json('{"model": {"type": "BPE"}}')
