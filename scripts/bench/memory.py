#!/usr/bin/env python3
"""magray-memory vs raw faiss (and Chroma / LanceDB when installed), side by side.

Usage::

    .venv/bin/python scripts/bench/memory.py [--sizes 10000 100000] [--large] [--queries 300]
                                             [--backend local|postgres|both]
                                             [--crossover] [--checksum N ...] [--json]

``--backend postgres`` (or ``both``) runs magray on PostgreSQL + pgvector started from
``pgserver`` in a temp dir (client and server on this machine, unix socket).

Data: synthetic clustered 384-d L2-normalised vectors (200 Gaussian clusters,
noise 0.35), queries drawn from the same distribution; every record carries
``{"p": i % 10}`` so ``where={"p": 3}`` selects 10 %.

Each (system, size) runs in its own subprocess, so peak RSS is that system's
own. All systems see the same vectors and queries. Single-query latencies use
one thread (faiss.omp_set_num_threads(1)); builds use all cores. Recall@10 is
measured against exact inner-product search (over the filtered subset for
filtered queries). "reopen" is the time to open the saved store/index from
disk; "first query" is the first search after that.

``--crossover`` measures exact flat search against HNSW at small sizes, which
is how the default ``memory.flat_threshold`` was chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
K = 10
M, EF_CONSTRUCTION = 32, 200


def ef_for(n: int) -> int:
    """efSearch at n vectors: magray's default (auto by layer size), used by raw faiss too."""
    from magray.memory._index import auto_ef_search

    return auto_ef_search(n)


def data(n: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal(size=(200, DIM), dtype=np.float32)
    x = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):  # in chunks: 1M x 384 in float64 would need 3 GB
        stop = min(n, start + 100_000)
        x[start:stop] = centres[rng.integers(0, 200, stop - start)]
        x[start:stop] += 0.35 * rng.standard_normal(size=(stop - start, DIM), dtype=np.float32)
    q = centres[rng.integers(0, 200, queries)] + 0.35 * rng.standard_normal(
        size=(queries, DIM), dtype=np.float32
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q.astype(np.float32)


def exact_topk(
    x: np.ndarray, q: np.ndarray, k: int, subset: np.ndarray | None = None
) -> np.ndarray:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    base = x if subset is None else x[subset]
    index = faiss.IndexFlatIP(DIM)
    index.add(base)
    _, ids = index.search(q, k)
    return ids if subset is None else subset[ids]


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / (len(found) * truth.shape[1])


def lat(fn: Any, queries: np.ndarray) -> tuple[float, float, list[Any]]:
    times, out = [], []
    for v in queries:
        start = time.perf_counter()
        out.append(fn(v))
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99)), out


def side_by_side(store: Any, queries: np.ndarray) -> dict[str, float]:
    """p50 of ``store.search`` and of raw faiss on the store's own index, in this process.

    Each query goes to one of the two, chosen at random, so both see the same machine load
    and neither gets the CPU caches warmed by the other running the same query first.
    """
    layer = store._backend.layers["assets"]
    index = layer.index  # the very faiss index the store searches
    index.hnsw.efSearch = ef_for(layer.live)
    rng = np.random.default_rng(7)
    times: dict[bool, list[float]] = {True: [], False: []}
    for v in queries:
        use_store = bool(rng.integers(2))
        start = time.perf_counter()
        if use_store:
            store.search(v, k=K)
        else:
            index.search(v[None], K)
        times[use_store].append((time.perf_counter() - start) * 1000)
    raw, ours = float(np.median(times[False])), float(np.median(times[True]))
    return {"raw_p50_ms": raw, "store_p50_ms": ours, "ratio": ours / raw}


def fresh_queries(nq: int, offset: int) -> np.ndarray:
    """Queries from the same clusters as :func:`data`, none of them among its first ``nq``."""
    return data(10, offset + nq)[1][offset:]


