"""The package installs, imports and exports what it promises; the README example runs."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

import magray.memory

README = Path(__file__).parents[1] / "README.md"


def test_version_matches_distribution() -> None:
    assert magray.memory.__version__ == importlib.metadata.version("magray-memory")


def test_all_names_exist() -> None:
    for name in magray.memory.__all__:
        assert hasattr(magray.memory, name), name


def test_exported_members() -> None:
    assert set(magray.memory.__all__) == {
        "__version__", "MemoryStore", "Layer", "Hit", "Record", "Embedder", "Reranker",
        "load_embedder", "load_reranker", "Explanation", "PromotionPolicy", "EmbeddingCache",
        "split_passages", "text_hash", "DuplicateIdError", "ModelMismatchError",
        "RecordNotFoundError", "StoreCorruptError", "DatabaseMissingError",
        "DatabaseRegressedError",
        "Ingest", "IngestReport", "FileResult", "iter_files", "iter_passages", "fit_to_window",
        "redact_dsn",
    }  # fmt: skip


def test_import_does_not_load_faiss() -> None:
    import subprocess
    import sys

    code = "import sys, magray.memory; print('faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_open_and_search_do_not_load_numpy_ma(tmp_path: Path) -> None:
    """A cold open + search of a saved store stays off numpy.ma (np.unique loads it, ~8 ms)."""
    import subprocess
    import sys

    import numpy as np

    from magray.memory import MemoryStore

    with MemoryStore.open(tmp_path / "s", None, dim=4) as store:
        store.add(["a", "b", "c"], vectors=np.eye(4, dtype=np.float32)[:3])
    code = (
        "import sys, numpy as np; from magray.memory import MemoryStore; "
        f"s = MemoryStore.open({str(tmp_path / 's')!r}, None); "
        "print(s.search(np.eye(4, dtype=np.float32)[1], k=1)[0].text, 'numpy.ma' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["b", "False"]


def test_readme_vectors_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    exec(compile(first, str(README), "exec"), {})
    assert (tmp_path / "my-memory" / "memory.db").exists()


def test_health_checks_are_registered_as_entry_point() -> None:
    from magray.common.health import HealthRegistry

    (ep,) = importlib.metadata.entry_points(group="magray.health", name="memory")
    registry = HealthRegistry()
    ep.load()(registry, None)
    assert {"memory.embedder", "memory.store"} <= set(registry.names())


def test_redact_dsn_hides_only_the_password() -> None:
    from magray.memory import redact_dsn

    assert redact_dsn("postgresql://me:s3cret@db:5432/app") == "postgresql://me:***@db:5432/app"
    assert redact_dsn("postgresql://db/app") == "postgresql://db/app"
