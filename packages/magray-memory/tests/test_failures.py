"""Every storage failure is a magray error, under real conditions (a full tmpfs, a file
size limit, another user's read-only store); input validation; a silent library."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from magray.common.errors import InvalidInputError
from magray.memory import MemoryStore
from memtestkit import unit_vectors

DIM = 16

# Runs the scenario the test passes as argv[2] on the store argv[1]; prints one JSON line
# per step: {"step", "ok"} or {"step", "error": type name, "code", "message", "hint"}.
_SCENARIO = r"""
import json, os, resource, signal, sys
import numpy as np
from magray.memory import MemoryStore

path, scenario = sys.argv[1], sys.argv[2]

def step(name, fn):
    try:
        fn()
        print(json.dumps({"step": name, "ok": True}), flush=True)
    except BaseException as exc:
        print(json.dumps({"step": name, "error": type(exc).__name__,
                          "code": getattr(exc, "code", None), "message": str(exc),
                          "hint": getattr(exc, "hint", None)}), flush=True)

def fill():
    rng = np.random.default_rng(0)
    for i in range(2000):
        store.add([f"t{i}-{j} " * 40 for j in range(50)], vectors=rng.random((50, 16)) + 0.1)

if scenario in ("as-nobody", "read-only"):
    if scenario == "as-nobody":
        # import now what opening loads lazily: nobody cannot read the venv under /root
        import traceback, faiss, filelock, xxhash, sqlite3
        import magray.memory._local, magray.common.paths
        from magray.common.settings import MemorySettings
        MemorySettings()
        os.setgid(65534)
        os.setuid(65534)
    step("open", lambda: globals().update(store=MemoryStore.open(path, None)))
    step("search", lambda: store.search(np.ones(16), k=3)[0].id)
    step("get", lambda: store.get("r1"))
    step("add", lambda: store.add(["x"], vectors=[np.ones(16)]))
    step("close", lambda: store.close())
    step("open-new", lambda: MemoryStore.open(path + "/sub", None, dim=16))
else:
    store = MemoryStore.open(path, None, dim=16)
    store.add(["first"], ids=["r1"], vectors=[np.ones(16)])
    if scenario == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))
    step("add", fill)
    step("search", lambda: store.search(np.ones(16), k=1))  # its access count is pending
    step("get", lambda: store.get("r1"))  # flushes the counts: a warning, not a failure
    step("close", lambda: store.close())
"""


def _run(args: list[str], path: Path, scenario: str) -> dict[str, dict[str, object]]:
    done = subprocess.run(
        [*args, sys.executable, "-c", _SCENARIO, str(path), scenario],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode and "unshare" in args[:1]:
        pytest.skip(f"no user+mount namespace here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    return {item["step"]: item for item in map(json.loads, done.stdout.splitlines())}


def test_a_full_disk_is_storage_full(tmp_path: Path) -> None:
    """Before: raw sqlite3.OperationalError from add(), OSError ENOSPC from close()."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    mount = tmp_path / "small"
    mount.mkdir()
    script = f'mount -t tmpfs -o size=600k tmpfs {mount} && exec "$@"'  # a 600 KB disk
    steps = _run(["unshare", "-U", "-r", "-m", "sh", "-c", script, "sh"], mount / "s", "full")
    assert steps["add"]["error"] == "StorageFullError"
    assert steps["add"]["code"] == "storage.full"
    assert "no space left" in str(steps["add"]["message"])
    assert "free disk space" in str(steps["add"]["hint"])
    assert steps["get"]["ok"]
    assert steps["search"]["ok"]
    assert steps["close"]["ok"]  # the index is a cache: close warns instead of raising


def test_a_file_size_limit_is_storage_full(tmp_path: Path) -> None:
    """Before: raw sqlite3.OperationalError ('disk I/O error') from add()."""
    steps = _run([], tmp_path / "s", "fsize")
    assert steps["add"]["code"] == "storage.full"
    assert "RLIMIT_FSIZE" in str(steps["add"]["message"])
    assert steps["get"]["ok"]
    assert steps["close"]["ok"]