def rss_mb() -> float:
    """Peak RSS of this process (VmHWM; ru_maxrss would include the parent's from before exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- systems (one per subprocess)
def run_faiss(n: int, nq: int, work: Path) -> dict[str, Any]:
    import faiss

    x, q = data(n, nq)
    sel10 = np.flatnonzero(np.arange(n) % 10 == 3)
    threads = os.cpu_count() or 1
    faiss.omp_set_num_threads(threads)
    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(DIM, M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.add(x)
    build = time.perf_counter() - start
    index.hnsw.efSearch = ef_for(n)
    faiss.omp_set_num_threads(threads)
    start = time.perf_counter()
    index.search(q, K)
    qps = nq / (time.perf_counter() - start)
    faiss.omp_set_num_threads(1)
    p50, p99, res = lat(lambda v: index.search(v[None], K)[1][0].tolist(), q)
    mask = np.zeros(n, dtype=bool)
    mask[sel10] = True
    bitmap = np.packbits(mask, bitorder="little")
    params = faiss.SearchParametersHNSW(
        sel=faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap)), efSearch=ef_for(n)
    )
    f50, f99, fres = lat(lambda v: index.search(v[None], K, params=params)[1][0].tolist(), q)
    faiss.write_index(index, str(work / "faiss.index"))
    return {
        "build_s": build,
        "p50_ms": p50,
        "p99_ms": p99,
        "qps_batched": qps,
        "recall": recall(res, exact_topk(x, q, K)),
        "filtered_p50_ms": f50,
        "filtered_p99_ms": f99,
        "filtered_recall": recall(fres, exact_topk(x, q, K, sel10)),
        "rss_mb": rss_mb(),
    }


def run_magray(n: int, nq: int, work: Path) -> dict[str, Any]:
    import faiss

    from magray.common.settings import MemorySettings
    from magray.memory import MemoryStore

    x, q = data(n, nq)
    sel10 = np.flatnonzero(np.arange(n) % 10 == 3)
    settings = MemorySettings(dedupe=False, hnsw_m=M, hnsw_ef_construction=EF_CONSTRUCTION)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    path = work / "store"
    start = time.perf_counter()
    store = MemoryStore.open(path, None, dim=DIM, settings=settings)
    batch = 5000
    for i in range(0, n, batch):
        j = min(n, i + batch)
        store.add(
            [f"record {t}" for t in range(i, j)],
            [{"p": t % 10} for t in range(i, j)],
            ids=[str(t) for t in range(i, j)],
            vectors=x[i:j],
            layer="assets",
        )
    build = time.perf_counter() - start
    # Latencies first: the store caches the records of recent hits, so queries it has not
    # seen yet are the honest case. The batched QPS runs last, over the same queries.
    faiss.omp_set_num_threads(1)
    p50, p99, res = lat(lambda v: [int(h.id) for h in store.search(v, k=K)], q)
    f50, f99, fres = lat(lambda v: [int(h.id) for h in store.search(v, k=K, where={"p": 3})], q)
    same = side_by_side(store, fresh_queries(2 * nq, nq)) if n > 5000 else {}
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    start = time.perf_counter()
    store.search_many(q, k=K)
    qps = nq / (time.perf_counter() - start)
    kind = store.stats()["layers"]["assets"]["index"]
    start = time.perf_counter()
    store.close()
    close = time.perf_counter() - start
    return {
        "build_s": build,
        "p50_ms": p50,
        "p99_ms": p99,
        "qps_batched": qps,
        "recall": recall(res, exact_topk(x, q, K)),
        "filtered_p50_ms": f50,
        "filtered_p99_ms": f99,
        "filtered_recall": recall(fres, exact_topk(x, q, K, sel10)),
        "close_s": close,
        "index": kind,
        "same_process": same,
        "rss_mb": rss_mb(),
    }


def run_magray_pg(n: int, nq: int, work: Path) -> dict[str, Any]:
    """The same as ``run_magray`` on the postgres backend (PostgreSQL 16 + pgvector from
    pgserver, over a unix socket on this machine). Reopen is measured here (the server
    lives only as long as this process)."""
    import warnings

    from magray.common.settings import MemorySettings
    from magray.memory import MemoryStore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(work / "pg", cleanup_mode="stop")
    dsn = server.get_uri() + "&schema=bench"
    x, q = data(n, nq)
    sel10 = np.flatnonzero(np.arange(n) % 10 == 3)
    settings = MemorySettings(dedupe=False, hnsw_m=M, hnsw_ef_construction=EF_CONSTRUCTION)
    try:
        start = time.perf_counter()
        store = MemoryStore.open(dsn, None, dim=DIM, settings=settings)
        # One add() of everything: the backend loads the rows, then bulk-builds the HNSW
        # index (row-by-row HNSW inserts are ~10x slower; measured below as "incremental").
        store.add(
            [f"record {t}" for t in range(n)],
            [{"p": t % 10} for t in range(n)],
            ids=[str(t) for t in range(n)],
            vectors=x,
            layer="assets",
        )
        build = time.perf_counter() - start
        p50, p99, res = lat(lambda v: [int(h.id) for h in store.search(v, k=K)], q)
        f50, f99, fres = lat(lambda v: [int(h.id) for h in store.search(v, k=K, where={"p": 3})], q)
        start = time.perf_counter()
        store.search_many(q, k=K)
        qps = nq / (time.perf_counter() - start)
        kind = store.stats()["layers"]["assets"]["index"]
        extra, _ = data(1000, 1, seed=1)
        start = time.perf_counter()
        for i in range(0, 1000, 100):  # into the indexed table, 100 rows per add()
            store.add(
                [f"extra {t}" for t in range(i, i + 100)],
                vectors=extra[i : i + 100],
                layer="interact",
            )
        incremental = 1000 / (time.perf_counter() - start)
        start = time.perf_counter()
        store.close()
        close = time.perf_counter() - start
        start = time.perf_counter()
        again = MemoryStore.open(dsn, None, settings=settings)
        opened = time.perf_counter()
        again.search(q[0], k=K)
        first = time.perf_counter()
        again.search(q[1], k=K, where={"p": 3})
        filtered = time.perf_counter() - first
        again.close()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()
    return {
        "build_s": build,
        "p50_ms": p50,
        "p99_ms": p99,
        "qps_batched": qps,
        "recall": recall(res, exact_topk(x, q, K)),
        "filtered_p50_ms": f50,
        "filtered_p99_ms": f99,
        "filtered_recall": recall(fres, exact_topk(x, q, K, sel10)),
        "close_s": close,
        "index": kind,
        "incremental_rows_per_s": incremental,
        "reopen_s": opened - start,
        "first_query_ms": (first - opened) * 1000,
        "first_filtered_ms": filtered * 1000,
        "rss_mb": rss_mb(),  # this client process only; the server's memory is not counted
    }


def run_chroma(n: int, nq: int, work: Path) -> dict[str, Any]:
    import chromadb

    x, q = data(n, nq)
    sel10 = np.flatnonzero(np.arange(n) % 10 == 3)
    client = chromadb.PersistentClient(path=str(work / "chroma"))
    col = client.create_collection("bench", metadata={"hnsw:space": "ip"})
    start = time.perf_counter()
    for i in range(0, n, 5000):
        j = min(n, i + 5000)
        col.add(
            ids=[str(t) for t in range(i, j)],
            embeddings=x[i:j].tolist(),
            metadatas=[{"p": t % 10} for t in range(i, j)],
        )
    build = time.perf_counter() - start
    p50, p99, res = lat(
        lambda v: [int(i) for i in col.query(query_embeddings=[v.tolist()], n_results=K)["ids"][0]],
        q,
    )
    f50, f99, fres = lat(
        lambda v: [
            int(i)
            for i in col.query(query_embeddings=[v.tolist()], n_results=K, where={"p": 3})["ids"][0]
        ],
        q,
    )
    return {
        "build_s": build,
        "p50_ms": p50,
        "p99_ms": p99,
        "qps_batched": None,
        "recall": recall(res, exact_topk(x, q, K)),
        "filtered_p50_ms": f50,
        "filtered_p99_ms": f99,
        "filtered_recall": recall(fres, exact_topk(x, q, K, sel10)),
        "rss_mb": rss_mb(),
    }


def run_lancedb(n: int, nq: int, work: Path) -> dict[str, Any]:
    import lancedb
    import pyarrow as pa

    x, q = data(n, nq)
    sel10 = np.flatnonzero(np.arange(n) % 10 == 3)
    db = lancedb.connect(str(work / "lance"))
    table = pa.table(
        {
            "id": pa.array(np.arange(n, dtype=np.int64)),
            "p": pa.array((np.arange(n) % 10).astype(np.int64)),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), DIM),
        }
    )
    start = time.perf_counter()
    tbl = db.create_table("b", table)
    tbl.create_index(metric="dot", vector_column_name="vector", index_type="IVF_HNSW_SQ")
    tbl.create_scalar_index("p", index_type="BITMAP")
    build = time.perf_counter() - start

    def query(v: np.ndarray, where: str | None = None) -> list[int]:
        search = tbl.search(v).distance_type("dot").limit(K).select(["id"])
        if where:
            search = search.where(where, prefilter=True)
        return [int(i) for i in search.to_arrow()["id"].to_pylist()]

    p50, p99, res = lat(query, q)
    f50, f99, fres = lat(lambda v: query(v, "p = 3"), q)
    return {
        "build_s": build,
        "p50_ms": p50,
        "p99_ms": p99,
        "qps_batched": None,
        "recall": recall(res, exact_topk(x, q, K)),
        "filtered_p50_ms": f50,
        "filtered_p99_ms": f99,
        "filtered_recall": recall(fres, exact_topk(x, q, K, sel10)),
        "rss_mb": rss_mb(),
    }


def reopen(system: str, work: Path, nq: int) -> dict[str, Any]:
    """Open a saved index/store in this fresh process; time the open and the first queries."""
    _, q = data(10, nq)
    v0, v1 = q[0], q[1]
    import faiss  # imports are not part of "reopen"

    faiss.omp_set_num_threads(1)
    if system == "magray":
        import magray.common.settings  # noqa: F401  (pydantic; MemoryStore.open loads it)
        from magray.memory import MemoryStore
    elif system == "chroma":
        import chromadb
    elif system == "lancedb":
        import lancedb
    filtered: float | None = None
    reopen_rss: float | None = None
    cold: dict[str, float] = {}
    warmed: dict[str, float] = {}
    ef_for(0)  # its import is not part of "reopen" either
    start = time.perf_counter()
    if system == "faiss":
        index = faiss.read_index(str(work / "faiss.index"))
        index.hnsw.efSearch = ef_for(index.ntotal)
        opened = time.perf_counter()
        index.search(v0[None], K)
        first = time.perf_counter()
    elif system == "magray":
        store = MemoryStore.open(work / "store", None)
        opened = time.perf_counter()
        store.search(v0, k=K)
        first = time.perf_counter()
        from magray.memory._index import IndexFiles

        # What the open's checksum verification costs when not overlapped with faiss's read:
        # every file the manifest lists, hashed again one after the other (OS cache warm).
        start_sum = time.perf_counter()
        assert IndexFiles(work / "store" / "index").verify() == []
        checksum_s = time.perf_counter() - start_sum
        checksum_bytes = sum(p.stat().st_size for p in (work / "store" / "index").iterdir())
        store.search(v1, k=K, where={"p": 3})
        filtered = time.perf_counter() - first
        reopen_rss = rss_mb()
        if nq > 2 and store.stats()["layers"]["assets"]["index"] == "hnsw":
            # a fresh process: the rows of hits are not cached yet, so they come from SQLite
            cold = side_by_side(store, fresh_queries(2 * nq, 3 * nq))
            # then the same after MemoryStore.warm_up(), on queries neither run has seen
            start_warm = time.perf_counter()
            store.warm_up()
            warm_s = time.perf_counter() - start_warm
            warmed = {**side_by_side(store, fresh_queries(2 * nq, 5 * nq)), "warm_up_s": warm_s}
    elif system == "chroma":
        col = chromadb.PersistentClient(path=str(work / "chroma")).get_collection("bench")
        opened = time.perf_counter()
        col.query(query_embeddings=[v0.tolist()], n_results=K)
        first = time.perf_counter()
        col.query(query_embeddings=[v1.tolist()], n_results=K, where={"p": 3})
        filtered = time.perf_counter() - first
    else:
        tbl = lancedb.connect(str(work / "lance")).open_table("b")
        opened = time.perf_counter()
        tbl.search(v0).distance_type("dot").limit(K).to_arrow()
        first = time.perf_counter()
        tbl.search(v1).distance_type("dot").limit(K).where("p = 3", prefilter=True).to_arrow()
        filtered = time.perf_counter() - first
    sums = (
        {"checksum_s": checksum_s, "checksum_mb": checksum_bytes / 1e6}
        if system == "magray"
        else {}
    )
    return {
        **sums,
        "reopen_s": opened - start,
        "first_query_ms": (first - opened) * 1000,
        "first_filtered_ms": None if filtered is None else filtered * 1000,
        "reopen_rss_mb": reopen_rss or rss_mb(),  # before the latency loop below
        "cold_same_process": cold,
        "warmed_same_process": warmed,
    }


SYSTEMS = {
    "faiss": run_faiss,
    "magray": run_magray,
    "magray-postgres": run_magray_pg,
    "chroma": run_chroma,
    "lancedb": run_lancedb,
}


def available(system: str) -> str | None:
    """None when runnable, else why not."""
    import importlib.util

    module = {"chroma": "chromadb", "lancedb": "lancedb"}.get(system)
    if module and importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install 'magray-memory[bench]')"
    if system == "magray-postgres":
        for module in ("pgserver", "psycopg", "pgvector"):
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (pip install 'magray-memory[postgres,test]')"
    return None


def crossover(sizes: list[int], nq: int) -> list[dict[str, Any]]:
    import faiss

    rows = []
    for n in sizes:
        x, q = data(n, nq)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        flat = faiss.IndexFlatIP(DIM)
        flat.add(x)
        start = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(DIM, M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = EF_CONSTRUCTION
        hnsw.add(x)
        build = time.perf_counter() - start
        hnsw.hnsw.efSearch = ef_for(n)
        faiss.omp_set_num_threads(1)
        f50, _, _ = lat(lambda v, f=flat: f.search(v[None], K), q)
        h50, _, res = lat(lambda v, h=hnsw: h.search(v[None], K)[1][0].tolist(), q)
        rows.append(
            {
                "n": n,
                "flat_p50_ms": f50,
                "hnsw_p50_ms": h50,
                "hnsw_build_s": build,
                "hnsw_recall": recall(res, exact_topk(x, q, K)),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def checksum_cost(n: int, repeats: int = 3) -> dict[str, Any]:
    """What verifying a saved layer's checksums costs against reading it, at ``n`` vectors.

    The layer is a flat index (building HNSW at 1M takes ~15 min; its file is the same
    vectors plus ~0.25 GB of graph, which is read and hashed the same way). Side by side in
    this process, best of ``repeats``, OS cache warm: faiss.read_index alone; the file's
    xxh3 alone (memory-mapped); and IndexFiles.load (which restores the layer too) with its
    verification (the index file hashed in a thread while faiss reads it) and without it.
    """
    import faiss

    from magray.memory import _index
    from magray.memory._index import FLAT, HNSWParams, IndexFiles, LayerIndex, file_digest

    def load_unverified() -> float:
        real = _index._verify
        _index._verify = lambda path, expected: None  # type: ignore[assignment]
        try:
            start = time.perf_counter()
            files.load(HNSWParams())
            return time.perf_counter() - start
        finally:
            _index._verify = real

    x, _ = data(n, 1)
    layer = LayerIndex.build(DIM, np.arange(1, n + 1, dtype=np.int64), x, kind=FLAT)
    del x
    with tempfile.TemporaryDirectory(prefix="bench-checksum-") as tmp:
        files = IndexFiles(Path(tmp))
        files.save({"assets": layer}, watermark=n, epoch=0, model_id="bench", dim=DIM)
        del layer
        (path,) = Path(tmp).glob("*.faiss")
        read, digest, load, plain = [], [], [], []
        for _ in range(repeats):
            plain.append(load_unverified())
            start = time.perf_counter()
            index = faiss.read_index(str(path))
            read.append(time.perf_counter() - start)
            del index
            start = time.perf_counter()
            file_digest(path)
            digest.append(time.perf_counter() - start)
            start = time.perf_counter()
            loaded = files.load(HNSWParams())
            load.append(time.perf_counter() - start)
            del loaded
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        index_size = path.stat().st_size
    return {
        "n": n,
        "files_mb": size / 1e6,
        "read_index_s": min(read),
        "xxh3_s": min(digest),
        "xxh3_gb_per_s": index_size / min(digest) / 1e9,
        "load_s": min(plain),
        "load_verified_s": min(load),
        "hash_vs_load_pct": 100 * min(digest) / min(plain),
        "verify_overhead_pct": 100 * (min(load) - min(plain)) / min(plain),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--large", action="store_true", help="also 1,000,000 vectors")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--systems", nargs="+", default=["faiss", "magray", "chroma", "lancedb"])
    parser.add_argument(
        "--backend",
        choices=["local", "postgres", "both"],
        default="local",
        help="magray backend(s) to run: local (SQLite + faiss), postgres (pgvector, started "
        "from pgserver) or both side by side",
    )
    parser.add_argument("--crossover", action="store_true")
    parser.add_argument(
        "--checksum",
        type=int,
        nargs="+",
        metavar="N",
        help="only measure the checksum verification of a saved layer of N vectors",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("SYSTEM", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--reopen", nargs=2, metavar=("SYSTEM", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reopen:
        print(json.dumps(reopen(args.reopen[0], Path(args.reopen[1]), args.queries)))
        return
    if args.one:
        system, n = args.one[0], int(args.one[1])
        with tempfile.TemporaryDirectory(prefix=f"bench-{system}-") as work:
            row = SYSTEMS[system](n, args.queries, Path(work))
            if system == "magray-postgres":  # reopen measured in-process (the server stops)
                print(json.dumps(row))
                return
            again = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--reopen",
                    system,
                    work,
                    "--queries",
                    str(args.queries),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            row.update(json.loads(again.stdout.strip().splitlines()[-1]))
            print(json.dumps(row))
        return
    if args.checksum:
        for n in args.checksum:
            print(json.dumps(checksum_cost(n)), flush=True)
        return
    if args.crossover:
        rows = crossover([1000, 2000, 5000, 10_000, 20_000, 50_000], args.queries)
        print(json.dumps(rows, indent=2) if args.json else _crossover_table(rows))
        return
    sizes = args.sizes + ([1_000_000] if args.large else [])
    systems: list[str] = []
    for system in args.systems:
        if system != "magray":
            systems.append(system)
            continue
        if args.backend in ("local", "both"):
            systems.append("magray")
        if args.backend in ("postgres", "both"):
            systems.append("magray-postgres")
    args.systems = systems
    results: dict[str, dict[str, Any]] = {}
    for n in sizes:
        for system in args.systems:
            why = available(system) if system in SYSTEMS else f"no runner for {system} yet"
            if why:
                print(f"skip {system}: {why}", file=sys.stderr)
                continue
            print(f"running {system} at {n:,}...", file=sys.stderr)
            out = subprocess.run(
                [sys.executable, __file__, "--one", system, str(n), "--queries", str(args.queries)],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                print(f"{system} at {n} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            results.setdefault(str(n), {})[system] = json.loads(out.stdout.strip().splitlines()[-1])
    meta = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "queries": args.queries,
    }
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
    else:
        print(_table(results))
        print()
        print(_same_process_table(results))


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def _table(results: dict[str, dict[str, Any]]) -> str:
    cols = [
        ("build_s", "build/ingest s", 1),
        ("p50_ms", "p50 ms", 3),
        ("p99_ms", "p99 ms", 3),
        ("qps_batched", "QPS", 0),
        ("recall", "recall@10", 3),
        ("filtered_p50_ms", "10% filter p50 ms", 3),
        ("filtered_recall", "filter recall@10", 3),
        ("reopen_s", "reopen s", 3),
        ("first_query_ms", "1st query ms", 2),
        ("first_filtered_ms", "1st filtered ms", 1),
        ("rss_mb", "peak RSS MB", 0),
        ("reopen_rss_mb", "RSS after reopen MB", 0),
    ]
    lines = [
        "| n | system | " + " | ".join(c[1] for c in cols) + " |",
        "|---|---|" + "---:|" * len(cols),
    ]
    for n, systems in results.items():
        for name, row in systems.items():
            lines.append(
                f"| {int(n):,} | {name} | "
                + " | ".join(_fmt(row.get(c[0]), c[2]) for c in cols)
                + " |"
            )
    return "\n".join(lines)


def _same_process_table(results: dict[str, dict[str, Any]]) -> str:
    """magray's search beside raw faiss on the store's own index, in one process."""
    lines = [
        "| n | hit rows | raw faiss p50 ms | magray p50 ms | magray / faiss |",
        "|---|---|---:|---:|---:|",
    ]
    for n, systems in results.items():
        row = systems.get("magray") or {}
        for label, key in (
            ("cached (after ingest)", "same_process"),
            ("cold (reopened)", "cold_same_process"),
            ("reopened, then `warm_up()`", "warmed_same_process"),
        ):
            m = row.get(key) or {}
            if m:
                shown = f"{label} ({m['warm_up_s']:.2f} s)" if "warm_up_s" in m else label
                lines.append(
                    f"| {int(n):,} | {shown} | {m['raw_p50_ms']:.3f} | {m['store_p50_ms']:.3f} "
                    f"| {m['ratio']:.2f} |"
                )
    return "\n".join(lines)


def _crossover_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| n | flat p50 ms | HNSW p50 ms | HNSW build s | HNSW recall@10 |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['flat_p50_ms']:.3f} | {r['hnsw_p50_ms']:.3f} | "
            f"{r['hnsw_build_s']:.2f} | {r['hnsw_recall']:.3f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
