"""Filter columns saved beside an index generation, so a later process loads them.

A ``<layer>.<generation>.cols.npz`` file holds a :meth:`LayerMeta.snapshot
<magray.memory._columns.LayerMeta.snapshot>` for the positions of one saved index: the
record fields and the typed columns of the metadata keys filtered on, with the number of
positions and a checksum of their labels, so it is used only for the same positions (or a
later generation that appended to them).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from magray.memory._columns import FIELD_NAMES, SavedColumn

__all__ = ["SavedColumns", "columns_fit", "save_columns", "saved_keys"]


class SavedColumns:
    """Filter columns saved next to an index generation (see :func:`save_columns`).

    Args:
        path: The ``.cols.npz`` file.
        labels: The labels of the loaded index's positions; the file is used only when its
            positions hold the same labels (a checksum of them is saved with it).
        digest: The file's xxh3 digest from the index manifest (checked first).

    Raises:
        ValueError: The file is unreadable or belongs to other positions.
    """

    def __init__(self, path: Path, labels: np.ndarray, digest: str | None = None) -> None:
        if digest is not None:
            from magray.memory._index import file_digest

            try:
                actual = file_digest(path)
            except OSError as exc:
                raise ValueError(f"unreadable: {exc}") from exc
            if actual != digest:
                raise ValueError(f"failed its checksum (xxh3 {actual}, saved {digest})")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except Exception as exc:  # zipfile/numpy raise many kinds
            raise ValueError(f"unreadable: {exc}") from exc
        n = int(arrays["n"])
        if n > len(labels) or int(arrays["labels_crc"]) != _crc(labels[:n]):
            raise ValueError("saved for other index positions")
        self.n = n
        self._arrays = arrays
        self.keys: list[str] = json.loads(str(arrays["keys"]))
        for name in FIELD_NAMES:
            if len(arrays[name]) != n:
                raise ValueError(f"{name} holds {len(arrays[name])} values, not {n}")

    def fields(self) -> dict[str, np.ndarray]:
        """The record fields (handed over once: the caller copies them into its columns)."""
        return {name: self._arrays.pop(name) for name in FIELD_NAMES}

    def column(self, key: str) -> SavedColumn | None:
        """One key's column (handed over once, like :meth:`fields`), or None if not saved."""
        i = self.keys.index(key) if key in self.keys else -1
        if f"k{i}_kinds" not in self._arrays:
            return None
        words: list[str] = json.loads(str(self._arrays.pop(f"k{i}_words")))
        return (
            self._arrays.pop(f"k{i}_kinds"),
            self._arrays.pop(f"k{i}_nums"),
            self._arrays.pop(f"k{i}_codes"),
            words,
        )


def saved_keys(path: Path) -> frozenset[str]:
    """The metadata keys a ``.cols.npz`` file holds columns for (empty if unreadable)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return frozenset(json.loads(str(data["keys"])))
    except Exception:
        return frozenset()


def columns_fit(path: Path, labels: np.ndarray) -> bool:
    """Whether a ``.cols.npz`` file was saved for a prefix of these positions (so it can
    serve a later index generation that only appended to them)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            n, crc = int(data["n"]), int(data["labels_crc"])
    except Exception:
        return False
    return n <= len(labels) and crc == _crc(labels[:n])


def save_columns(path: Path, labels: np.ndarray, snapshot: Mapping[str, np.ndarray]) -> str:
    """Write a :meth:`LayerMeta.snapshot` for the positions holding ``labels`` (atomically);
    returns the file's xxh3 digest (the index manifest lists it)."""
    from magray.common.fs import atomic_writer
    from magray.memory._index import HashingWriter

    with atomic_writer(path) as handle:
        out = HashingWriter(handle)
        arrays = {"n": np.int64(len(labels)), "labels_crc": np.int64(_crc(labels)), **snapshot}
        np.savez(out, **arrays)  # type: ignore[arg-type]
    return out.hexdigest()


def _crc(labels: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
