"""The optimised-graph cache: same outputs as the original model, damage and staleness detected."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from magray.ai import CPU, Embedder, ModelRegistry, SessionConfig, import_folder
from magray.ai._providers import load_session
from magray.ai._session_cache import DATA_FILE, GRAPH_FILE, MANIFEST_FILE, file_digest
from magray.ai._tokenizer import TextTokenizer
from magray.common.metrics import default_registry

TEXTS = [
    "a cat on a mat",
    "a kitten on a rug",
    "The quarterly report shows revenue growth of 12 percent.",
    "git rebase rewrites history; merge keeps it",
    "¿Dónde está la biblioteca?",
    "short",
    " ".join(["a long text that fills much of the window"] * 30),
]


def _count(result: str) -> float:
    key = f"ai.session_cache{{result={result}}}"
    return float(default_registry().snapshot()["counters"].get(key, 0.0))


def _entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if not p.name.startswith("."))


def _feeds(tokenizer_path: Path, texts: list[str]) -> dict[str, np.ndarray]:
    tokenizer = TextTokenizer(tokenizer_path, max_tokens=256)
    return tokenizer.pad(tokenizer.encode(texts))


def _outputs(session, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    names = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v for k, v in feeds.items() if k in names})


def test_cached_default_model_gives_the_original_outputs(tmp_path) -> None:
    """Built, then loaded from the cache: every output equals the optimiser's own session."""
    resolved = ModelRegistry(models_dir=tmp_path / "models").resolve("default")
    root = tmp_path / "cache"
    cached_config = SessionConfig(cache_dir=root)
    original = load_session(resolved.model_path, [CPU], config=SessionConfig())
    feeds = _feeds(resolved.tokenizer_path, TEXTS)
    expected = _outputs(original, feeds)

    def load():
        return load_session(
            resolved.model_path, [CPU], config=cached_config, model_sha256=resolved.card.sha256
        )

    first = load()  # leaves a marker only: a model loaded once costs no build
    assert _count("first") == 1
    assert _entries(root) == []
    misses, hits = _count("miss"), _count("hit")
    built = load()
    assert _count("miss") == misses + 1
    (entry,) = _entries(root)
    assert {p.name for p in entry.iterdir()} == {DATA_FILE, GRAPH_FILE, MANIFEST_FILE}
    loaded = load()
    assert _count("hit") == hits + 1
    assert [p.name for p in root.iterdir()] == [entry.name]  # the marker went with the build
    for session in (first, built, loaded):
        for want, got in zip(expected, _outputs(session, feeds), strict=True):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # Private like every magray file: directories 0700, files 0600.
    for path in (root, entry):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for path in entry.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_from_settings_caches_under_magray_home(tmp_path) -> None:
    """The settings path puts the cache in $MAGRAY_HOME/cache/ai/onnx; vectors are unchanged."""
    reference = Embedder("minilm-l3", force_cpu=True, cache_entries=0).embed(TEXTS)
    root = Path(os.environ["MAGRAY_HOME"]) / "cache" / "ai" / "onnx"
    for _ in range(3):  # marks, builds, loads from the cache
        embedder = Embedder.from_settings(model="minilm-l3", cache_entries=0)
        np.testing.assert_allclose(embedder.embed(TEXTS), reference, rtol=0, atol=1e-6)
    assert len(_entries(root)) == 1
    assert (_count("first"), _count("miss"), _count("hit")) == (1, 1, 1)


@pytest.fixture
def tiny_model(tiny_bert, tmp_path):
    """A tiny imported BERT: its session builds in milliseconds."""
    registry = ModelRegistry(models_dir=tmp_path / "models")
    folder, _ = tiny_bert.make_folder(tmp_path, head=False)
    import_folder(registry, folder, name="tiny", task="embed")
    return registry.resolve("tiny")


