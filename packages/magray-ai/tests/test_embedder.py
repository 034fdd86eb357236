"""The embedder, run on the real shipped models (no mocks of onnxruntime)."""

from __future__ import annotations

import concurrent.futures
from importlib.metadata import entry_points

import numpy as np
import pytest

from magray.ai import Embedder, ModelRegistry
from magray.ai._embedder import pool
from magray.common.errors import InvalidInputError

RELATED = [
    ("A cat is sleeping on the sofa.", "A kitten naps on the couch."),
    ("How do I reset my password?", "Steps to change a forgotten account password."),
    (
        "The train to Berlin was delayed by an hour.",
        "Our rail journey to Berlin ran 60 minutes late.",
    ),
    ("Add two cups of flour to the bowl.", "Put 2 cups of flour into the mixing bowl."),
    (
        "The server crashed because it ran out of memory.",
        "An out-of-memory error took the server down.",
    ),
]


@pytest.mark.parametrize("name", ["minilm-l6", "minilm-l3"])
def test_related_pairs_score_clearly_above_unrelated(builtin_embedders, name) -> None:
    embedder = builtin_embedders[name]
    left = embedder.embed([a for a, _ in RELATED])
    right = embedder.embed([b for _, b in RELATED])
    sims = left @ right.T
    related = np.diag(sims)
    unrelated = sims[~np.eye(len(RELATED), dtype=bool)]
    # Every related pair beats every unrelated pair, by a clear margin on average.
    assert related.min() > unrelated.max(), (related, unrelated.max())
    assert related.mean() - unrelated.mean() > 0.4


@pytest.mark.parametrize("name", ["minilm-l6", "minilm-l3"])
def test_output_contract(builtin_embedders, name) -> None:
    embedder = builtin_embedders[name]
    vectors = embedder.embed(["one", "two words", "three words here"])
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, embedder.dim) == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.model_id.startswith(f"{name}:")
    assert embedder.embed([]).shape == (0, 384)


def test_bucketing_restores_order_and_matches_single_calls(builtin_embedders) -> None:
    embedder = builtin_embedders["minilm-l6"]
    texts = [
        "short",
        "a much longer sentence " * 8,
        "medium length sentence here",
        "x y",
        "another fairly long sentence about embeddings and batching in onnx runtime",
    ]
    one_by_one = np.stack([embedder.embed([t])[0] for t in texts])
    small_batches = Embedder(
        embedder.resolved, force_cpu=True, batch_size=2, cache_entries=0
    ).embed(texts)
    np.testing.assert_allclose(small_batches, one_by_one, atol=2e-5)


def test_truncation_to_max_tokens(builtin_embedders) -> None:
    embedder = builtin_embedders["minilm-l3"]
    long_text = "word " * 1000
    assert embedder.token_counts([long_text]) == [embedder.max_tokens]
    assert embedder.embed([long_text]).shape == (1, 384)


@pytest.mark.parametrize("bad", [[""], ["ok", "   \n\t"], "a bare string", [3]])
def test_invalid_input_raises(builtin_embedders, bad) -> None:
    with pytest.raises(InvalidInputError):
        builtin_embedders["minilm-l3"].embed(bad)


def test_cache_hits_and_identical_vectors(tmp_path) -> None:
    embedder = Embedder(
        "minilm-l3", registry=ModelRegistry(models_dir=tmp_path), force_cpu=True, cache_entries=2
    )
    first = embedder.embed(["alpha", "beta", "alpha"])
    assert embedder.cache.stats()["misses"] == 3  # looked up before the batch ran
    np.testing.assert_array_equal(first[0], first[2])
    again = embedder.embed(["alpha"])
    assert embedder.cache.hits == 1
    np.testing.assert_array_equal(again[0], first[0])
    embedder.embed(["gamma"])  # evicts the least recently used ("beta")
    assert len(embedder.cache) == 2
    embedder.embed(["beta"])
    assert embedder.cache.hits == 1


def test_concurrent_calls_agree_with_serial(builtin_embedders) -> None:
    embedder = builtin_embedders["minilm-l3"]
    texts = [f"sentence number {i} about topic {i % 7}" for i in range(24)]
    serial = embedder.embed(texts)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool_:
        parts = list(pool_.map(lambda i: embedder.embed(texts[i : i + 6]), range(0, 24, 6)))
    np.testing.assert_allclose(np.vstack(parts), serial, atol=2e-5)


def test_pooling_modes() -> None:
    hidden = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    np.testing.assert_allclose(pool(hidden, mask, "mean")[0], hidden[0, :2].mean(axis=0))
    np.testing.assert_allclose(pool(hidden, mask, "cls"), hidden[:, 0])
    np.testing.assert_allclose(pool(hidden, mask, "last"), [hidden[0, 1], hidden[1, 2]])


def test_default_entry_point_contract() -> None:
    (ep,) = [e for e in entry_points(group="magray.embedders") if e.name == "default"]
    embedder = ep.load()()
    assert isinstance(embedder.model_id, str)
    assert embedder.model_id
    assert embedder.dim == 384
    out = embedder.embed(["entry points work"])
    assert out.shape == (1, 384)
    assert out.dtype == np.float32
    l3 = ep.load()(model="minilm-l3")
    assert l3.model_id != embedder.model_id
    with pytest.raises(InvalidInputError):
        embedder.embed([" "])


def test_settings_choose_model_and_cpu(monkeypatch, offer_cuda) -> None:
    """The environment reaches the providers only through the loaded settings."""
    monkeypatch.setenv("MAGRAY_AI__EMBEDDING_MODEL", "minilm-l3")
    offered = Embedder.from_settings()
    assert offered.card.name == "minilm-l3"
    assert offered.manager.provider_names == offer_cuda
    monkeypatch.setenv("MAGRAY_AI__FORCE_CPU", "1")
    embedder = Embedder.from_settings()
    assert embedder.manager.provider_names == ["CPUExecutionProvider"]


def test_reranker_and_gpu_info_follow_force_cpu(tiny_bert, tmp_path, offer_cuda) -> None:
    from magray.ai import Reranker, gpu_info, import_folder
    from magray.common.settings import AISettings

    registry = ModelRegistry(models_dir=tmp_path / "models")
    folder, _ = tiny_bert.make_folder(tmp_path, head=True)
    import_folder(registry, folder, name="tiny-ce", task="rerank")
    for force_cpu, expected in ((False, offer_cuda), (True, ["CPUExecutionProvider"])):
        settings = AISettings(models_dir=tmp_path / "models", force_cpu=force_cpu)
        reranker = Reranker.from_settings(settings, model="tiny-ce")
        assert reranker.manager.provider_names == expected
        assert gpu_info(force_cpu=force_cpu)["selected"] == expected
