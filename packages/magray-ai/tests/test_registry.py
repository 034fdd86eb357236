"""Model registry: built-ins from packages, user folders, errors with hints."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from magray.ai import BUILTIN_MODELS, DEFAULT_EMBEDDING_MODEL, ModelCard, ModelRegistry
from magray.ai.errors import ModelExistsError, ModelNotFoundError, ModelVerificationError
from magray.common.errors import InvalidInputError


def test_builtins_resolve_to_installed_files(tmp_path) -> None:
    registry = ModelRegistry(models_dir=tmp_path)
    for card in BUILTIN_MODELS:
        resolved = registry.resolve(card.name)
        assert resolved.model_path.is_file()
        assert resolved.tokenizer_path.is_file()
        actual, expected = registry.check_hash(card.name)
        assert actual == expected
    assert registry.card("default").name == DEFAULT_EMBEDDING_MODEL


def test_unknown_model_hint(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        ModelRegistry(models_dir=tmp_path).resolve("nope")
    assert "minilm-l3" in (info.value.hint or "")


def test_missing_package_names_the_package(tmp_path) -> None:
    card = replace(BUILTIN_MODELS[0], name="ghost", package="magray-no-such-model-package")
    registry = ModelRegistry(models_dir=tmp_path, builtins=[card])
    with pytest.raises(ModelNotFoundError) as info:
        registry.resolve("ghost")
    assert info.value.hint == 'pip install "magray-no-such-model-package"'


def test_user_folder_add_list_remove(tmp_path) -> None:
    registry = ModelRegistry(models_dir=tmp_path / "models")
    source = registry.resolve("minilm-l3")
    card = replace(source.card, name="my-l3", package=None, builtin=False, sha256=None)
    added = registry.add_folder(
        card, model_file=source.model_path, tokenizer_file=source.tokenizer_path
    )
    assert added.sha256 == source.card.sha256
    assert "my-l3" in registry.names(task="embed")
    assert registry.resolve("my-l3").model_path.parent == tmp_path / "models" / "my-l3"
    with pytest.raises(ModelExistsError):
        registry.add_folder(
            card, model_file=source.model_path, tokenizer_file=source.tokenizer_path
        )
    registry.remove("my-l3")
    assert "my-l3" not in registry.names()
    with pytest.raises(InvalidInputError):
        registry.remove("minilm-l3")


def test_tampered_file_fails_hash_check(tmp_path) -> None:
    registry = ModelRegistry(models_dir=tmp_path)
    source = registry.resolve("minilm-l3")
    card = replace(source.card, name="copy", package=None, builtin=False)
    registry.add_folder(card, model_file=source.model_path, tokenizer_file=source.tokenizer_path)
    with open(tmp_path / "copy" / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelVerificationError):
        registry.check_hash("copy")
    shutil.rmtree(tmp_path / "copy")


def test_card_validation() -> None:
    with pytest.raises(InvalidInputError):
        ModelCard.from_dict(
            {"name": "Bad Name", "task": "embed", "dim": 3, "pooling": "mean", "max_tokens": 16}
        )
    with pytest.raises(InvalidInputError):
        ModelCard.from_dict(
            {
                "name": "ok",
                "task": "embed",
                "dim": 3,
                "pooling": "mean",
                "max_tokens": 16,
                "colour": "red",
            }
        )
    card = ModelCard.from_dict(json.loads(json.dumps(BUILTIN_MODELS[1].to_dict())))
    assert card == BUILTIN_MODELS[1]