def _flip_byte(path: Path) -> None:
    """Change one byte in the middle, keeping size and mtime (silent disk damage)."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x5A
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_manifest(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["fields"]["onnxruntime"] = "0.0.1"
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damaged", "damage"),
    [
        (DATA_FILE, _flip_byte),
        (GRAPH_FILE, _flip_byte),
        (DATA_FILE, _truncate),
        (MANIFEST_FILE, _edit_manifest),
        (MANIFEST_FILE, lambda p: p.write_text("{not json")),
        (DATA_FILE, Path.unlink),
    ],
    ids=["data-bit", "graph-bit", "data-truncated", "manifest-stale", "manifest-torn", "data-gone"],
)
def test_damaged_entry_is_rebuilt_never_loaded(tiny_model, tmp_path, damaged, damage) -> None:
    root = tmp_path / "cache"
    config = SessionConfig(cache_dir=root)
    feeds = _feeds(tiny_model.tokenizer_path, TEXTS[:3])
    expected = _outputs(load_session(tiny_model.model_path, [CPU], config=SessionConfig()), feeds)
    for _ in range(2):
        load_session(
            tiny_model.model_path, [CPU], config=config, model_sha256=tiny_model.card.sha256
        )
    (entry,) = _entries(root)
    damage(entry / damaged)

    count, hits = _count("damaged"), _count("hit")
    session = load_session(
        tiny_model.model_path, [CPU], config=config, model_sha256=tiny_model.card.sha256
    )
    assert _count("damaged") == count + 1
    assert _count("hit") == hits
    for want, got in zip(expected, _outputs(session, feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # Rebuilt: the entry verifies again and the next load is a hit.
    manifest = json.loads((entry / MANIFEST_FILE).read_text())
    for name, meta in manifest["files"].items():
        assert file_digest(entry / name) == meta["xxh3_128"]
    load_session(tiny_model.model_path, [CPU], config=config, model_sha256=tiny_model.card.sha256)
    assert _count("hit") == hits + 1


def test_stale_entries_are_replaced(tiny_model, tmp_path, monkeypatch) -> None:
    """A changed model file or onnxruntime version gets a new entry; the old one is removed."""
    import onnxruntime

    root = tmp_path / "cache"
    config = SessionConfig(cache_dir=root)

    def load_twice() -> None:
        for _ in range(2):
            load_session(tiny_model.model_path, [CPU], config=config)

    load_twice()
    (old,) = _entries(root)
    monkeypatch.setattr(onnxruntime, "__version__", "999.0.0")
    misses = _count("miss")
    load_twice()
    assert _count("miss") == misses + 1
    (new,) = _entries(root)
    assert new != old
    assert json.loads((new / MANIFEST_FILE).read_text())["fields"]["onnxruntime"] == "999.0.0"

    # The model file is replaced at the same path (a new mtime): a new entry again.
    mtime = tiny_model.model_path.stat().st_mtime_ns
    os.utime(tiny_model.model_path, ns=(mtime, mtime + 10**9))
    load_twice()
    (newest,) = _entries(root)
    assert newest not in (old, new)


def test_entries_of_removed_models_are_pruned(tiny_bert, tiny_model, tmp_path) -> None:
    root = tmp_path / "cache"
    config = SessionConfig(cache_dir=root)
    for _ in range(2):
        load_session(tiny_model.model_path, [CPU], config=config)
    (removed,) = _entries(root)
    registry = ModelRegistry(models_dir=tmp_path / "models")
    registry.remove("tiny")
    other_folder = tmp_path / "other"
    other_folder.mkdir()
    folder, _ = tiny_bert.make_folder(other_folder, head=False, seed=1)
    import_folder(registry, folder, name="tiny-2", task="embed")
    for _ in range(2):
        load_session(registry.resolve("tiny-2").model_path, [CPU], config=config)
    (kept,) = _entries(root)
    assert kept != removed


def test_unusable_graph_is_remembered_and_the_original_used(tiny_model, tmp_path, monkeypatch):
    """A saved graph whose outputs differ is never published; the key remembers it."""
    from magray.ai import _session_cache

    monkeypatch.setattr(_session_cache, "PROBE_TOLERANCE", -1.0)  # any difference is too much
    root = tmp_path / "cache"
    config = SessionConfig(cache_dir=root)
    for _ in range(2):
        load_session(tiny_model.model_path, [CPU], config=config)
    (entry,) = _entries(root)
    assert [p.name for p in entry.iterdir()] == [MANIFEST_FILE]
    assert json.loads((entry / MANIFEST_FILE).read_text())["usable"] is False
    unusable = _count("unusable")
    session = load_session(tiny_model.model_path, [CPU], config=config)
    assert _count("unusable") == unusable + 1
    assert session.get_inputs()


def test_unwritable_cache_dir_costs_only_the_cache(tiny_model, tmp_path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    for _ in range(2):
        session = load_session(
            tiny_model.model_path, [CPU], config=SessionConfig(cache_dir=blocker)
        )
        assert session.get_inputs()


def test_gpu_sessions_do_not_use_the_cache(tiny_model, tmp_path) -> None:
    import warnings

    from magray.ai.errors import ProviderUnavailableError

    root = tmp_path / "cache"
    config = SessionConfig(cache_dir=root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # onnxruntime's "not available" notice
        with pytest.raises(ProviderUnavailableError):
            load_session(tiny_model.model_path, ["CUDAExecutionProvider"], config=config)
    assert not root.exists()


def test_embedder_defers_onnxruntime_and_tokenizer_to_first_use(tmp_path) -> None:
    """A process whose texts all hit a cache never imports onnxruntime."""
    script = textwrap.dedent(
        """
        import sys
        import magray.ai
        assert "numpy" not in sys.modules and "onnxruntime" not in sys.modules
        from magray.ai import ModelRegistry
        assert "numpy" not in sys.modules
        from magray.ai import Embedder
        import numpy as np
        embedder = Embedder.from_settings()
        vector = np.full(embedder.dim, embedder.dim**-0.5, dtype=np.float32)
        embedder.cache.put(embedder.model_id, "seen before", vector)
        got = embedder.embed(["seen before"])[0]
        assert (got == vector).all(), (got[:3], vector[:3])
        assert "onnxruntime" not in sys.modules and "tokenizers" not in sys.modules
        assert embedder.embed(["new text"]).shape == (1, embedder.dim)
        assert "onnxruntime" in sys.modules
        print("ok")
        """
    )
    env = {**os.environ, "MAGRAY_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
