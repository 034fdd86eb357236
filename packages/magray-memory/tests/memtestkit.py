"""Test helpers for magray-memory (importable from tests and from their subprocesses).

``HashingEmbedder`` is a real (if weak) bag-of-words embedder: each lower-cased
word is hashed into one of ``dim`` buckets with a sign, and the counts are
L2-normalised. Texts sharing words get similar vectors, which is all these
tests need. It exists only for tests; the product's default embedder comes
from magray-ai through the ``magray.embedders`` entry point.
"""

from __future__ import annotations

import hashlib
import re
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from magray.memory import MemoryStore

__all__ = [
    "Clock",
    "HashingEmbedder",
    "fresh_schema",
    "start_pgserver",
    "unit_vectors",
    "vector_store",
]

_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """Signed feature hashing of words; deterministic across processes."""

    def __init__(self, dim: int = 64, model_id: str = "test-hashing-64") -> None:
        self._dim = dim
        self._model_id = model_id
        self.calls = 0
        self.texts_embedded = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                out[row, value % self._dim] += 1.0 if (value >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[row])
            if norm == 0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out


class Clock:
    """A settable clock (Unix seconds)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def unit_vectors(n: int, dim: int, *, seed: int = 0, clusters: int = 0) -> np.ndarray:
    """Random L2-normalised float32 vectors (optionally clustered)."""
    rng = np.random.default_rng(seed)
    if clusters:
        centres = rng.normal(size=(clusters, dim))
        x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.normal(size=(n, dim))
    else:
        x = rng.normal(size=(n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def start_pgserver(pgdata: Path) -> Iterator[str]:
    """Start PostgreSQL (+ pgvector) from the ``pgserver`` package in ``pgdata``; yield its DSN.

    Calls :func:`pytest.skip` with the reason when pgserver is missing or cannot start.
    (As root, pgserver itself runs postgres as an unprivileged ``pgserver`` user.)
    """
    import pytest

    # platformdirs warns (on import of pgserver) when XDG_RUNTIME_DIR is unset, as in CI.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pgserver
        except ImportError as exc:
            pytest.skip(f"pgserver is not installed ({exc}); pip install 'magray-memory[test]'")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:  # pgserver raises plain exceptions when initdb/pg_ctl fail
        pytest.skip(f"pgserver could not start PostgreSQL here: {type(exc).__name__}: {exc}")
    try:
        yield server.get_uri()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()


def fresh_schema(dsn: str) -> str:
    """``dsn`` pointing at a new, unique store schema (tests never share a store)."""
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}schema=t_{uuid.uuid4().hex[:16]}"


def vector_store(path: Path, dim: int, **settings: object) -> MemoryStore:
    """A local store of caller-supplied vectors (no embedder), dedupe off, other settings given."""
    from magray.common.settings import MemorySettings
    from magray.memory import MemoryStore

    return MemoryStore.open(
        path,
        None,
        dim=dim,
        settings=MemorySettings(dedupe=False, **settings),  # type: ignore[arg-type]
    )
