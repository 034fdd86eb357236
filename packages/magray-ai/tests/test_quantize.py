"""INT8 and FP16 variants: registered, measured, and close to the fp32 model."""

from __future__ import annotations

import numpy as np
import pytest

from magray.ai import Embedder, ModelRegistry
from magray.ai._eval import load_eval_set
from magray.ai._importer import import_folder
from magray.ai._quantize import compare_models, quantize_model
from magray.ai.errors import ConversionError


def test_int8_variant_of_l3_agrees_with_fp32(tmp_path, caplog) -> None:
    registry = ModelRegistry(models_dir=tmp_path)
    card = quantize_model(registry, "minilm-l3")
    assert (card.name, card.variant, card.parent) == ("minilm-l3-q8", "int8", "minilm-l3")
    assert card.extra["quantization"] == {
        "per_channel": True,
        "op_types": ["MatMul"],
        "keep_ffn": True,
    }
    assert "pre-processing" not in caplog.text
    data = load_eval_set()
    report = compare_models(registry, "minilm-l3", "minilm-l3-q8", data.docs[:64], repeats=1)
    assert report.cosine_min >= 0.99
    assert report.candidate_bytes < report.reference_bytes
    embedder = Embedder("minilm-l3-q8", registry=registry, force_cpu=True)
    assert embedder.model_id.startswith("minilm-l3-q8:int8:")


def test_fp16_of_imported_model(tmp_path, tiny_bert) -> None:
    pytest.importorskip("onnxconverter_common", reason="needs magray-ai[fp16]")
    folder, _ = tiny_bert.make_folder(tmp_path, head=False)
    registry = ModelRegistry(models_dir=tmp_path / "models")
    import_folder(registry, folder, name="tiny")
    card = quantize_model(registry, "tiny", fp16=True)
    assert (card.name, card.variant) == ("tiny-f16", "fp16")
    full = Embedder("tiny", registry=registry, force_cpu=True).embed(tiny_bert.texts)
    half = Embedder("tiny-f16", registry=registry, force_cpu=True).embed(tiny_bert.texts)
    assert np.sum(full * half, axis=1).min() > 0.999


def test_fp16_refuses_a_graph_it_would_break(tmp_path) -> None:
    pytest.importorskip("onnxconverter_common", reason="needs magray-ai[fp16]")
    registry = ModelRegistry(models_dir=tmp_path)
    with pytest.raises(ConversionError) as info:
        quantize_model(registry, "minilm-l3", fp16=True)
    assert "magray models import" in (info.value.hint or "")
    assert "minilm-l3-f16" not in registry.names()
