"""Filter columns saved beside the index: the next process filters without rebuilding them.

The columns of a layer are saved with an index generation (and on close when only they are
new); a reopened store uses them for positions they cover, appends positions indexed since,
and falls back to SQLite when the file is missing, damaged or for other positions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from magray.memory import MemoryStore
from magray.memory._layercols import _FileBase, _SqlBase
from magray.memory._local import LocalBackend
from memtestkit import unit_vectors, vector_store

DIM = 16
N = 300


def _local(store: MemoryStore) -> LocalBackend:
    backend = store._backend
    assert isinstance(backend, LocalBackend)
    return backend


def _meta(i: int) -> dict[str, Any]:
    return {"p": i % 10, "tag": "even" if i % 2 == 0 else "odd", "n": {"x": i}}


def _build(path: Path) -> np.ndarray:
    vectors = unit_vectors(N, DIM, seed=21, clusters=4)
    with vector_store(path, DIM, flat_threshold=50) as store:
        store.add(
            [f"t{i}" for i in range(N)],
            [_meta(i) for i in range(N)],
            vectors=vectors,
            layer="assets",
        )
        q = vectors[0]
        for _ in range(2):  # the second filter on {p, tag} builds their columns
            store.search(q, k=5, where={"p": 3, "tag": "odd"})
    return vectors


def _exact(
    vectors: np.ndarray, metas: list[dict[str, Any]], q: np.ndarray, where: dict[str, Any]
) -> list[str]:
    rows = [i for i, m in enumerate(metas) if all(m.get(k) == v for k, v in where.items())]
    scores = vectors[rows] @ q
    return [f"t{rows[j]}" for j in np.argsort(-scores, kind="stable")[:5]]


def _no_sql_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> object:
        raise AssertionError("filter columns were read from SQLite")

    monkeypatch.setattr(_SqlBase, "fields", refuse)
    monkeypatch.setattr(_SqlBase, "key", refuse)


def test_columns_are_saved_and_used_after_reopening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s"
    vectors = _build(path)
    files = sorted(p.name for p in (path / "index").glob("*.cols.npz"))
    assert files == ["assets.1.cols.npz"]
    metas = [_meta(i) for i in range(N)]
    queries = unit_vectors(5, DIM, seed=22, clusters=4)
    with vector_store(path, DIM, flat_threshold=50) as store:
        _no_sql_columns(monkeypatch)
        for q in queries:  # the very first filter already runs on the saved columns
            got = [h.text for h in store.search(q, k=5, where={"p": 3, "tag": "odd"})]
            assert got == _exact(vectors, metas, q, {"p": 3, "tag": "odd"})
            got = [h.text for h in store.search(q, k=5, where={"tag": "even"})]
            assert got == _exact(vectors, metas, q, {"tag": "even"})
        meta = _local(store).meta["assets"]
        assert meta is not None
        assert isinstance(meta._base, _FileBase)
        monkeypatch.undo()
        # a key without a saved column: read from SQLite, as without the file
        got = [h.text for h in store.search(queries[0], k=5, where={"n.x": 7})]
        assert got == ["t7"]


def test_positions_indexed_since_the_save_are_appended(tmp_path: Path) -> None:
    path = tmp_path / "s"
    vectors = _build(path)
    metas = [_meta(i) for i in range(N)]
    extra = unit_vectors(40, DIM, seed=23, clusters=4)
    with vector_store(path, DIM, flat_threshold=50) as store:
        with vector_store(path, DIM, flat_threshold=50) as other:  # another writer
            ids = other.add(
                [f"t{N + i}" for i in range(40)],
                [_meta(N + i) for i in range(40)],
                vectors=extra,
                layer="assets",
            )
            other.delete([ids[3]])  # t303: p = 3, odd
        all_vectors = np.concatenate([vectors, extra])
        all_metas = metas + [_meta(N + i) for i in range(40)]
        all_metas[N + 3] = {"deleted": True}
        for q in unit_vectors(5, DIM, seed=24, clusters=4):
            got = [h.text for h in store.search(q, k=5, where={"p": 3, "tag": "odd"})]
            assert got == _exact(all_vectors, all_metas, q, {"p": 3, "tag": "odd"})
            assert "t303" not in got
        meta = _local(store).meta["assets"]
        assert meta is not None
        assert isinstance(meta._base, _FileBase)
        assert meta.n == _local(store).layers["assets"].n


@pytest.mark.parametrize("damage", ["garbage", "other positions"])
def test_a_damaged_or_foreign_file_falls_back_to_sqlite(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "s"
    vectors = _build(path)
    cols = path / "index" / "assets.1.cols.npz"
    if damage == "garbage":
        cols.write_bytes(b"not a zip file")
    else:
        with np.load(cols) as data:
            arrays = {name: data[name] for name in data.files}
        arrays["labels_crc"] = np.int64(12345)
        with cols.open("wb") as handle:
            np.savez(handle, **arrays)
    metas = [_meta(i) for i in range(N)]
    with vector_store(path, DIM, flat_threshold=50) as store:
        q = vectors[5]
        for _ in range(2):
            got = [h.text for h in store.search(q, k=5, where={"p": 3, "tag": "odd"})]
            assert got == _exact(vectors, metas, q, {"p": 3, "tag": "odd"})
        meta = _local(store).meta["assets"]
        assert meta is not None
        assert isinstance(meta._base, _SqlBase)
        assert not isinstance(meta._base, _FileBase)


def test_columns_follow_a_new_index_generation(tmp_path: Path) -> None:
    """A compaction renumbers positions: the old file no longer fits and is dropped; the
    columns built on the new positions are saved on close and used by the next process."""
    path = tmp_path / "s"
    vectors = _build(path)
    metas = [_meta(i) for i in range(N)]
    where = {"p": 3, "tag": "odd"}
    with vector_store(path, DIM, flat_threshold=50, background_compaction=False) as store:
        store.search(vectors[0], k=5, where=where)
        hits = store.search(vectors[1], k=80)
        gone = [int(h.text[1:]) for h in hits]
        store.delete([h.id for h in hits])  # past tombstone_ratio: the layer is rebuilt
        _local(store).save_index(force=True)
        assert list((path / "index").glob("*.cols.npz")) == []
        for _ in range(2):
            store.search(vectors[2], k=5, where=where)
    names = [p.name for p in (path / "index").glob("*.cols.npz")]
    assert len(names) == 1
    assert names != ["assets.1.cols.npz"]
    for i in gone:
        metas[i] = {"deleted": True}
    with vector_store(path, DIM, flat_threshold=50) as store:
        got = [h.text for h in store.search(vectors[2], k=5, where=where)]
        assert got == _exact(vectors, metas, vectors[2], where)
        meta = _local(store).meta["assets"]
        assert meta is not None
        assert isinstance(meta._base, _FileBase)
