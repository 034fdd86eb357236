"""Search of the postgres backend: pgvector's inner product, exact or through HNSW.

Search is exact (a sequential scan) while the matching records number at most
``flat_threshold`` (filters: ``exact_filter_limit``), like the local backend's flat
index; above that it uses HNSW with ``hnsw.ef_search`` (unset: :func:`auto_ef_search` of
the table's size, as on local), and falls back to an exact scan when a filter leaves
HNSW with fewer than ``k`` hits (pgvector 0.6 filters after the index scan).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from magray.memory._columns import uses_access_fields
from magray.memory._filters import compile_where
from magray.memory._layerindex import auto_ef_search
from magray.memory._pgcore import PgCore
from magray.memory._sql import POSTGRES
from magray.memory._types import Hit, Layer

__all__ = ["PgSearch"]


class PgSearch(PgCore):
    """Top-k search over ``records`` (one query per query vector, one transaction)."""

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        layers: Sequence[Layer],
        where: dict[str, Any] | None,
        now: float,
        ef_search: int | None = None,
    ) -> list[Hit]:
        """Top-k by inner product among matching live records (exact when few match)."""
        return self.search_many(
            query.reshape(1, -1), k, layers=layers, where=where, now=now, ef_search=ef_search
        )[0]

    def search_many(
        self,
        queries: np.ndarray,
        k: int,
        *,
        layers: Sequence[Layer],
        where: dict[str, Any] | None,
        now: float,
        ef_search: int | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for a batch of query vectors ``(nq, dim)`` with one filter."""
        sql, params = compile_where(where, POSTGRES)
        if where and uses_access_fields(where):
            self.flush()  # the filter reads access counts
        names = [layer.value for layer in layers]
        if not names or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        base = (
            f"FROM {self._s}.records WHERE layer = ANY(%s) "
            f"AND (expires_at IS NULL OR expires_at > %s) AND ({sql})"
        )
        base_args: list[Any] = [names, now, *params]
        limit = self.settings.exact_filter_limit

        def run() -> list[list[Hit]]:
            out: list[list[Hit]] = []
            with self._tx() as conn:
                ef = max(int(ef_search or self.settings.hnsw_ef_search or self._auto_ef(conn)), k)
                if where:
                    # Exact when few records match (as on local); otherwise HNSW, which
                    # pgvector filters after the scan: a wide candidate list keeps k hits.
                    matching = conn.execute(
                        f"SELECT count(*) FROM (SELECT 1 {base} LIMIT %s) AS m",
                        (*base_args, limit + 1),
                    ).fetchone()[0]
                    exact = matching <= limit
                    ef_used = 20 * k  # ~10 % selectivity still leaves k hits after filtering
                else:
                    # The index exists only past flat_threshold records (see _ensure_index).
                    matching = k
                    exact = not self._has_index(conn)
                    ef_used = ef
                if exact:
                    conn.execute("SET LOCAL enable_indexscan = off")
                else:
                    # The planner cannot estimate the JSON filters and would sort all matches
                    # instead of walking the HNSW graph; only the index scan is left enabled.
                    for knob in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                        conn.execute(f"SET LOCAL {knob} = off")
                    conn.execute(f"SET LOCAL hnsw.ef_search = {min(max(ef_used, ef), 1000)}")
                for q in queries:
                    vector = np.asarray(q, dtype=np.float32)
                    rows = self._query(conn, base, base_args, vector, k, exact=exact)
                    if not exact and len(rows) < min(k, matching):
                        self._planner(conn, exact=True)
                        rows = self._query(conn, base, base_args, vector, k, exact=True)
                        self._planner(conn, exact=False)
                    rows.sort(key=lambda r: (-r[0], r[1]))
                    out.append(
                        [Hit(r[2], r[0], r[3], json.loads(r[4]), Layer(r[5])) for r in rows[:k]]
                    )
            return out

        return self._retry(run)

    def _auto_ef(self, conn: Any) -> int:
        """The HNSW search breadth for the table's size, as on ``local`` (:func:`auto_ef_search`):
        the size is PostgreSQL's row estimate (``reltuples``), read at most every 30 s."""
        cached = self._ef_auto
        now = time.monotonic()
        if cached is not None and now - cached[0] < 30.0:
            return cached[1]
        row = conn.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            (f"{self.schema}.records",),
        ).fetchone()
        rows = int(row[0]) if row is not None and row[0] is not None else -1
        if rows < 0:  # never analysed: count what is there, up to where ef starts to grow
            rows = self._bounded_count(conn, 100_000)
        ef = auto_ef_search(rows)
        self._ef_auto = (now, ef)
        return ef

    @staticmethod
    def _planner(conn: Any, *, exact: bool) -> None:
        """Switch the transaction between an exact scan and a forced HNSW index scan."""
        value = "on" if exact else "off"
        for knob in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            conn.execute(f"SET LOCAL {knob} = {value}")
        conn.execute(f"SET LOCAL enable_indexscan = {'off' if exact else 'on'}")

    def _query(
        self, conn: Any, base: str, args: list[Any], vector: np.ndarray, k: int, *, exact: bool
    ) -> list[tuple[float, int, str, str, str, str]]:
        order = "embedding <#> %s, label" if exact else "embedding <#> %s"
        rows = conn.execute(
            f"SELECT -(embedding <#> %s), label, id, text, metadata_text, layer {base} "
            f"ORDER BY {order} LIMIT %s",
            (vector, *args, vector, k),
        ).fetchall()
        return [(float(r[0]), int(r[1]), r[2], r[3], r[4], r[5]) for r in rows]
