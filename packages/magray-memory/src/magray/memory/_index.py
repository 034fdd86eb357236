"""The derived vector index saved atomically: one faiss index per layer
(:class:`~magray.memory._layerindex.LayerIndex`, re-exported here) and its files.

:class:`IndexFiles` saves all layers under ``<store>/index/``: each layer's
files carry a generation number, and ``manifest.json`` (written last,
atomically) names the generation together with the change-log watermark, the
model id, the dimension and the index epoch. A crash at any point leaves either
the old or the new manifest, each pointing at complete files.

Every file is checksummed (xxh3-64, computed while it is written): the manifest
records the digest of each layer's index, state and filter-column file, and its
own digest over the rest of its content. A file whose bytes do not match is
damage (:class:`IndexLoadError` with ``damaged=True``): the store rebuilds from
SQLite and says so, instead of loading a faiss file whose vectors are garbage.
The manifest also keeps the tip of SQLite's history table as it was when the
index was saved, so an open can tell a database that lost changes (see
``LocalBackend``).
"""

from __future__ import annotations

import io
import json
import mmap
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from magray.common.fs import atomic_write_text, atomic_writer
from magray.memory._layerindex import (
    FLAT,
    HNSW,
    HNSWParams,
    LayerIndex,
    auto_ef_search,
    faiss_module,
)
from magray.memory._savedcols import columns_fit, save_columns

__all__ = [
    "FLAT",
    "HNSW",
    "HNSWParams",
    "HashingWriter",
    "IndexFiles",
    "IndexLoadError",
    "LayerIndex",
    "auto_ef_search",
    "file_digest",
]

MANIFEST_FORMAT = 2  # 2: checksums and the database tip


class IndexLoadError(Exception):
    """The saved index is missing, stale or corrupt (internal: triggers a rebuild).

    ``damaged`` tells damage (a checksum mismatch, an unreadable file) from the
    ordinary reasons (no index saved yet, another epoch or model, an older format).
    """

    def __init__(self, message: str, *, damaged: bool = False) -> None:
        super().__init__(message)
        self.damaged = damaged


def file_digest(path: Path) -> str:
    """The xxh3-64 hex digest of a file's bytes.

    The file is memory-mapped and hashed in place (no copy into Python; xxhash releases
    the GIL, so another thread may read the same file meanwhile): about twice the speed of
    chunked ``read`` calls.
    """
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return xxhash.xxh3_64_hexdigest(b"")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return xxhash.xxh3_64_hexdigest(mapped)


