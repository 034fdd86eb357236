"""Integrity of a local store: open-time checks of the database against the saved index,
recovery, consistency and the full ``check`` (with repair).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from magray.common.errors import ReadOnlyStorageError
from magray.common.log import get_logger
from magray.memory._index import IndexLoadError, Manifest
from magray.memory._types import Layer
from magray.memory._writes import Writes
from magray.memory.errors import DatabaseMissingError, DatabaseRegressedError

__all__ = ["Integrity"]

log = get_logger("magray.memory")


class Integrity(Writes):
    """The database is the truth: refuse or recover a database behind its saved index, and
    check the index against it record by record."""

    def _lost_database(self, manifest: Manifest | None, why: str | None = None) -> Exception:
        db_path = self.path / "memory.db"
        if why is None:
            return DatabaseMissingError(
                f"memory store {self.path}: memory.db is missing or empty, but its index files "
                "exist; the database is the source of truth, so opening it as a new store "
                "would silently lose every record",
                hint=f"put memory.db back from a backup, or run `magray memory check --repair "
                f"--store {self.path}` (MemoryStore.open(..., recover=True)) to start over "
                "from an empty database and report what was lost",
                details={"path": str(db_path)},
            )
        return DatabaseRegressedError(
            f"memory store {self.path}: memory.db lost changes its saved index had seen ({why})",
            hint=f"restore memory.db (with its -wal file) from a backup, or run `magray memory "
            f"check --repair --store {self.path}` (MemoryStore.open(..., recover=True)) to "
            "rebuild the index from what the database holds and report what was lost",
            details={
                "path": str(db_path),
                "index_watermark": None if manifest is None else manifest.watermark,
                "db_last_change": self.db.last_seq(),
            },
        )

    def _index_saw_records(self) -> bool:
        """Whether a saved index exists that has seen at least one change."""
        try:
            return self.files.read_manifest().watermark > 0
        except IndexLoadError:
            return False

    def _check_database(self, *, recover: bool) -> None:
        """Refuse a database that is empty or behind the saved index (unless ``recover``)."""
        try:
            manifest = self.files.read_manifest()
        except IndexLoadError:
            return  # no readable manifest: nothing to compare the database with
        if manifest.watermark == 0:
            return  # the index never saw a record: nothing can have been lost
        last = self.db.last_seq()
        why: str | None = "empty"
        if self.pinned() is None or (last == 0 and self.counts_total() == 0):
            why = None  # missing or emptied
        elif last < manifest.watermark:
            why = f"its change log ends at {last}, the index had seen {manifest.watermark}"
        else:
            tip = manifest.db_tip or {}
            row = (
                self.db.conn.execute(
                    "SELECT record_id, at FROM history WHERE seq = ?", (tip["seq"],)
                ).fetchone()
                if tip.get("seq")
                else None
            )
            if tip.get("seq") and (row is None or (row[0], row[1]) != (tip["id"], tip["at"])):
                why = f"history event {tip['seq']} the index had seen is gone or different"
            else:
                return
        if not recover:
            raise self._lost_database(manifest, why)
        self._recover(manifest, why or "memory.db was missing or empty")

    def _recover(self, manifest: Manifest, why: str) -> None:
        """Start from what the database holds: pin it like the index (if it lost even that),
        count what the saved index knew and the database does not, rebuild, save, log."""
        if self.read_only:
            raise ReadOnlyStorageError(
                f"memory store {self.path} is read-only, so it cannot be recovered in place",
                hint="copy the directory somewhere writable and recover the copy",
            )
        if self.pinned() is None:
            self.pin(manifest.model_id, manifest.dim)
        known: set[int] = set()
        for info in manifest.layers.values():
            try:
                with np.load(self.files.dir / info["state"]) as state:
                    known.update(state["labels"][state["alive"]].tolist())
            except Exception:  # an unreadable state file: its labels stay unknown
                continue
        present = set(self._labels("SELECT label FROM records", []).tolist())
        report = {
            "reason": why,
            "index_records": len(known),
            "db_records": len(present),
            "lost_records": len(known - present),
            "index_watermark": manifest.watermark,
            "db_last_change": self.db.last_seq(),
        }
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO history (record_id, event, at, layer, details) "
                "VALUES ('*', 'recovered', strftime('%s', 'now'), NULL, ?)",
                (json.dumps(report, sort_keys=True),),
            )
        log.warning("memory store recovered from a damaged database", path=str(self.path), **report)
        self.recovered = report
        self.files.remove()  # the old index describes records that are gone

    def consistency(self) -> dict[str, dict[str, int | bool]]:
        """Per layer: records in SQLite vs live vectors in the index; ``ok`` needs the same
        count and the same sum of labels (so an index holding labels the database lost, with
        as many others it lacks, is not ok)."""
        with self._mutex:
            self.sync()
            sums = {layer.value: (0, 0) for layer in Layer}
            for layer, n, total in self.db.conn.execute(
                "SELECT layer, count(*), sum(label) FROM records GROUP BY layer"
            ):
                sums[layer] = (int(n), int(total or 0))
            out: dict[str, dict[str, int | bool]] = {}
            for layer, (n, total) in sums.items():
                index = self.layers.get(layer)
                live = index.live if index is not None else 0
                indexed_sum = int(index.labels().sum()) if index is not None else 0
                out[layer] = {
                    "records": n,
                    "indexed": live,
                    "ok": (n, total) == (live, indexed_sum),
                }
            return out

    def _inconsistent_layers(self) -> list[str]:
        return [layer for layer, c in self.consistency().items() if not c["ok"]]

    def damage_events(self, since: float = 0.0) -> list[dict[str, Any]]:
        """``index_damaged`` and ``recovered`` events (newest first) since a Unix time."""
        rows = self.db.conn.execute(
            "SELECT seq, event, at, details FROM history WHERE record_id = '*' AND "
            "event IN ('index_damaged', 'recovered') AND at >= ? ORDER BY seq DESC LIMIT 20",
            (since,),
        ).fetchall()
        return [
            {"seq": seq, "event": event, "at": float(at), "details": json.loads(details)}
            for seq, event, at, details in rows
        ]

    def _cross_check(self) -> dict[str, dict[str, Any]]:
        """Per layer, label by label: records the index lacks, index entries the database
        does not have, and vectors that differ between the two."""
        pin = self.pinned()
        out: dict[str, dict[str, Any]] = {}
        for layer in Layer:
            db_labels = np.sort(
                self._labels("SELECT label FROM records WHERE layer = ?", [layer.value])
            )
            index = self.layers.get(layer.value)
            indexed = np.sort(index.labels()) if index is not None else db_labels[:0]
            common = np.intersect1d(db_labels, indexed, assume_unique=True)
            differ = 0
            if index is not None and pin is not None and len(common):
                stored = index.vectors()
                for start in range(0, len(common), 4096):
                    chunk = common[start : start + 4096].tolist()
                    blobs = self.db.vectors_by_label(chunk)
                    keep = [lb for lb in chunk if len(blobs.get(lb, b"")) == pin[1] * 4]
                    if not keep:
                        continue
                    want = np.frombuffer(b"".join(blobs[lb] for lb in keep), dtype=np.float32)
                    have = stored[index.positions(np.asarray(keep, dtype=np.int64))]
                    diff = np.abs(have - want.reshape(len(keep), pin[1])).max(axis=1)
                    differ += int(np.count_nonzero(diff > 1e-5))
            missing = int(len(db_labels) - len(common))
            unknown = int(len(indexed) - len(common))
            out[layer.value] = {
                "records": len(db_labels),
                "indexed": len(indexed),
                "missing_in_index": missing,
                "unknown_to_db": unknown,
                "vectors_differ": differ,
                "ok": missing == unknown == differ == 0,
            }
        return out

    def check(self, *, repair: bool = False) -> dict[str, Any]:
        """SQLite's ``integrity_check``, the saved files' checksums, and the index checked
        label by label (and vector by vector) against the database; with ``repair``, an
        index that fails is rebuilt from SQLite and saved, then checked again."""
        with self._mutex:
            self.sync()
            integrity = [str(row[0]) for row in self.db.conn.execute("PRAGMA integrity_check")]
            checksums = self.files.verify()
            layers = self._cross_check()
            problems = [] if integrity == ["ok"] else [f"database: {integrity[0]}"]
            problems += [f"index file: {p}" for p in checksums]
            problems += [
                f"layer {layer}: {c['missing_in_index']} records not indexed, "
                f"{c['unknown_to_db']} index entries unknown to the database, "
                f"{c['vectors_differ']} vectors differ"
                for layer, c in layers.items()
                if not c["ok"]
            ]
            report: dict[str, Any] = {
                "path": str(self.path),
                "ok": not problems,
                "problems": problems,
                "integrity": integrity[:20],
                "checksums": checksums,
                "layers": layers,
                "index_status": dict(self.status),
                "recovered": self.recovered,
                "damage_events": self.damage_events(),
                "read_only": self.read_only,
                "repaired": [],
            }
            if repair and (checksums or any(not c["ok"] for c in layers.values())):
                self._writable("be repaired")
                self.rebuild()
                self.save_index(force=True)
                report["repaired"].append("index rebuilt from SQLite and saved")
                report["checksums"] = self.files.verify()
                report["layers"] = self._cross_check()
                index_ok = not report["checksums"] and all(
                    c["ok"] for c in report["layers"].values()
                )
                report["ok"] = index_ok and integrity == ["ok"]
                report["problems"] = [p for p in problems if p.startswith("database:")]
            return report
