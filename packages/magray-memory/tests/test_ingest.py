"""Streamed chunking, folder walking (.gitignore, globs) and incremental file ingest."""

from __future__ import annotations

import hashlib
import io
import random
import subprocess
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from magray.memory import (
    Ingest,
    MemoryStore,
    fit_to_window,
    iter_files,
    iter_passages,
    split_passages,
)
from memtestkit import HashingEmbedder

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta.",
    "epsilon",
    "zeta!",
    "eta",
    "theta?",
    "iota",
    "kappa",
    "lambda",
    "mu",
]


def _doc(rng: random.Random, paragraphs: int) -> str:
    out = []
    for _ in range(paragraphs):
        para = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 400)))
        out.append(para + rng.choice(["\n\n", "\n \n", "\n\n\n", "\n", " \n"]))
    return "".join(out)


class WindowedEmbedder(HashingEmbedder):
    """HashingEmbedder that also says how many tokens it reads (one per word + 2 specials)."""

    window = 40

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2


# ---------------------------------------------------------------- streamed chunking
def test_iter_passages_equals_split_passages_for_any_block_size() -> None:
    rng = random.Random(7)
    for _ in range(12):
        text = _doc(rng, rng.randint(0, 40))
        for block in (1, 3, 64, 4096):
            for max_chars, overlap in ((1000, 0), (300, 40), (60, 0)):
                expected = split_passages(text, max_chars=max_chars, overlap=overlap)
                got = list(
                    iter_passages(
                        io.StringIO(text), max_chars=max_chars, overlap=overlap, block_chars=block
                    )
                )
                assert got == expected


class _GeneratedStream:
    """A text stream of ``total`` characters produced on demand (never held whole)."""

    def __init__(self, total: int, *, blank_lines: bool) -> None:
        self.left = total
        self.rng = random.Random(3)
        self.blank_lines = blank_lines
        self.largest_read = 0

    def read(self, size: int = -1) -> str:
        self.largest_read = max(self.largest_read, size)
        n = min(size, self.left)
        if n <= 0:
            return ""
        words = []
        length = 0
        while length < n:
            word = self.rng.choice(WORDS)
            if self.blank_lines and self.rng.random() < 0.02:
                word += "\n\n"
            words.append(word)
            length += len(word) + 1
        self.left -= n
        return " ".join(words)[:n]