class HashingWriter:
    """A write-only, non-seekable stream that digests what it passes on (zip writers such
    as ``np.savez`` then stream instead of seeking back, so the digest is the file's)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._digest = xxhash.xxh3_64()

    def write(self, data: Any) -> int:
        self._digest.update(data)
        return int(self._handle.write(data))

    def flush(self) -> None:
        self._handle.flush()

    def read(self, *_: Any) -> bytes:  # numpy's savez takes only objects that have `read`
        raise io.UnsupportedOperation("write-only stream")

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _manifest_digest(raw: Mapping[str, Any]) -> str:
    body = {key: value for key, value in raw.items() if key != "checksum"}
    return xxhash.xxh3_64_hexdigest(json.dumps(body, sort_keys=True).encode("utf-8"))


def _verify_into(path: Path, expected: Any, failures: list[IndexLoadError]) -> None:
    try:
        _verify(path, expected)
    except IndexLoadError as exc:
        failures.append(exc)


def _verify(path: Path, expected: Any) -> None:
    """Raise a damage :class:`IndexLoadError` unless ``path`` has the digest ``expected``.

    ``expected`` is None only in a manifest of format 1 (saved before checksums; a format 2
    manifest is itself checksummed, so its digests cannot go missing): nothing to check.
    """
    if expected is None:
        return
    try:
        actual = file_digest(path)
    except FileNotFoundError:
        raise IndexLoadError(f"{path.name} is missing", damaged=True) from None
    except OSError as exc:
        raise IndexLoadError(f"cannot read {path.name}: {exc}", damaged=True) from exc
    if actual != expected:
        raise IndexLoadError(
            f"{path.name} failed its checksum (xxh3 {actual}, saved {expected})", damaged=True
        )


@dataclass
class Manifest:
    """What ``manifest.json`` says about the saved index."""

    generation: int
    watermark: int
    epoch: int
    model_id: str
    dim: int
    layers: dict[str, dict[str, Any]]
    db_tip: dict[str, Any] | None = None
    legacy: bool = False  # format 1: no checksums to verify


class IndexFiles:
    """Atomic save/load of a set of layer indexes in one directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.manifest_path = directory / "manifest.json"

    def read_manifest(self) -> Manifest:
        """The manifest, verified against its own checksum."""
        try:
            raw = json.loads(self.manifest_path.read_text("utf-8"))
        except FileNotFoundError:
            raise IndexLoadError("no saved index") from None
        except (OSError, ValueError) as exc:
            raise IndexLoadError(f"unreadable index manifest: {exc}", damaged=True) from exc
        try:
            legacy = raw["format"] == 1  # saved before checksums: loaded once, then re-saved
            if raw["format"] != MANIFEST_FORMAT and not legacy:
                raise IndexLoadError(f"unknown index format {raw['format']!r}")
            if not legacy and raw.get("checksum") != _manifest_digest(raw):
                raise IndexLoadError("manifest.json failed its checksum", damaged=True)
            return Manifest(
                generation=int(raw["generation"]),
                watermark=int(raw["watermark"]),
                epoch=int(raw["epoch"]),
                model_id=str(raw["model_id"]),
                dim=int(raw["dim"]),
                layers=dict(raw["layers"]),
                db_tip=raw.get("db_tip"),
                legacy=legacy,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IndexLoadError(f"invalid index manifest: {exc}", damaged=True) from exc

    def _write_manifest(self, raw: dict[str, Any]) -> None:
        raw = {key: value for key, value in raw.items() if key != "checksum"}
        raw["checksum"] = _manifest_digest(raw)
        atomic_write_text(self.manifest_path, json.dumps(raw, indent=2))

    def columns_file(self, layer: str) -> tuple[Path, str] | None:
        """The filter-column file of ``layer`` listed in the manifest and its digest."""
        try:
            entry = self.read_manifest().layers.get(layer) or {}
        except IndexLoadError:
            return None
        name, digest = entry.get("columns"), entry.get("columns_xxh3")
        if not name or not digest:
            return None
        path = self.dir / str(name)
        return (path, str(digest)) if path.exists() else None

    def add_columns(self, layer: str, name: str, digest: str) -> None:
        """List a filter-column file saved for the current generation (caller holds the
        index lock)."""
        raw = json.loads(self.manifest_path.read_text("utf-8"))
        if raw.get("checksum") != _manifest_digest(raw) or layer not in raw["layers"]:
            return
        raw["layers"][layer].update(columns=name, columns_xxh3=digest)
        self._write_manifest(raw)

    def verify(self) -> list[str]:
        """Every checksum problem of the saved files (empty: all files match)."""
        try:
            manifest = self.read_manifest()
        except IndexLoadError as exc:
            return [str(exc)] if exc.damaged else []
        problems = []
        for info in manifest.layers.values():
            for name_key, digest_key in (
                ("index", "index_xxh3"),
                ("state", "state_xxh3"),
                ("columns", "columns_xxh3"),
            ):
                if info.get(name_key):
                    try:
                        _verify(self.dir / info[name_key], info.get(digest_key))
                    except IndexLoadError as exc:
                        problems.append(str(exc))
        return problems

    def load(self, params: HNSWParams) -> tuple[Manifest, dict[str, LayerIndex]]:
        """The saved layers, or :class:`IndexLoadError` saying why not."""
        faiss = faiss_module()
        manifest = self.read_manifest()
        layers: dict[str, LayerIndex] = {}
        for name, info in manifest.layers.items():
            index_path = self.dir / info["index"]
            state_path = self.dir / info["state"]
            _verify(state_path, info.get("state_xxh3"))
            # The index file is hashed in a thread while faiss reads it (both release the
            # GIL): on an idle second core the check costs no wall-clock time. The index is
            # used only once its digest matched.
            failure: list[IndexLoadError] = []
            checker = threading.Thread(
                target=_verify_into,
                args=(index_path, info.get("index_xxh3"), failure),
                name="magray-memory-checksum",
            )
            checker.start()
            try:
                index = faiss.read_index(str(index_path))
                with np.load(state_path) as state:
                    labels, alive = state["labels"], state["alive"]
            except Exception as exc:  # faiss raises RuntimeError; numpy ValueError/OSError
                checker.join()
                if failure:  # the checksum names the damage better than the parser
                    raise failure[0] from exc
                raise IndexLoadError(f"cannot read {index_path.name}: {exc}", damaged=True) from exc
            checker.join()
            if failure:
                raise failure[0]
            kind = info.get("kind")
            if kind not in (FLAT, HNSW):
                raise IndexLoadError(f"unknown index kind {kind!r}")
            if index.ntotal != len(labels) or len(alive) != len(labels):
                raise IndexLoadError(
                    f"{index_path.name} holds {index.ntotal} vectors but its state {len(labels)}",
                    damaged=True,
                )
            if index.d != manifest.dim:
                raise IndexLoadError(
                    f"{index_path.name} has dim {index.d}, not {manifest.dim}", damaged=True
                )
            layers[name] = LayerIndex.restore(index, labels, alive, kind=kind, params=params)
        return manifest, layers

    def save(
        self,
        layers: dict[str, LayerIndex],
        *,
        watermark: int,
        epoch: int,
        model_id: str,
        dim: int,
        columns: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        db_tip: dict[str, Any] | None = None,
    ) -> int:
        """Write every layer (and the filter columns given for it) then the manifest;
        returns bytes written."""
        faiss = faiss_module()
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            previous_manifest: Manifest | None = self.read_manifest()
        except IndexLoadError:
            previous_manifest = None
        generation = 1 if previous_manifest is None else previous_manifest.generation + 1
        entries: dict[str, dict[str, Any]] = {}
        keep_columns: set[str] = set()
        written = 0
        for name, layer in layers.items():
            index_name = f"{name}.{generation}.faiss"
            state_name = f"{name}.{generation}.npz"
            with atomic_writer(self.dir / index_name) as handle:
                index_out = HashingWriter(handle)
                faiss.write_index(layer.index, faiss.PyCallbackIOWriter(index_out.write))
            labels, alive = layer.state()
            with atomic_writer(self.dir / state_name) as handle:
                state_out = HashingWriter(handle)
                np.savez(state_out, labels=labels, alive=alive)
            written += (self.dir / index_name).stat().st_size + (
                self.dir / state_name
            ).stat().st_size
            entry: dict[str, Any] = {
                "index": index_name,
                "index_xxh3": index_out.hexdigest(),
                "state": state_name,
                "state_xxh3": state_out.hexdigest(),
                "kind": layer.kind,
                "n": layer.n,
                "dead": layer.dead,
            }
            columns_name = f"{name}.{generation}.cols.npz"
            old_entry = {} if previous_manifest is None else previous_manifest.layers.get(name, {})
            previous = self.dir / str(old_entry.get("columns") or f"{name}.{generation - 1}.x")
            if columns and name in columns:
                digest = save_columns(self.dir / columns_name, labels, columns[name])
                entry.update(columns=columns_name, columns_xxh3=digest)
                keep_columns.add(columns_name)
            elif (
                old_entry.get("columns_xxh3")
                and previous.exists()
                and columns_fit(previous, labels)
            ):
                # Columns another process built still describe a prefix of these positions
                # (only appends since): they move to this generation, checksum and all; the
                # rest is appended on load.
                os.replace(previous, self.dir / columns_name)
                entry.update(columns=columns_name, columns_xxh3=old_entry["columns_xxh3"])
                keep_columns.add(columns_name)
            entries[name] = entry
        self._write_manifest(
            {
                "format": MANIFEST_FORMAT,
                "generation": generation,
                "watermark": watermark,
                "epoch": epoch,
                "model_id": model_id,
                "dim": dim,
                "layers": entries,
                "db_tip": db_tip,
            }
        )
        keep = {e["index"] for e in entries.values()} | {e["state"] for e in entries.values()}
        keep |= keep_columns
        for path in self.dir.iterdir():
            if path.suffix in (".faiss", ".npz") and path.name not in keep:
                path.unlink(missing_ok=True)
        return written

    def size(self) -> int:
        if not self.dir.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file())

    def remove(self) -> None:
        if self.dir.is_dir():
            for path in self.dir.iterdir():
                if path.is_file():
                    os.unlink(path)
