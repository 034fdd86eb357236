"""Shared fixtures: real built-in models, loaded once per session."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from magray.ai import Embedder, ModelRegistry


@pytest.fixture(scope="session")
def builtin_embedders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Embedder]:
    registry = ModelRegistry(models_dir=tmp_path_factory.mktemp("models"))
    return {
        card.name: Embedder(card.name, registry=registry, force_cpu=True, cache_entries=0)
        for card in registry.cards(task="embed")
        if card.builtin
    }


@pytest.fixture
def offer_cuda(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make onnxruntime *report* CUDA, as an onnxruntime-gpu build without a GPU would.

    Only the provider list magray selects from changes: sessions are still made by
    the real onnxruntime, which cannot initialise CUDA here, so the GPU path fails
    for real and the fallback manager must move the work to the CPU.
    """
    import onnxruntime

    offered = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(offered))
    return offered


# ---------------------------------------------------------------- a tiny random BERT
WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "rug",
    "ran",
    "fast",
    "slow",
    "red",
    "blue",
    "big",
    "small",
    "tree",
    "sky",
]
CONFIG = {
    "model_type": "bert",
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 32,
    "max_position_embeddings": 40,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_act": "gelu",
    "vocab_size": 5 + len(WORDS),
}


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header: dict[str, dict[str, object]] = {}
    blobs, offset = [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def write_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    tok.save(str(path))


def random_bert(rng: np.random.Generator, *, head: bool) -> dict[str, np.ndarray]:
    h, inter = CONFIG["hidden_size"], CONFIG["intermediate_size"]

    def lin(name: str, n_out: int, n_in: int) -> dict[str, np.ndarray]:
        return {
            f"{name}.weight": rng.normal(0, 0.3, (n_out, n_in)),
            f"{name}.bias": rng.normal(0, 0.1, n_out),
        }

    def norm(name: str) -> dict[str, np.ndarray]:
        return {f"{name}.weight": 1 + rng.normal(0, 0.1, h), f"{name}.bias": rng.normal(0, 0.1, h)}

    w = {
        "embeddings.word_embeddings.weight": rng.normal(0, 1, (CONFIG["vocab_size"], h)),
        "embeddings.position_embeddings.weight": rng.normal(0, 1, (40, h)),
        "embeddings.token_type_embeddings.weight": rng.normal(0, 1, (2, h)),
        **norm("embeddings.LayerNorm"),
    }
    for i in range(CONFIG["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        for part in ("query", "key", "value"):
            w |= lin(f"{p}.attention.self.{part}", h, h)
        w |= lin(f"{p}.attention.output.dense", h, h) | norm(f"{p}.attention.output.LayerNorm")
        w |= lin(f"{p}.intermediate.dense", inter, h) | lin(f"{p}.output.dense", h, inter)
        w |= norm(f"{p}.output.LayerNorm")
    if head:
        w = {f"bert.{k}": v for k, v in w.items()}
        w |= {f"bert.{k}": v for k, v in lin("pooler.dense", h, h).items()}
        w |= lin("classifier", 1, h)
    return {k: v.astype(np.float32) for k, v in w.items()}


def numpy_bert(w: dict[str, np.ndarray], feeds: dict[str, np.ndarray]) -> np.ndarray:
    """Reference BERT forward (Hugging Face semantics) in float64 numpy."""
    w = {k.removeprefix("bert."): v.astype(np.float64) for k, v in w.items()}
    ids, mask, types = feeds["input_ids"], feeds["attention_mask"], feeds["token_type_ids"]
    heads = CONFIG["num_attention_heads"]
    d = CONFIG["hidden_size"] // heads
    erf = np.vectorize(math.erf)

    def ln(x: np.ndarray, p: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * w[f"{p}.weight"] + w[f"{p}.bias"]

    def lin(x: np.ndarray, p: str) -> np.ndarray:
        return x @ w[f"{p}.weight"].T + w[f"{p}.bias"]

    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][: ids.shape[1]][None]
        + w["embeddings.token_type_embeddings.weight"][types]
    )
    x = ln(x, "embeddings.LayerNorm")
    b, s = ids.shape
    bias = (1.0 - mask[:, None, None, :]) * -1e9
    for i in range(CONFIG["num_hidden_layers"]):
        p = f"encoder.layer.{i}"

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(b, s, heads, d).transpose(0, 2, 1, 3)

        q = split(lin(x, f"{p}.attention.self.query"))
        k = split(lin(x, f"{p}.attention.self.key"))
        v = split(lin(x, f"{p}.attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, -1)
        x = ln(lin(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
        inner = lin(x, f"{p}.intermediate.dense")
        inner = 0.5 * inner * (1 + erf(inner / math.sqrt(2)))
        x = ln(lin(inner, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
    return x


def make_folder(root: Path, *, head: bool, seed: int = 0) -> tuple[Path, dict[str, np.ndarray]]:
    folder = root / ("tiny-ce" if head else "tiny")
    folder.mkdir()
    weights = random_bert(np.random.default_rng(seed), head=head)
    write_safetensors(folder / "model.safetensors", weights)
    config = dict(CONFIG)
    if head:
        config["architectures"] = ["BertForSequenceClassification"]
    (folder / "config.json").write_text(json.dumps(config))
    write_tokenizer(folder / "tokenizer.json")
    return folder, weights


TEXTS = ["the cat sat on the mat", "a dog ran", "big red tree", "the small blue sky ran fast"]


@pytest.fixture
def tiny_bert() -> SimpleNamespace:
    """Helpers to write a tiny random BERT folder and run it in numpy."""
    return SimpleNamespace(
        make_folder=make_folder,
        numpy_bert=numpy_bert,
        write_safetensors=write_safetensors,
        texts=TEXTS,
    )