@pytest.fixture
def world_readable_store() -> Iterator[Path]:
    """A store owned by root in a directory only root may write (tests run as root, who
    bypasses permissions: the scenario drops to uid 65534 'nobody')."""
    if os.getuid() != 0:
        pytest.skip("needs root to create a store another user cannot write")
    base = Path(tempfile.mkdtemp(prefix="magray-ro-", dir="/tmp"))
    try:
        base.chmod(0o755)
        path = base / "s"
        with MemoryStore.open(path, None, dim=DIM) as store:
            store.add(["a", "b"], ids=["r1", "r2"], vectors=unit_vectors(2, DIM, seed=1))
        for p in [path, *path.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        yield path
    finally:
        shutil.rmtree(base)


def test_a_store_another_user_cannot_write_opens_read_only(world_readable_store: Path) -> None:
    """Before: StoreCorruptError 'restore it from a backup, or move it away' on a healthy
    store; a read-only parent or index.lock raised a raw PermissionError."""
    steps = _run([], world_readable_store, "as-nobody")
    assert steps["open"]["ok"]
    assert steps["search"]["ok"]
    assert steps["get"]["ok"]
    assert steps["add"]["code"] == "storage.read_only"
    assert "searching and reading work" in str(steps["add"]["hint"])
    assert "backup" not in str(steps["open"])
    assert steps["close"]["ok"]
    assert steps["open-new"]["code"] == "storage.permission"
    assert str(world_readable_store / "sub") in str(steps["open-new"]["message"])


def test_an_index_lock_another_user_owns_is_a_permission_error(
    world_readable_store: Path,
) -> None:
    """Before: a raw PermissionError. The store is nobody's, its index.lock root's."""
    for p in [world_readable_store, *world_readable_store.rglob("*")]:
        os.chown(p, 65534, 65534)
    os.chown(world_readable_store / "index.lock", 0, 0)
    steps = _run([], world_readable_store, "as-nobody")
    assert steps["open"]["code"] == "storage.permission"
    assert str(world_readable_store / "index.lock") in str(steps["open"]["message"])
    assert "uid 65534" in str(steps["open"]["hint"])


def test_a_store_on_a_read_only_mount_opens_read_only(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    path = tmp_path / "s"
    with MemoryStore.open(path, None, dim=DIM) as store:
        store.add(["a", "b"], ids=["r1", "r2"], vectors=unit_vectors(2, DIM, seed=1))
    script = f'mount --bind {path} {path} && mount -o remount,bind,ro {path} && exec "$@"'
    steps = _run(["unshare", "-U", "-r", "-m", "sh", "-c", script, "sh"], path, "read-only")
    assert steps["open"]["ok"]
    assert steps["search"]["ok"]
    assert steps["add"]["code"] == "storage.read_only"
    assert steps["close"]["ok"]
    assert steps["open-new"]["code"] == "storage.read_only"  # EROFS creating sub/


# ------------------------------------------------------------------ input validation
@pytest.fixture
def store(store_dir: Path) -> Iterator[MemoryStore]:
    with MemoryStore.open(store_dir, None, dim=DIM) as opened:
        opened.add(["a"], vectors=unit_vectors(1, DIM, seed=0))
        yield opened


def test_a_query_of_another_dimension_is_refused(store_dir: Path) -> None:
    """Before: a store opened with another dim searched the first components."""
    with MemoryStore.open(store_dir, None, dim=DIM) as first:
        first.add(["a"], vectors=unit_vectors(1, DIM, seed=0))
    with MemoryStore.open(store_dir, None, dim=8) as other:
        with pytest.raises(InvalidInputError, match="dim 8, the store's vectors have dim 16"):
            other.search(np.ones(8, dtype=np.float32), k=1)
        with pytest.raises(InvalidInputError, match="dim 8"):
            other.search_many(np.ones((2, 8), dtype=np.float32), k=1)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.add(["bad \udc80 text"], vectors=unit_vectors(1, DIM, seed=1)),
        lambda s: s.add(["ok"], metadata={"k": "\ud800"}, vectors=unit_vectors(1, DIM, seed=1)),
        lambda s: s.add(["ok"], metadata={"\udfff": 1}, vectors=unit_vectors(1, DIM, seed=1)),
        lambda s: s.add(["ok"], ids=["id\ud800"], vectors=unit_vectors(1, DIM, seed=1)),
        lambda s: s.search(unit_vectors(1, DIM, seed=1)[0], where={"k": "\udc80"}),
        lambda s: s.list_records(where={"k": {"$in": ["\udc80"]}}),
        lambda s: s.search("a query \udc80"),
        lambda s: s.search_many(["fine", "a query \udc80"]),
    ],
    ids=["text", "metadata-value", "metadata-key", "id", "filter", "list-filter", "query", "many"],
)
def test_lone_surrogates_are_rejected(store: MemoryStore, call: object) -> None:
    """Before: UnicodeEncodeError. Chosen: reject (documented), nothing stored."""
    with pytest.raises(InvalidInputError, match=r"lone surrogate|valid Unicode"):
        call(store)  # type: ignore[operator]
    assert store.count() == 1