@pytest.mark.parametrize("blank_lines", [True, False], ids=["paragraphs", "one-huge-line"])
def test_iter_passages_holds_a_bounded_slice_of_a_huge_stream(
    blank_lines: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scaled down 16x (64 Ki blocks, 256 Ki paragraph cap, 4 MB stream) to stay fast."""
    import magray.memory._chunk as chunk_module

    monkeypatch.setattr(chunk_module, "MAX_PARAGRAPH_CHARS", 1 << 18)
    stream = _GeneratedStream(4_000_000, blank_lines=blank_lines)
    tracemalloc.start()
    count = 0
    longest = 0
    for passage in iter_passages(stream, max_chars=1000, block_chars=1 << 16):
        count += 1
        longest = max(longest, len(passage))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count > 3_000
    assert longest <= 1000
    assert stream.largest_read <= 1 << 16
    # 4 MB of text went through; about the paragraph cap plus a block was held at once
    assert peak < 2_500_000, peak


def test_fit_to_window_splits_what_the_model_would_cut() -> None:
    embedder = WindowedEmbedder()
    text = " ".join(f"w{i}" for i in range(1000))
    passages = [text, "short one", "x " * 39]

    def counts(texts: Sequence[str]) -> list[int]:
        return [embedder.count_tokens(t) for t in texts]

    out = list(fit_to_window(passages, counts, embedder.window))
    assert all(tokens <= embedder.window for _, tokens in out)
    assert all(embedder.count_tokens(p) == tokens for p, tokens in out)
    assert " ".join(p for p, _ in out).split() == " ".join(passages).split()  # nothing lost
    assert len(out) > 25


# ---------------------------------------------------------------- walking
def _git_ignored(root: Path) -> set[str]:
    """What real git says is ignored under ``root``."""
    out = subprocess.run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return {line for line in out.stdout.splitlines() if line}


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_gitignore_matches_real_git(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    _tree(
        root,
        {
            ".gitignore": "# comment\n*.log\n!keep.log\nbuild/\n/top.txt\ndocs/**/draft-*.md\n"
            "tmp?\n[ab].cfg\n\\#hash.txt\n",
            "a.log": "x",
            "keep.log": "x",
            "sub/b.log": "x",
            "build/out.txt": "x",
            "sub/build/out2.txt": "x",
            "top.txt": "x",
            "sub/top.txt": "x",
            "docs/guide.md": "x",
            "docs/x/y/draft-1.md": "x",
            "docs/draft-0.md": "x",
            "tmp1": "x",
            "tmp12": "x",
            "a.cfg": "x",
            "c.cfg": "x",
            "#hash.txt": "x",
            "sub/.gitignore": "*.md\n!keep.md\n",
            "sub/n.md": "x",
            "sub/keep.md": "x",
            "README.md": "x",
        },
    )
    expected = _git_ignored(root)
    assert "a.log" in expected
    assert "sub/n.md" in expected
    found = dict(iter_files([root]))
    ignored = {p.relative_to(root).as_posix() for p, flag in found.items() if flag}
    walked = {p.relative_to(root).as_posix() for p in found}
    # git lists a file of an ignored directory; our walk does not enter it at all
    expected_files = {f for f in expected if not f.startswith(("build/", "sub/build/"))}
    assert ignored == expected_files
    assert not any(f.startswith(("build/", "sub/build/", ".git/")) for f in walked)


def test_gitignore_of_the_repository_above_applies(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    _tree(root, {".gitignore": "*.tmp\n", "docs/a.md": "x", "docs/b.tmp": "x"})
    found = dict(iter_files([root / "docs"]))
    assert found == {(root / "docs/a.md").resolve(): False, (root / "docs/b.tmp").resolve(): True}
    assert not any(dict(iter_files([root / "docs"], gitignore=False)).values())


def test_globs_and_excludes(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.md": "x", "n/b.md": "x", "n/c.txt": "x", "n/skip/d.md": "x"})
    found = dict(iter_files([tmp_path], globs=["*.md"], excludes=["n/skip"]))
    kept = {p.relative_to(tmp_path).as_posix() for p, ignored in found.items() if not ignored}
    assert kept == {"a.md", "n/b.md"}
    anchored = dict(iter_files([tmp_path], globs=["n/**/*.md"]))
    kept = {p.relative_to(tmp_path).as_posix() for p, ignored in anchored.items() if not ignored}
    assert kept == {"n/b.md", "n/skip/d.md"}
    # a file named directly is read, unless excluded
    assert dict(iter_files([tmp_path / "n/c.txt"], globs=["*.md"])) == {tmp_path / "n/c.txt": False}
    assert dict(iter_files([tmp_path / "n/c.txt"], excludes=["*.txt"])) == {
        tmp_path / "n/c.txt": True
    }


# ---------------------------------------------------------------- incremental ingest
@pytest.fixture
def embedder() -> WindowedEmbedder:
    return WindowedEmbedder()


@pytest.fixture
def store(tmp_path: Path, embedder: WindowedEmbedder) -> Iterator[MemoryStore]:
    from magray.common.settings import MemorySettings

    with MemoryStore.open(
        tmp_path / "store", embedder, settings=MemorySettings(dedupe=False)
    ) as opened:
        yield opened


def _corpus(root: Path) -> None:
    rng = random.Random(11)
    _tree(root, {f"doc{i}.md": _doc(rng, 8) for i in range(4)})
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "blank.txt").write_text("  \n\n ", encoding="utf-8")


def _records(store: MemoryStore, path: Path) -> list[dict[str, object]]:
    records = store.list_records(where={"source": str(path.resolve())}, limit=None)
    return [{"id": r.id, "text": r.text, **r.metadata} for r in records]


def test_adding_a_tree_twice_embeds_only_what_changed(
    tmp_path: Path, store: MemoryStore, embedder: WindowedEmbedder
) -> None:
    root = tmp_path / "tree"
    _corpus(root)
    first = Ingest(store).add_paths([root])
    assert (first.count("added"), first.count("unchanged"), first.count("updated")) == (4, 0, 0)
    assert first.skipped() == {"binary": 1, "not UTF-8": 1, "empty": 1}
    assert first.records == store.count() > 4
    assert first.tokens > 0
    assert first.chunks == first.records
    doc0 = _records(store, root / "doc0.md")
    digest = hashlib.sha256((root / "doc0.md").read_bytes()).hexdigest()
    assert {r["source_sha256"] for r in doc0} == {digest}
    assert sorted(r["chunk"] for r in doc0) == list(range(len(doc0)))
    assert [r["chunks"] for r in doc0 if "chunks" in r] == [len(doc0)]
    assert all(embedder.count_tokens(str(r["text"])) <= embedder.window for r in doc0)

    embedded = embedder.texts_embedded
    again = Ingest(store).add_paths([root])
    assert (again.count("added"), again.count("unchanged"), again.count("updated")) == (0, 4, 0)
    assert embedder.texts_embedded == embedded  # nothing re-embedded
    assert store.count() == first.records

    (root / "doc1.md").write_text("a new version of doc one.\n\nwith two paragraphs.\n")
    (root / "new.md").write_text("a brand new file")
    old_doc1 = {r["id"] for r in _records(store, root / "doc1.md")}
    third = Ingest(store).add_paths([root])
    assert (third.count("added"), third.count("unchanged"), third.count("updated")) == (1, 3, 1)
    doc1 = _records(store, root / "doc1.md")
    assert [r["text"] for r in doc1] == ["a new version of doc one.\n\nwith two paragraphs."]
    assert not old_doc1 & {r["id"] for r in doc1}
    assert third.removed == len(old_doc1)
    assert embedder.texts_embedded == embedded + 2


class FailingEmbedder(WindowedEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.fail_on: str | None = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.fail_on is not None and any(self.fail_on in t for t in texts):
            raise RuntimeError("model crashed")
        return super().embed(texts)


def test_a_failed_update_keeps_the_old_version_and_the_next_run_repairs(tmp_path: Path) -> None:
    from magray.common.settings import MemorySettings

    embedder = FailingEmbedder()
    root = tmp_path / "tree"
    body = "\n\n".join(f"paragraph {i} " + "word " * 30 for i in range(12))
    _tree(root, {"a.md": body})
    with MemoryStore.open(tmp_path / "s", embedder, settings=MemorySettings(dedupe=False)) as store:
        Ingest(store, max_batch=2).add_paths([root])
        old = {r["id"]: r["text"] for r in _records(store, root / "a.md")}
        (root / "a.md").write_text(body.replace("paragraph", "section") + "\n\nBOOM here")
        embedder.fail_on = "BOOM"
        with pytest.raises(RuntimeError):
            Ingest(store, max_batch=2).add_paths([root])
        now = {r["id"]: r["text"] for r in _records(store, root / "a.md")}
        assert old.items() <= now.items()  # the old version is intact
        assert len(now) > len(old)  # committed batches of the new version stayed
        embedder.fail_on = None
        report = Ingest(store, max_batch=2).add_paths([root])
        assert report.count("updated") == 1
        texts = [r["text"] for r in _records(store, root / "a.md")]
        assert not any("paragraph" in t for t in texts)
        assert any("BOOM" in t for t in texts)
        assert len(texts) == report.records


def test_an_interrupted_first_add_is_completed_by_the_next_run(
    tmp_path: Path, store: MemoryStore
) -> None:
    root = tmp_path / "tree"
    _tree(root, {"a.md": "\n\n".join(f"part {i} " + "word " * 30 for i in range(10))})

    def interrupt(report: object) -> None:
        if getattr(report, "records", 0) >= 4:
            raise KeyboardInterrupt

    ingest = Ingest(store, max_batch=2, progress=interrupt)
    with pytest.raises(KeyboardInterrupt):
        ingest.add_paths([root])
    assert ingest.report.records == 4 == store.count()
    report = Ingest(store).add_paths([root])
    assert report.count("updated") == 1
    records = _records(store, root / "a.md")
    assert len(records) == store.count() == report.records
    assert sorted(r["chunk"] for r in records) == list(range(len(records)))


def test_no_chunk_stores_whole_and_texts_chunk_to_the_window(store: MemoryStore) -> None:
    long_text = " ".join(f"w{i}" for i in range(500))
    whole = Ingest(store, chunk=False)
    assert len(whole.add_text(long_text)) == 1
    chunked = Ingest(store)
    ids = chunked.add_text(long_text, source="note")
    assert len(ids) > 10
    assert chunked.ids == ids
    texts = [r.text for r in store.get(ids)]
    assert " ".join(texts).split() == long_text.split()
    last = {"source": "note", "chunk": len(ids) - 1, "chunks": len(ids)}
    assert store.get(ids[-1]).metadata == last
