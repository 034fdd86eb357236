"""The postgres backend: PostgreSQL + pgvector behind the same :class:`StorageBackend` API.

One store is one PostgreSQL schema (``magray`` by default; ``?schema=NAME`` in the
DSN or ``memory.pg_schema`` picks another), holding ``records`` (a ``vector(dim)``
column with an HNSW index using ``vector_ip_ops``, ``jsonb`` metadata with a GIN
index), ``history``, ``meta`` and ``embed_cache``. Several processes and hosts may
use one store at once. The backend is layered like the local one: ``_pgschema``
(DSN, tables, migrations) → ``_pgcore`` (connections, retries, pin, the primitives of
the shared record operations in ``_sqlrecords``) → ``_pgsearch`` (search) → here
(stats, consistency, rebuild, backup, vacuum, re-embedding, close).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from magray.common.errors import InvalidInputError
from magray.memory._dsn import redact_dsn as redact
from magray.memory._pgschema import is_dsn, split_dsn
from magray.memory._pgsearch import PgSearch
from magray.memory._types import Layer

if TYPE_CHECKING:
    from magray.common.settings import MemorySettings

__all__ = ["PostgresBackend", "is_dsn", "open_backend", "redact", "split_dsn"]


def open_backend(dsn: str, settings: MemorySettings) -> PostgresBackend:
    """Entry point ``magray.memory.backends: postgres``."""
    if not is_dsn(dsn):
        raise InvalidInputError(
            f"the postgres memory backend needs a postgresql://... DSN, not {dsn!r}",
            hint="set memory.dsn (MAGRAY_MEMORY__DSN=postgresql://user@host/db) or pass the "
            "DSN to MemoryStore.open()",
        )
    return PostgresBackend(dsn, settings=settings)


class PostgresBackend(PgSearch):
    """A store in one PostgreSQL schema (see :class:`~magray.memory._pgcore.PgCore`).

    Args:
        dsn: ``postgresql://user:password@host:port/db`` (``?schema=NAME`` optional).
        settings: The ``[memory]`` settings (pool size, HNSW parameters, thresholds).
    """

    # ------------------------------------------------------------ operations
    def stats(self) -> dict[str, Any]:
        pin = self.pinned()
        counts = self.counts()

        def read(conn: Any) -> tuple[int, int, int]:
            history = conn.execute(f"SELECT count(*) FROM {self._s}.history").fetchone()[0]
            table = conn.execute(
                "SELECT pg_total_relation_size(%s)", (f"{self.schema}.records",)
            ).fetchone()[0]
            index = conn.execute(
                "SELECT coalesce(pg_relation_size(to_regclass(%s)), 0)",
                (f"{self.schema}.records_embedding",),
            ).fetchone()[0]
            return int(history), int(table), int(index)

        history, table, index = self._run(read)
        return {
            "backend": self.name,
            "path": self.location,
            "model_id": pin[0] if pin else None,
            "dim": pin[1] if pin else None,
            "records": sum(counts.values()),
            "layers": {
                layer: {
                    # what a search of this layer does: an exact scan up to flat_threshold
                    "index": "flat" if n <= self.settings.flat_threshold else "hnsw",
                    "records": n,
                    "indexed": n,
                    "tombstones": 0,
                    "compacting": False,  # PostgreSQL maintains its HNSW index itself
                }
                for layer, n in counts.items()
            },
            "bytes": {"db": table, "index": index},
            "history_events": history,
            "index_status": {"index": "postgres"},
            "unsaved_changes": len(self._access),
        }

    def consistency(self) -> dict[str, dict[str, int | bool]]:
        """Per layer: records vs rows with a vector of the pinned dim (the HNSW index's rows)."""
        pin = self.pinned()
        dim = pin[1] if pin else 0

        rows = self._run(
            lambda conn: conn.execute(
                f"SELECT layer, count(*), count(*) FILTER (WHERE vector_dims(embedding) = %s)"
                f" FROM {self._s}.records GROUP BY layer",
                (dim,),
            ).fetchall()
        )
        out: dict[str, dict[str, int | bool]] = {
            layer.value: {"records": 0, "indexed": 0, "ok": True} for layer in Layer
        }
        for layer, n, indexed in rows:
            out[layer] = {"records": int(n), "indexed": int(indexed), "ok": n == indexed}
        return out

    def warm_up(self) -> int:
        """Nothing to warm: hits come back with their rows from the one SQL query."""
        return 0

    def save_index(self, *, force: bool = False) -> bool:
        """Nothing to save: PostgreSQL maintains the HNSW index transactionally."""
        return False

    def rebuild(self) -> None:
        """Rebuild the HNSW index (built only once the store outgrows ``flat_threshold``)."""

        def rebuild(conn: Any) -> None:
            conn.execute(f"DROP INDEX IF EXISTS {self._s}.records_embedding")
            self._ensure_index(conn)

        self._run(rebuild, lock=True)

    def backup(self, dest: Path) -> dict[str, Any]:
        """Write every record with its vector and history as JSON lines into ``dest``.

        (For the whole database use PostgreSQL's own tools: ``pg_dump`` or PITR.)
        """
        from magray.common import paths
        from magray.common.errors import ConflictError
        from magray.common.fs import atomic_writer

        paths.ensure_dir(dest)
        target = dest / "records.jsonl"
        if target.exists():
            raise ConflictError(
                f"{target} already exists", hint="back up into a new or empty directory"
            )
        n = 0
        with atomic_writer(target, mode=0o600) as raw:
            for record in self.iter_records(with_vector=True):
                line = record.to_dict(with_vector=True)
                line["history"] = self.history(record.id)
                raw.write((json.dumps(line, ensure_ascii=False) + "\n").encode())
                n += 1
        return {"path": str(dest), "bytes": target.stat().st_size, "records": n}

    def vacuum(self) -> dict[str, Any]:
        """``VACUUM ANALYZE`` the store's tables."""
        self.flush()
        before = self.stats()["bytes"]

        def run() -> None:
            with self.pool.connection() as conn:
                conn.autocommit = True
                try:
                    for table in ("records", "history", "embed_cache", "meta"):
                        conn.execute(f"VACUUM ANALYZE {self._s}.{table}")
                finally:
                    conn.autocommit = False

        self._retry(run)
        return {
            "tombstones_dropped": 0,
            "bytes_before": before,
            "bytes_after": self.stats()["bytes"],
        }

    # ------------------------------------------------------------ re-embedding (see SqlRecords)
    def _reembed_begin(self) -> None:
        self.flush()

        def untype(conn: Any) -> None:
            # An untyped column takes vectors of any dim while the store moves between models.
            conn.execute(f"DROP INDEX IF EXISTS {self._s}.records_embedding")
            conn.execute(f"ALTER TABLE {self._s}.records ALTER COLUMN embedding TYPE vector")

        self._run(untype)

    def _store_vectors(
        self, labels: list[int], vectors: np.ndarray, *, model_id: str, dim: int
    ) -> None:
        rows = [
            (np.asarray(v, np.float32), model_id, dim, label)
            for label, v in zip(labels, vectors, strict=True)
        ]
        self._run(
            lambda conn: self.dialect.executemany(
                conn,
                f"UPDATE {self._s}.records SET embedding = %s, model_id = %s, dim = %s "
                "WHERE label = %s",
                rows,
            )
        )

    def _reembed_end(self, *, model_id: str, dim: int, now: float, done: int) -> None:
        def pin(conn: Any) -> None:
            self._set_meta(conn, "model_id", model_id)
            self._set_meta(conn, "dim", str(dim))
            self._index_for_dim(conn, dim)
            details = {"model_id": model_id, "dim": dim, "records": done}
            self._log(conn, "*", "reindex", now, layer=None, details=details)

        self._run(pin, lock=True)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self.pool.close()
