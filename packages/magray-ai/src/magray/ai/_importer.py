"""Torch-free import of BERT-family safetensors folders (and ready ONNX folders).

A sentence-transformers (or Hugging Face ``BertModel`` /
``BertForSequenceClassification``) folder holds ``config.json``,
``model.safetensors`` and ``tokenizer.json`` (or ``vocab.txt``). The weights are
read with numpy (:mod:`magray.ai._safetensors`), the encoder is built as an ONNX
graph (:mod:`magray.ai._bert_onnx`) and the model is registered: no PyTorch, no
network.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Literal

from magray.ai._bert_onnx import BertConfig, build_bert_onnx
from magray.ai._registry import ModelCard, ModelRegistry
from magray.ai._safetensors import read_safetensors
from magray.ai.errors import ConversionError

__all__ = ["import_folder", "import_onnx_folder"]


def _pooling(folder: Path) -> str:
    for candidate in sorted(folder.glob("*_Pooling/config.json")):
        data = json.loads(candidate.read_text())
        if data.get("pooling_mode_cls_token"):
            return "cls"
        if data.get("pooling_mode_lasttoken"):
            return "last"
        return "mean"
    return "mean"


def _max_tokens(folder: Path, config: BertConfig) -> int:
    sbert = folder / "sentence_bert_config.json"
    if sbert.is_file():
        value = json.loads(sbert.read_text()).get("max_seq_length")
        if value:
            return min(int(value), config.max_position_embeddings)
    return config.max_position_embeddings


def _tokenizer_file(folder: Path, tmp: Path) -> Path:
    path = folder / "tokenizer.json"
    if path.is_file():
        return path
    vocab = folder / "vocab.txt"
    if vocab.is_file():
        from tokenizers import BertWordPieceTokenizer

        lower = True
        tok_config = folder / "tokenizer_config.json"
        if tok_config.is_file():
            lower = bool(json.loads(tok_config.read_text()).get("do_lower_case", True))
        tokenizer = BertWordPieceTokenizer(str(vocab), lowercase=lower)
        out = tmp / "tokenizer.json"
        tokenizer.save(str(out))
        return out
    raise ConversionError(
        f"{folder} has neither tokenizer.json nor vocab.txt",
        hint="copy the model's tokenizer.json into the folder",
    )


def import_folder(
    registry: ModelRegistry,
    folder: Path,
    *,
    name: str,
    task: Literal["embed", "rerank"] | None = None,
    pooling: str | None = None,
    max_tokens: int | None = None,
    licence: str = "unknown",
    description: str = "",
) -> ModelCard:
    """Convert a BERT-family safetensors folder to ONNX and register it as ``name``.

    Args:
        registry: Where the model is added.
        folder: Holds ``config.json``, ``model.safetensors`` and a tokenizer.
        name: Registry name of the new model.
        task: ``embed`` or ``rerank`` (default: ``rerank`` when config.json names a
            ``...ForSequenceClassification`` architecture).
        pooling: Override the pooling read from ``*_Pooling/config.json``.
        max_tokens: Override the truncation length.
        licence: Licence of the weights, recorded in the card.
        description: One line for ``magray models list``.
    """
    import onnx

    folder = Path(folder)
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ConversionError(
                f"{folder} has no {path.name}",
                hint="point at a sentence-transformers/Hugging Face folder with "
                "config.json + model.safetensors + tokenizer.json",
            )
    raw_config = json.loads(config_path.read_text())
    config = BertConfig.from_dict(raw_config)
    if task is None:
        archs = raw_config.get("architectures") or []
        task = "rerank" if any("SequenceClassification" in a for a in archs) else "embed"
    weights = read_safetensors(weights_path)
    model = build_bert_onnx(config, weights, task=task)
    if task == "embed":
        card = ModelCard(
            name=name,
            task="embed",
            dim=config.hidden_size,
            pooling=pooling or _pooling(folder),  # type: ignore[arg-type]
            max_tokens=max_tokens or _max_tokens(folder, config),
            output="last_hidden_state",
            licence=licence,
            description=description or f"imported from {folder.name} (fp32)",
            extra={"imported_from": str(folder)},
        )
    else:
        card = ModelCard(
            name=name,
            task="rerank",
            dim=1,
            pooling="none",
            max_tokens=max_tokens or min(512, config.max_position_embeddings),
            output="logits",
            licence=licence,
            description=description or f"cross-encoder imported from {folder.name} (fp32)",
            extra={"imported_from": str(folder)},
        )
    card.check()
    with tempfile.TemporaryDirectory(prefix="magray-import-") as tmp:
        out = Path(tmp) / "model.onnx"
        onnx.save(model, str(out))
        tokenizer = _tokenizer_file(folder, Path(tmp))
        return registry.add_folder(card, model_file=out, tokenizer_file=tokenizer)


def import_onnx_folder(
    registry: ModelRegistry,
    folder: Path,
    *,
    name: str,
    task: Literal["embed", "rerank"] = "embed",
    pooling: str | None = None,
    max_tokens: int | None = None,
    output: str | None = None,
    licence: str = "unknown",
    description: str = "",
) -> ModelCard:
    """Register a folder that already holds ``model.onnx`` + ``tokenizer.json``.

    The output (default: the graph's first) and its size are read from the
    graph; a 3-d output ``[batch, tokens, dim]`` needs pooling (``mean`` unless
    given), a 2-d one is taken as already pooled.
    """
    import onnxruntime as ort

    folder = Path(folder)
    model_path = folder / "model.onnx"
    if not model_path.is_file():
        raise ConversionError(
            f"{folder} has neither model.onnx nor model.safetensors",
            hint="point at a folder with model.onnx + tokenizer.json, or a BERT-family "
            "folder with config.json + model.safetensors + tokenizer.json",
        )
    try:
        session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ConversionError(
            f"ONNX Runtime cannot load {model_path}: {exc}", hint="check the file is a valid model"
        ) from exc
    outputs = {o.name: o.shape for o in session.get_outputs()}
    chosen = output or next(iter(outputs))
    if chosen not in outputs:
        raise ConversionError(
            f"the graph has no output {chosen!r}", hint=f"outputs: {', '.join(outputs)}"
        )
    shape = outputs[chosen]
    last = shape[-1] if shape else None
    with tempfile.TemporaryDirectory(prefix="magray-import-") as tmp:
        tokenizer = _tokenizer_file(folder, Path(tmp))
        if task == "embed":
            if not isinstance(last, int):
                raise ConversionError(
                    f"output {chosen!r} has shape {shape}; its last dimension must be fixed",
                    hint="pass --output with the name of the embedding output",
                )
            card = ModelCard(
                name=name,
                task="embed",
                dim=last,
                pooling=(pooling or "mean") if len(shape) == 3 else "none",  # type: ignore[arg-type]
                max_tokens=max_tokens or 512,
                output=chosen,
                licence=licence,
                description=description or f"ONNX model from {folder.name}",
                extra={"imported_from": str(folder)},
            )
        else:
            card = ModelCard(
                name=name,
                task="rerank",
                dim=1,
                pooling="none",
                max_tokens=max_tokens or 512,
                output=chosen,
                licence=licence,
                description=description or f"ONNX cross-encoder from {folder.name}",
                extra={"imported_from": str(folder)},
            )
        card.check()
        return registry.add_folder(card, model_file=model_path, tokenizer_file=tokenizer)