def test_deep_metadata_and_filters_are_rejected(store: MemoryStore) -> None:
    """Before: RecursionError for metadata 100k deep and a 5,000-deep $and."""
    deep: dict[str, object] = {}
    node = deep
    for _ in range(100_000):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    with pytest.raises(InvalidInputError, match="nested more than 32 levels"):
        store.add(["x"], metadata=deep, vectors=unit_vectors(1, DIM, seed=2))
    where: dict[str, object] = {"k": 1}
    for _ in range(5000):
        where = {"$and": [where]}
    with pytest.raises(InvalidInputError, match="nested more than 32 levels"):
        store.search(unit_vectors(1, DIM, seed=2)[0], where=where)
    ok = {"a": {"b": [1, {"c": "d"}]}}
    store.add(["fine"], metadata=ok, vectors=unit_vectors(1, DIM, seed=3))
    assert store.count() == 2


# ------------------------------------------------------------------ a silent library
_SDK_PROGRAM = r"""
import sys
import numpy as np
from magray.common.settings import MemorySettings
from magray.memory import MemoryStore

path = sys.argv[1]
print("program output 1")
settings = MemorySettings(flat_threshold=50, tombstone_ratio=0.1)
with MemoryStore.open(path, None, dim=16, settings=settings) as store:
    vectors = np.random.default_rng(0).random((200, 16))
    ids = store.add([f"t{i}" for i in range(200)], vectors=vectors)
    store.delete(ids[:60])  # tombstones past the ratio: a layer rebuild (logged at info)
    store.search(np.ones(16), k=3)
    store.search(np.ones(16), k=3, rerank=True)  # a vector query cannot be reranked: warns
index = next(p for p in __import__("pathlib").Path(path, "index").glob("interact.*.faiss"))
index.write_bytes(b"garbage")
with MemoryStore.open(path, None) as store:  # damage: rebuilt from SQLite, with a warning
    store.search(np.ones(16), k=3)
print("program output 2")
"""


def test_an_sdk_program_that_configured_no_logging_sees_only_its_own_output(
    tmp_path: Path,
) -> None:
    """Before: structlog's default printed `[info] memory index layer rebuilt ...` on the
    program's stdout."""
    done = subprocess.run(
        [sys.executable, "-c", _SDK_PROGRAM, str(tmp_path / "s")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "program output 1\nprogram output 2\n"
    lines = done.stderr.splitlines()
    assert any(line.startswith("memory index damaged; rebuilt from SQLite") for line in lines)
    assert any(line.startswith("rerank skipped") for line in lines)
    assert not any("layer rebuilt" in line for line in lines)  # info: not shown
