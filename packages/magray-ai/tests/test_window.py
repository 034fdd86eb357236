"""Texts longer than the model's window: bounded tokenizer input, exact ids, counted warnings."""

from __future__ import annotations

import logging
import random
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from magray.ai import Embedder, ModelRegistry
from magray.ai._tokenizer import TextTokenizer, cut_at_space, text_pieces

VOCAB = [
    "the",
    "memory",
    "store",
    "keeps",
    "passages",
    "and",
    "their",
    "vectors;",
    "a",
    "café",
    "serves",
    "crème",
    "brûlée.",
    "Tokenisation",
    "(WordPiece)",
    "splits",
    "unknown-words",
    "into",
    "##pieces!",
    "42",
    "+",
    "7",
    "=",
    "49?",
    "naïve",
    "façade",
    "東京",
    "emoji",
    "🙂",
    "end.",
]


def _text(chars: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(VOCAB) + rng.choice([" ", " ", " ", "\n", "\n\n", "  "])
        parts.append(word)
        size += len(word)
    return "".join(parts)[:chars]


@pytest.fixture(scope="module")
def resolved() -> Any:
    return ModelRegistry().resolve("minilm-l3")


class _Spy:
    """The real tokenizer, recording the longest text it was given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.longest = 0

    def encode_batch(self, inputs: list[Any], **kwargs: Any) -> Any:
        for item in inputs:
            for text in item if isinstance(item, tuple) else (item,):
                self.longest = max(self.longest, len(text))
        return self.inner.encode_batch(inputs, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_cut_at_space_and_pieces() -> None:
    assert cut_at_space("abc def ghi", 6) == 4
    assert cut_at_space("abcdefghij", 4) == 4  # no whitespace: cut at the limit
    assert cut_at_space("short", 100) == 5
    text = _text(50_000)
    pieces = list(text_pieces(text, 1000))
    assert "".join(pieces) == text
    assert all(len(p) <= 1000 for p in pieces)


def test_huge_text_same_ids_and_bounded_tokenizer_input(resolved: Any) -> None:
    from tokenizers import Tokenizer

    tok = TextTokenizer(resolved.tokenizer_path, max_tokens=128)
    spy = _Spy(tok._tokenizer)
    tok._tokenizer = spy
    reference = Tokenizer.from_file(str(resolved.tokenizer_path))
    reference.enable_truncation(max_length=128)
    texts = [
        _text(300_000, 1),
        "short text",
        "x" * 50_000,  # one enormous word
        " " * 40_000 + "late words after a long blank run",  # the prefix must grow
        "word " * 127,
        "y" * 1_000_000,  # a bigger one: read up to the prefix cap only
    ]
    got = tok.encode(texts)
    for text, enc in zip(texts, got, strict=True):
        assert enc.ids.tolist() == reference.encode(text).ids
    assert [e.truncated for e in got] == [True, False, False, False, True, True]
    assert got[1].covered == len(texts[1])
    assert 0 < got[0].covered < 2_000
    # the tokenizer never saw more than a bounded prefix (it grows only while it holds too
    # few tokens, and at most to 64 times its first size)
    assert spy.longest <= 128 * 16 * 64
    spy.longest = 0
    tok.encode([_text(20_000_000, 2)])
    assert spy.longest <= 128 * 16


def test_count_tokens_equals_untruncated_tokenizer(resolved: Any) -> None:
    from tokenizers import Tokenizer

    tok = TextTokenizer(resolved.tokenizer_path, max_tokens=128)
    reference = Tokenizer.from_file(str(resolved.tokenizer_path))
    for seed, size in ((3, 0), (4, 10), (5, 200_000)):
        text = _text(size, seed)
        assert tok.count_tokens(text) == len(reference.encode(text).ids)


def test_pairs_are_cut_to_a_prefix_too(resolved: Any) -> None:
    from tokenizers import Tokenizer

    tok = TextTokenizer(resolved.tokenizer_path, max_tokens=128)
    reference = Tokenizer.from_file(str(resolved.tokenizer_path))
    reference.enable_truncation(max_length=128)
    pair = ("what is kept", _text(500_000, 6))
    assert tok.encode_pairs([pair])[0].ids.tolist() == reference.encode(*pair).ids


def test_truncation_is_logged_with_the_ignored_tokens(
    resolved: Any, caplog: pytest.LogCaptureFixture
) -> None:
    embedder = Embedder(resolved, force_cpu=True, cache_entries=0)
    text = _text(20_000, 7)
    with caplog.at_level(logging.WARNING, logger="magray.ai.embedder"):
        embedder.embed([text, "a short one"])
    (record,) = caplog.records
    ignored = embedder.count_tokens(text) - embedder.window
    assert f": {ignored:,} tokens (" in record.getMessage()
    assert "split it into passages first" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="magray.ai.embedder"):
        embedder.embed([_text(2_000_000, 8)])
    assert ": about " in caplog.records[0].getMessage()


def test_a_huge_text_is_cached_by_digest(resolved: Any) -> None:
    embedder = Embedder(resolved, force_cpu=True, cache_entries=4)
    huge = _text(1_000_000, 9)
    first = embedder.embed([huge])
    keys = [key for _model, key in embedder.cache._data]
    assert all(len(key) < 100 for key in keys)
    np.testing.assert_array_equal(embedder.embed([huge]), first)
    assert embedder.cache.hits == 1


_RSS_SCRIPT = """
import random, resource, sys, time
from magray.ai import Embedder
words = "the memory store keeps passages and their vectors in bounded memory".split()
rng = random.Random(0)
text = " ".join(rng.choice(words) for _ in range(3_000_000))[:20_000_000]
embedder = Embedder("minilm-l3", force_cpu=True)
embedder.embed(["warm up"])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
vector = embedder.embed([text])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base // 1024, peak // 1024, round(seconds, 3), vector.shape[1])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="resource is POSIX only")
def test_embedding_a_20_mb_text_stays_small_and_fast() -> None:
    """Before: tokenising 20 MB whole took 30 s and 2.7 GB; now one window is read."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT], capture_output=True, text=True, check=True
    )
    base_mb, peak_mb, seconds, dim = out.stdout.split()
    assert int(dim) == 384
    assert int(peak_mb) - int(base_mb) < 150, out.stdout  # the 20 MB text itself is ~20 MB
    assert float(seconds) < 2.0, out.stdout


def test_batches_are_bounded_in_tokens(resolved: Any) -> None:
    """Long texts run in smaller batches (ONNX Runtime's memory grows with a batch's tokens)."""
    embedder = Embedder(resolved, force_cpu=True, cache_entries=0, batch_size=32, batch_tokens=512)
    shapes: list[tuple[int, int]] = []
    real_run = embedder.manager.run

    def run(feeds: Any) -> Any:
        shapes.append(feeds["input_ids"].shape)
        return real_run(feeds)

    embedder.manager.run = run  # type: ignore[method-assign]
    texts = [_text(2_000, seed) for seed in range(10)] + [f"short {i}" for i in range(20)]
    together = embedder.embed(texts)
    assert all(rows * width <= 512 or rows == 1 for rows, width in shapes)
    assert max(rows for rows, _ in shapes) == 20  # the short texts still share one batch
    one_by_one = np.vstack([embedder.embed([t]) for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=2e-5)
