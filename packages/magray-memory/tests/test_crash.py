"""Crash safety and multi-process access, with real subprocesses and SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from magray.memory import MemoryStore

DIM = 32

# Adds batches with known ids; prints the batch number once add() has returned.
WRITER = r"""
import sys
import numpy as np
from magray.common.settings import MemorySettings
from magray.memory import MemoryStore

path, prefix, batches, size, flat, autosave, seed = sys.argv[1:8]
settings = MemorySettings(flat_threshold=int(flat), index_autosave_changes=int(autosave))
rng = np.random.default_rng(int(seed))
if len(sys.argv) > 8:
    import os, time
    while not os.path.exists(sys.argv[8]):
        time.sleep(0.005)
store = MemoryStore.open(path, None, dim=32, settings=settings)
for b in range(int(batches)):
    ids = [f"{prefix}-{b}-{i}" for i in range(int(size))]
    vectors = rng.normal(size=(len(ids), 32)).astype("float32")
    store.add([f"text of {x}" for x in ids], ids=ids, vectors=vectors)
    print("ACK", b, flush=True)
store.close()
print("CLOSED", flush=True)
"""


def _spawn(
    path: Path,
    prefix: str,
    batches: int,
    size: int,
    *,
    flat: int = 20_000,
    autosave: int = 50_000,
    seed: int = 0,
    start_file: Path | None = None,
) -> subprocess.Popen[str]:
    args = [
        sys.executable,
        "-c",
        WRITER,
        str(path),
        prefix,
        str(batches),
        str(size),
        str(flat),
        str(autosave),
        str(seed),
    ]
    if start_file is not None:
        args.append(str(start_file))
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _kill_during_ingest(
    path: Path, *, kill_after: int, batches: int, size: int, flat: int, autosave: int, seed: int
) -> None:
    proc = _spawn(path, "k", batches, size, flat=flat, autosave=autosave, seed=seed)
    assert proc.stdout is not None
    acked: list[int] = []
    try:
        for line in proc.stdout:
            if line.startswith("ACK "):
                acked.append(int(line.split()[1]))
            if len(acked) >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    # lines still in the pipe were printed after add() returned: acknowledged too
    acked += [int(x.split()[1]) for x in rest.splitlines() if x.startswith("ACK ")]
    assert proc.returncode == -signal.SIGKILL, err
    with MemoryStore.open(path, None) as store:
        present = {r.id for r in store.list_records(limit=None)}
        for b in acked:
            for i in range(size):
                assert f"k-{b}-{i}" in present, f"acknowledged record k-{b}-{i} lost"
        assert len(present) % size == 0, "a batch was partially written"
        assert all(ok["ok"] for ok in store.consistency().values())
        probe = store.get(f"k-{acked[-1]}-0", with_vector=True)
        assert store.search(probe.vector, k=1)[0].id == probe.id  # type: ignore[arg-type]


def test_sigkill_during_ingest_loses_no_acknowledged_record(tmp_path: Path) -> None:
    _kill_during_ingest(
        tmp_path / "s", kill_after=12, batches=400, size=50, flat=300, autosave=250, seed=1
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_sigkill_at_random_moments(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    _kill_during_ingest(
        tmp_path / "s",
        kill_after=rnd.randint(1, 60),
        batches=400,
        size=rnd.choice([1, 20, 100]),
        flat=rnd.choice([50, 500, 20_000]),
        autosave=rnd.choice([100, 1000, 50_000]),
        seed=seed,
    )


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s"
    start = tmp_path / "go"
    with MemoryStore.open(path, None, dim=DIM) as reader:
        procs = [
            _spawn(path, f"p{n}", 25, 8, flat=100, autosave=60, seed=n, start_file=start)
            for n in range(2)
        ]
        time.sleep(0.3)  # let both import before the start signal
        start.touch()
        try:
            outputs = [proc.communicate(timeout=120) for proc in procs]
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
        for proc, (out, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err
            assert out.splitlines()[-1] == "CLOSED"
        assert reader.count() == 400
        present = {r.id for r in reader.list_records(limit=None)}
        assert present == {f"p{n}-{b}-{i}" for n in range(2) for b in range(25) for i in range(8)}
        assert all(ok["ok"] for ok in reader.consistency().values())
        probe = reader.get("p1-24-7", with_vector=True)
        assert reader.search(probe.vector, k=1)[0].id == "p1-24-7"  # type: ignore[arg-type]
    with MemoryStore.open(path, None) as store:
        assert store.count() == 400
        assert store.stats()["index_status"]["index"] == "loaded"
