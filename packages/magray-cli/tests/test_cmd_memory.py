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
    assert added["layer"] == "assets"  # files default to the layer without a TTL
    listed = ok("--store", store, "list", "--where", f"source={doc}")
    assert sorted(r["metadata"]["chunk"] for r in listed) == [0, 1, 2]
    whole = ok("--store", store, "add", str(doc), "--no-chunk", "--layer", "insights")
    assert whole["added"] == 1
    assert whole["files"]["updated"] == 1  # the same file again: its three records were replaced
    assert whole["layer"] == "insights"
    assert [r["text"] for r in ok("--store", store, "list", "--where", f"source={doc}")] == [
        doc.read_text()
    ]
    piped = ok("--store", store, "add", input="text from a pipe")
    assert ok("--store", store, "get", piped["ids"][0])["metadata"] == {
        "source": "<stdin>",
        "chunk": 0,
        "chunks": 1,
    }
    first = ok("--store", store, "add", "a text of my own")
    again = ok("--store", store, "add", "a text of my own")
    assert again["ids"] == first["ids"]  # dedupe within the layer


def _tree(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def _paragraphs(topic: str, n: int) -> str:
    return "\n\n".join(f"{topic} note {i}: " + f"{topic} words " * 20 for i in range(n))


def test_add_folders_incrementally(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    _tree(
        root,
        {
            "guide.md": _paragraphs("apples", 6),
            "api/ref.md": _paragraphs("pears", 4),
            "api/notes.txt": "plain notes about plums",
            "build/out.md": "generated",
            "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00binary",
            "old.txt": "caf\xe9".encode("latin-1"),
            ".gitignore": "build/\n*.log\n",
            "debug.log": "ignored by .gitignore",
        },
    )
    store = str(tmp_path / "s")
    first = ok("--store", store, "add", str(root), "--exclude", "*.txt")
    counts = first["files"]
    assert (counts["added"], counts["unchanged"], counts["updated"]) == (3, 0, 0)
    assert counts["skipped_by_reason"] == {"binary": 1}
    assert counts["ignored"] == 3  # debug.log (.gitignore), notes.txt and old.txt (--exclude)
    files = {Path(f["path"]).name: f for f in counts["each"]}
    assert set(files) == {"guide.md", "ref.md", ".gitignore", "logo.png"}
    assert first["chunks"] == first["records_added"] > 3
    assert first["tokens"] > 0
    assert first["peak_rss_mb"] > 10
    records = ok("--store", store, "list", "--limit", "1000")
    guide = [r for r in records if r["metadata"]["source"] == str((root / "guide.md").resolve())]
    assert {r["metadata"]["source_sha256"] for r in guide} == {
        hashlib.sha256((root / "guide.md").read_bytes()).hexdigest()
    }
    assert {r["layer"] for r in records} == {"assets"}

    again = ok("--store", store, "add", str(root), "--exclude", "*.txt")
    counts = again["files"]
    assert (counts["added"], counts["unchanged"], counts["updated"]) == (0, 3, 0)
    assert again["records_added"] == again["added"] == 0

    (root / "guide.md").write_text("apples are now a single short note")
    result = mem("--store", store, "add", str(root), "--glob", "*.md")
    assert result.exit_code == 0, result.output
    assert "files: 0 added, 1 updated, 1 unchanged, 0 skipped" in result.stdout
    assert "chunks/s" in result.stdout
    assert "tokens/s" in result.stdout
    assert "peak RSS" in result.stdout
    texts = [
        r["text"] for r in ok("--store", store, "list", "--where", "source!=x", "--limit", "99")
    ]
    assert "apples are now a single short note" in texts
    assert not any("apples note" in t for t in texts)


def test_an_existing_path_is_read_and_a_pathlike_text_is_flagged(tmp_path: Path) -> None:
    doc = tmp_path / "todo.md"
    doc.write_text("buy milk")
    store = str(tmp_path / "s")
    read = mem("--store", store, "add", str(doc), "--json")
    assert json.loads(read.stdout)["added"] == 1
    assert ok("--store", store, "list")[0]["text"] == "buy milk"
    as_text = ok("--store", store, "add", "--text", str(doc))
    assert ok("--store", store, "get", as_text["ids"][0])["text"] == str(doc)
    missing = mem("--store", store, "add", "docs/missing.md", "--json")
    assert missing.exit_code == 0
    assert "note: no file or directory 'docs/missing.md'; stored as text" in missing.stderr
    assert ok("--store", store, "get", json.loads(missing.stdout)["ids"][0])["text"] == (
        "docs/missing.md"
    )


def test_nothing_to_add_in_a_directory(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    _tree(root, {"a.log": "x", ".gitignore": "*.log\n"})
    result = mem("--store", str(tmp_path / "s"), "add", str(root), "--exclude", ".gitignore")
    assert type(result.exception).__name__ == "InvalidInputError"  # exit 2 from `magray`
    assert "no files to add in" in str(result.exception)
    assert "2 files are ignored" in result.exception.hint  # type: ignore[union-attr]


def test_piped_progress_and_long_texts_are_chunked(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    long_text = " ".join(f"word{i}" for i in range(3000))
    result = mem("--store", store, "add", "--progress-every", "0", input=long_text)
    assert result.exit_code == 0, result.output
    lines = [x for x in result.stderr.splitlines() if x.startswith("memory add: ")]
    assert lines
    assert "chunks/s" in lines[-1]
    records = ok("--store", store, "list", "--limit", "1000")
    assert len(records) > 10
    assert all(len(r["text"]) <= 1000 for r in records)
    words = " ".join(r["text"] for r in sorted(records, key=lambda r: r["metadata"]["chunk"]))
    assert words.split() == long_text.split()


class _Interrupting(BagOfWords):
    calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        type(self).calls += 1
        if type(self).calls == 3:
            raise KeyboardInterrupt
        return super().embed(texts)


def test_ctrl_c_says_what_was_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "docs"
    _tree(root, {f"f{i}.md": f"file {i} about topic {i}" for i in range(5)})
    store = str(tmp_path / "s")
    monkeypatch.setattr(_Interrupting, "calls", 0)
    monkeypatch.setattr(_EP, "load", lambda self: _Interrupting)
    result = mem("--store", store, "add", str(root))
    assert result.exit_code == 130
    assert "interrupted: kept 2 records stored before Ctrl-C (2 files added" in result.stderr
    monkeypatch.setattr(_EP, "load", lambda self: BagOfWords)
    assert len(ok("--store", store, "list")) == 2
    rest = ok("--store", store, "add", str(root))["files"]
    assert (rest["added"], rest["unchanged"]) == (3, 2)


def test_missing_default_embedder_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.metadata.entry_points

    def none(**kwargs: Any) -> Any:
        if kwargs.get("group") == "magray.embedders":
            return importlib.metadata.EntryPoints([])
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", none)
    with pytest.raises(SystemExit):
        main(["memory", "--store", str(tmp_path / "s"), "add", "x"])
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("error[")
    assert 'pip install "magray-memory[ai]"' in first


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


@pytest.mark.skipif(not _real_default_installed(), reason="magray-ai is not installed")
def test_installed_script_adds_a_folder_then_only_what_changed(
    run_magray: Any, tmp_path: Path
) -> None:
    root = tmp_path / "docs"
    _tree(
        root,
        {
            "a.md": "Use asyncio.gather to run coroutines concurrently.",
            "b.md": "The cat sleeps on the warm windowsill.",
            "c.bin": b"\x00\x01\x02",
        },
    )
    store = str(tmp_path / "s")
    first = run_magray("memory", "--store", store, "add", str(root))
    assert first.returncode == 0, first.stderr
    assert "files: 2 added, 0 updated, 0 unchanged, 1 skipped (1 binary)" in first.stdout
    assert re.search(
        r"stored 2 records in [\d.]+ s: [\d.]+ chunks/s, [\d,]+ tokens/s", first.stdout
    )
    (root / "b.md").write_text("The dog sleeps on the sofa.")
    second = run_magray("memory", "--store", store, "add", str(root), "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)["files"]
    assert (report["added"], report["updated"], report["unchanged"]) == (0, 1, 1)
    listed = run_magray("--json", "memory", "--store", store, "list")
    assert sorted(r["text"] for r in json.loads(listed.stdout)) == [
        "The dog sleeps on the sofa.",
        "Use asyncio.gather to run coroutines concurrently.",
    ]


@pytest.mark.slow
@pytest.mark.skipif(not _real_default_installed(), reason="magray-ai is not installed")
def test_installed_script_ctrl_c_keeps_what_was_stored(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    root = tmp_path / "docs"
    _tree(root, {f"f{i:02}.md": _paragraphs(f"topic{i}", 3) for i in range(40)})
    store = str(tmp_path / "s")
    script = Path(sys.executable).parent / "magray"
    if not script.exists():
        pytest.skip("the magray console script is not installed")
    proc = subprocess.Popen(
        [str(script), "memory", "--store", store, "add", str(root), "--progress-every", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until some batches are stored
        if line.startswith("memory add: ") and " 0 chunks" not in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    kept = re.search(r"interrupted: kept (\d+) records", err)
    assert kept, err
    listed = CliRunner().invoke(
        cli, ["memory", "--store", store, "list", "--limit", "10000", "--json"]
    )
    assert len(json.loads(listed.stdout)) == int(kept.group(1)) > 0


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
