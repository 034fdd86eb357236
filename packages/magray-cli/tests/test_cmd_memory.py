"""``magray memory ...`` through CliRunner (with a test embedder) and the installed script."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from magray.cli import cli, main


class BagOfWords:
    """Signed feature hashing of words (a deterministic test embedder, not a product one)."""

    model_id = "cli-test-bow-64"
    dim = 64

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else np.eye(self.dim, dtype=np.float32)[0]
        return out


class _EP:
    name = "default"
    value = "tests:BagOfWords"

    def load(self) -> Any:
        return BagOfWords


@pytest.fixture(autouse=True)
def test_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register BagOfWords as the `default` embedder for in-process runs."""
    real = importlib.metadata.entry_points

    def fake(**kwargs: Any) -> Any:
        if kwargs.get("group") == "magray.embedders":
            return importlib.metadata.EntryPoints([_EP()])  # type: ignore[list-item]
        if kwargs.get("group") == "magray.rerankers":
            return importlib.metadata.EntryPoints([])
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)


def mem(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["memory", *args], input=input)


def ok(*args: str, input: str | None = None) -> Any:
    result = mem(*args, "--json", input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_add_search_get_list_update_delete(magray_home: Path) -> None:
    added = ok(
        "add",
        "the deploy key lives in the vault",
        "cats sleep on warm windowsills",
        "--meta",
        "project=infra",
        "--meta",
        "n=3",
    )
    assert added["added"] == 2
    a, b = added["ids"]
    assert (magray_home / "data" / "memory" / "memory.db").exists()  # default location
    hits = ok("search", "where is the deploy key", "-k", "1")
    assert hits[0]["id"] == a
    assert hits[0]["metadata"] == {"project": "infra", "n": 3}
    assert ok("get", a)["text"] == "the deploy key lives in the vault"
    assert [r["id"] for r in ok("get", a, b)] == [a, b]
    assert {r["id"] for r in ok("list")} == {a, b}
    assert ok("list", "--where", "n>=4") == []
    assert len(ok("list", "--where", "n<=3", "--where", "project=infra")) == 2
    updated = ok("update", b, "--meta", "mood=sleepy", "--unset", "n", "--importance", "0.9")
    assert updated["metadata"] == {"project": "infra", "mood": "sleepy"}
    assert updated["importance"] == 0.9
    assert ok("search", "cats", "--where-json", '{"mood": {"$in": ["sleepy"]}}')[0]["id"] == b
    assert ok("search", "cats", "--where", "mood!=sleepy", "-k", "5")[0]["id"] == a
    moved = ok("update", b, "--layer", "assets", "--text", "dogs sleep on the sofa")
    assert moved["layer"] == "assets"
    assert moved["text"] == "dogs sleep on the sofa"
    assert ok("search", "dogs sofa", "--layer", "assets")[0]["id"] == b
    assert ok("delete", a, "nope") == {"deleted": [a], "missing": ["nope"]}
    result = mem("delete", "nope")
    assert type(result.exception).__name__ == "RecordNotFoundError"
    stats = ok("stats")
    assert stats["records"] == 1
    assert stats["layers"]["assets"]["records"] == 1


def test_human_output(magray_home: Path) -> None:
    assert mem("list").output.strip() == "no memories"
    assert "no memory store" in mem("stats").output
    rid = mem("add", "hello human table").output.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    out = mem("search", "hello").output
    assert "hello human table" in out
    assert "score" in out
    assert "hello human table" in mem("list").output
    assert f"id            {rid}" in mem("get", rid).output
    assert "interact" in mem("stats").output
    assert "score" in mem("explain", rid).output
    assert "add" in mem("history", rid).output


def test_add_from_files_chunks_and_stdin(tmp_path: Path) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text("# Title\n\nFirst paragraph about apples.\n\nSecond paragraph about pears.\n")
    store = str(tmp_path / "s")
    added = ok("--store", store, "add", "--file", str(doc), "--chunk", "--chunk-size", "30")
    assert added["added"] == 3
    listed = ok("--store", store, "list", "--where", f"source={doc}")
    assert sorted(r["metadata"]["chunk"] for r in listed) == [0, 1, 2]
    whole = ok("--store", store, "add", "--file", str(doc), "--layer", "assets")
    assert whole["added"] == 1
    assert whole["layer"] == "assets"
    piped = ok("--store", store, "add", input="text from a pipe")
    assert ok("--store", store, "get", piped["ids"][0])["metadata"] == {"source": "<stdin>"}
    again = ok("--store", store, "add", "text from a pipe")
    assert again["ids"] == piped["ids"]  # dedupe within the layer


def test_lifecycle_commands(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    (rid,) = ok("--store", store, "add", "remember me", "--pin", "--importance", "1")["ids"]
    why = ok("--store", store, "explain", rid)
    assert why["features"]["importance"] == 1.0
    assert why["pinned"] is True
    assert ok("--store", store, "promote", "--dry-run") == {"dry_run": True, "moves": []}
    assert ok("--store", store, "expire") == {"dry_run": False, "expired": [], "archived": []}
    events = ok("--store", store, "history", rid)
    assert [e["event"] for e in events] == ["add"]


def test_export_import_backup_vacuum_reindex(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    ids = ok("--store", store, "add", "alpha one", "beta two", "gamma three")["ids"]
    out = tmp_path / "mem.jsonl"
    assert ok("--store", store, "export", str(out), "--vectors")["records"] == 3
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert {x["id"] for x in lines} == set(ids)
    assert len(lines[0]["vector"]) == 64
    streamed = mem("--store", store, "export")
    assert len(streamed.stdout.splitlines()) == 3
    copy = str(tmp_path / "copy")
    assert ok("--store", copy, "import", str(out)) == {"imported": 3, "skipped": 0, "embedded": 0}
    assert ok("--store", copy, "import", "-", input=streamed.stdout)["skipped"] == 3
    backup = ok("--store", store, "backup", str(tmp_path / "bk"))
    assert Path(backup["path"], "memory.db").exists()
    assert ok("--store", str(tmp_path / "bk"), "get", ids[0])["text"] == "alpha one"
    ok("--store", store, "delete", ids[0])
    vac = ok("--store", store, "vacuum")
    assert vac["tombstones_dropped"] == 1
    assert ok("--store", store, "reindex") == {
        "reembedded": 0,
        "from": ["cli-test-bow-64", 64],
        "to": ["cli-test-bow-64", 64],
    }


def test_errors_are_one_line_with_hints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "s")
    with pytest.raises(SystemExit) as exit_info:
        main(["memory", "--store", store, "get", "missing"])
    assert exit_info.value.code == 3
    err = capsys.readouterr().err
    assert err.startswith("error[memory.no_store]: no memory store at")
    assert "hint: add a memory first" in err
    ok("--store", store, "add", "x")
    with pytest.raises(SystemExit) as exit_info:
        main(["memory", "--store", store, "search", "x", "--where", "bad key=1"])
    assert exit_info.value.code == 2
    assert "invalid filter key" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["memory", "--store", store, "add", "y", "--meta", "novalue"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["memory", "--store", store, "search", "x", "--since", "soon"])
    assert exit_info.value.code == 2
    assert "bad duration" in capsys.readouterr().err


def _real_default_installed() -> bool:
    # read the real entry points (the autouse fixture only patches in-process lookups later)
    return any(
        ep.name == "default"
        for ep in importlib.metadata.distributions()
        for ep in ep.entry_points
        if ep.group == "magray.embedders"
    )


@pytest.mark.skipif(
    not _real_default_installed(),
    reason="magray-ai's 'default' embedder is not installed; the installed CLI cannot embed",
)
def test_installed_script_end_to_end(run_magray: Any, tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    added = run_magray(
        "memory",
        "--store",
        store,
        "add",
        "--json",
        "Use asyncio.gather to run coroutines concurrently.",
        "The cat sleeps on the warm windowsill.",
    )
    assert added.returncode == 0, added.stderr
    ids = json.loads(added.stdout)["ids"]
    found = run_magray("--json", "memory", "--store", store, "search", "kitten napping", "-k", "1")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)[0]["id"] == ids[1]
    missing = run_magray("memory", "--store", store, "get", "nope")
    assert missing.returncode == 3
    assert missing.stderr.splitlines()[0] == "error[memory.not_found]: no memory with id nope"
    stats = run_magray("memory", "--store", store, "stats", "--json")
    assert json.loads(stats.stdout)["records"] == 2


@pytest.fixture(scope="module")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """PostgreSQL + pgvector from pgserver (skipped, with the reason, where it cannot start)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        try:
            import pgserver
        except ImportError as exc:
            pytest.skip(f"pgserver is not installed ({exc}); pip install 'magray-memory[test]'")
        try:
            server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
        except Exception as exc:  # initdb/pg_ctl failures surface as plain exceptions
            pytest.skip(f"pgserver could not start PostgreSQL here: {type(exc).__name__}: {exc}")
    yield server.get_uri()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server.cleanup()


def _export(store: str, tmp_path: Path, name: str) -> dict[str, Any]:
    out = tmp_path / name
    ok("--store", store, "export", str(out), "--vectors")
    return {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}


@pytest.mark.postgres
def test_migrate_round_trip_local_postgres_local(tmp_path: Path, pg_dsn: str) -> None:
    local = str(tmp_path / "local")
    ids = ok(
        "--store", local, "add", "alpha one", "beta two", "--meta", "project=infra",
        "--meta", 'nested={"a": [1, 2.5, null], "b": "é"}',
    )["ids"]  # fmt: skip
    ids += ok("--store", local, "add", "gamma three", "--layer", "assets", "--pin")["ids"]
    ok("--store", local, "update", ids[1], "--importance", "0.9", "--meta", "flag=true")
    ok("--store", local, "search", "alpha", "-k", "1")  # access counts travel too
    before = _export(local, tmp_path, "before.jsonl")

    dsn = f"{pg_dsn}&schema=cli_migrate"
    report = ok("migrate", "--from", local, "--to", dsn)
    assert report["copied"] == 3
    assert report["verified"] is True
    assert report["source"] == report["dest"] == {"interact": 2, "insights": 0, "assets": 1}
    assert "***" in report["to"] or "@" not in report["to"].split("//")[1].split("/")[0]
    assert _export(dsn, tmp_path, "pg.jsonl") == before  # vectors bit for bit, metadata, times
    # the store on the server searches like the local one
    on_pg = ok("--store", dsn, "search", "beta two", "-k", "3")
    on_local = ok("--store", local, "search", "beta two", "-k", "3")
    assert on_pg[0]["id"] == ids[1]
    assert [h["id"] for h in on_pg] == [h["id"] for h in on_local]
    assert np.allclose([h["score"] for h in on_pg], [h["score"] for h in on_local], atol=1e-6)

    again = ok("migrate", "--from", local, "--to", dsn)
    assert (again["copied"], again["skipped"], again["verified"]) == (0, 3, True)

    searched = _export(dsn, tmp_path, "searched.jsonl")  # the searches counted accesses
    assert searched[ids[1]]["access_count"] == before[ids[1]]["access_count"] + 1
    back = str(tmp_path / "back")
    report = ok("--store", dsn, "migrate", "--to", back)
    assert report["copied"] == 3
    assert report["verified"] is True
    after = _export(back, tmp_path, "after.jsonl")
    assert after == searched
    for record_id in ids:
        assert after[record_id]["vector"] == before[record_id]["vector"]
        assert after[record_id]["metadata"] == before[record_id]["metadata"]


def test_migrate_refuses_missing_source_and_same_target(tmp_path: Path) -> None:
    result = mem("migrate", "--from", str(tmp_path / "nothing"), "--to", str(tmp_path / "x"))
    assert result.exit_code != 0
    assert "no memory store" in str(result.exception)
    store = str(tmp_path / "s")
    ok("--store", store, "add", "one")
    result = mem("--store", store, "migrate", "--to", store)
    assert "same store" in str(result.exception)


def test_migrate_refuses_a_destination_of_another_model(tmp_path: Path) -> None:
    from magray.memory import MemoryStore

    source, other = str(tmp_path / "s"), tmp_path / "o"
    ok("--store", source, "add", "one")
    with MemoryStore.open(other, None, dim=8) as store:
        store.add(["x"], vectors=np.eye(8, dtype=np.float32)[:1])
    result = mem("--store", source, "migrate", "--to", str(other))
    assert result.exit_code != 0
    assert "dim" in str(result.exception)
