"""``magray memory check [--repair] [--json]`` on real damage, in-process and end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner, Result

from magray.cli import cli
from magray.memory import MemoryStore

DIM = 8


def _store(path: Path, n: int = 50) -> np.ndarray:
    vectors = np.random.default_rng(0).normal(size=(n, DIM)).astype(np.float32)
    with MemoryStore.open(path, None, dim=DIM) as store:
        store.add([f"text {i}" for i in range(n)], vectors=vectors)
    return vectors


def _check(path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["memory", "--store", str(path), "check", *args])


def _faiss(path: Path) -> Path:
    (found,) = (path / "index").glob("interact.*.faiss")
    return found


def test_a_healthy_store_checks_ok(tmp_path: Path) -> None:
    _store(tmp_path / "s")
    result = _check(tmp_path / "s")
    assert result.exit_code == 0, result.output
    assert "database   integrity ok" in result.output
    assert "checksums  ok" in result.output
    assert "result     ok" in result.output
    report = json.loads(_check(tmp_path / "s", "--json").output)
    assert report["ok"] is True
    assert report["layers"]["interact"] == {
        "records": 50,
        "indexed": 50,
        "missing_in_index": 0,
        "unknown_to_db": 0,
        "vectors_differ": 0,
        "ok": True,
    }


def test_a_missing_database_fails_the_check_until_repaired(tmp_path: Path) -> None:
    path = tmp_path / "s"
    _store(path)
    (path / "memory.db").unlink()
    result = _check(path, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["error"]["code"] == "memory.db_missing"
    assert not (path / "memory.db").exists()  # a check without --repair changes nothing
    repaired = _check(path, "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "recovered  50 record(s) the index knew are not in the database" in repaired.output
    assert _check(path).exit_code == 0


def test_a_damaged_index_file_is_reported(tmp_path: Path) -> None:
    """Opening the store already rebuilds a file that fails its checksum; check says so."""
    path = tmp_path / "s"
    vectors = _store(path, 200)
    target = _faiss(path)
    data = bytearray(target.read_bytes())
    data[200:264] = bytes(64)
    target.write_bytes(bytes(data))
    result = _check(path)
    assert result.exit_code == 0, result.output
    assert f"index      rebuilt ({target.name} failed its checksum" in result.output
    assert f"earlier    index_damaged: {target.name} failed its checksum" in result.output
    with MemoryStore.open(path, None) as store:
        assert store.search(vectors[7], k=1)[0].text == "text 7"


def test_no_store(tmp_path: Path) -> None:
    result = _check(tmp_path / "none")
    assert result.exit_code != 0
    assert "no memory store" in str(result.exception) + result.output


def test_the_installed_script_renders_a_regressed_database_without_traceback(
    tmp_path: Path, run_magray
) -> None:
    path = tmp_path / "s"
    _store(path)
    backup = tmp_path / "b"
    with MemoryStore.open(path, None) as store:
        store.backup(backup)
        store.add(["later"], vectors=np.ones((1, DIM), dtype=np.float32))
    (path / "memory.db").write_bytes((backup / "memory.db").read_bytes())
    for suffix in ("-wal", "-shm"):
        Path(f"{path / 'memory.db'}{suffix}").unlink(missing_ok=True)
    done = run_magray("memory", "--store", str(path), "search", "x", "-k", "1")
    assert done.returncode != 0
    assert "error[memory.db_regressed]" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    checked = run_magray("memory", "--store", str(path), "check")
    assert checked.returncode == 1
    assert "memory.db_regressed" in checked.stdout


def test_a_damaged_database_is_reported_not_raised(tmp_path: Path) -> None:
    """Before: `memory check` failed with memory.corrupt, whose hint said to run `memory check`."""
    import random

    path = tmp_path / "s"
    with MemoryStore.open(path, None, dim=DIM) as store:
        rng = np.random.default_rng(1)
        store.add(
            [f"record {i:04d} " + "z" * 400 for i in range(300)],
            vectors=rng.normal(size=(300, DIM)).astype(np.float32),
        )
    db = path / "memory.db"
    data = db.read_bytes()
    at = data.index(b"record 0150 ")
    with db.open("r+b") as f:
        f.seek(at - at % 4096)
        f.write(random.Random(2).randbytes(4096))
    result = _check(path, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["ok"] is False
    assert report["error"]["code"] == "memory.corrupt"
    assert any(p.startswith("integrity_check:") for p in report["problems"])
    assert "memory check" not in report["error"]["hint"]
    assert "backup" in report["error"]["hint"]
    text = _check(path)
    assert text.exit_code == 1
    assert "problem    integrity_check:" in text.output
