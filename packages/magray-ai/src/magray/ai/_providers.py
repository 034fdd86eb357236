"""ONNX Runtime execution providers: what is available, what to use, and sessions.

GPU-class providers are preferred in the order of :data:`GPU_PROVIDERS` when
ONNX Runtime offers them and settings allow; ``CPUExecutionProvider`` is always
the last resort. ``onnxruntime`` is imported lazily.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.ai.errors import ModelVerificationError, ProviderUnavailableError
from magray.common.errors import DependencyMissingError, InvalidInputError

if TYPE_CHECKING:
    from magray.common.settings import AISettings

__all__ = [
    "CPU",
    "GPU_PROVIDERS",
    "OrtBackend",
    "SessionConfig",
    "available_providers",
    "select_providers",
    "session_config_from",
]

CPU = "CPUExecutionProvider"
#: Accelerated providers magray will use, best first.
GPU_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "ROCMExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
)


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DependencyMissingError(
            "onnxruntime is not installed", hint='pip install "onnxruntime>=1.18"'
        ) from exc
    return onnxruntime


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers."""
    return list(_ort().get_available_providers())


def select_providers(
    *,
    force_cpu: bool = False,
    preferred: Sequence[str] = (),
    available: Sequence[str] | None = None,
) -> list[str]:
    """The providers to try, best first, always ending with CPU.

    Args:
        force_cpu: Only CPU. This function does not read the environment: callers
            pass ``AISettings.force_cpu`` (which pydantic-settings fills from
            ``MAGRAY_AI__FORCE_CPU``), as :meth:`Embedder.from_settings` does.
        preferred: Explicit order from settings; names not available are dropped.
            Empty = every available GPU provider in :data:`GPU_PROVIDERS` order.
        available: Override of :func:`available_providers` (for tests).
    """
    if force_cpu:
        return [CPU]
    offered = list(available) if available is not None else available_providers()
    order = list(preferred) if preferred else list(GPU_PROVIDERS)
    chosen = [p for p in order if p in offered and p != CPU]
    return [*chosen, CPU]


@dataclass(frozen=True)
class SessionConfig:
    """ONNX Runtime session tuning.

    Attributes:
        intra_op_threads: Threads inside one operator (0 = ONNX Runtime's choice).
        inter_op_threads: Threads across operators (sequential execution uses 1).
        graph_optimization: ``disable``, ``basic``, ``extended`` or ``all``.
        memory_arena: Keep ONNX Runtime's CPU memory arena (faster repeated runs).
        cache_dir: Where CPU sessions keep their optimised graph, so later processes
            skip the optimiser (``None`` = no cache; :meth:`Embedder.from_settings
            <magray.ai.Embedder.from_settings>` uses ``<cache dir>/ai/onnx``). See
            :mod:`magray.ai._session_cache`.
    """

    intra_op_threads: int = 0
    inter_op_threads: int = 1
    graph_optimization: str = "all"
    memory_arena: bool = True
    cache_dir: Path | None = None

    def session_options(self) -> Any:
        ort = _ort()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = self.inter_op_threads
        levels = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }
        if self.graph_optimization not in levels:
            raise InvalidInputError(
                f"unknown graph optimisation level {self.graph_optimization!r}",
                hint=f"use one of {', '.join(levels)}",
            )
        options.graph_optimization_level = levels[self.graph_optimization]
        options.enable_cpu_mem_arena = self.memory_arena
        options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise
        return options


def session_config_from(settings: AISettings) -> SessionConfig:
    """The session options of the ``[ai]`` settings, with the optimised-graph cache in
    magray's cache directory (``$MAGRAY_HOME/cache/ai/onnx`` when ``MAGRAY_HOME`` is set)."""
    from magray.common import paths

    return SessionConfig(
        intra_op_threads=settings.intra_op_threads,
        graph_optimization=settings.graph_optimization,
        memory_arena=settings.memory_arena,
        cache_dir=paths.cache_dir() / "ai" / "onnx",
    )


class OrtBackend:
    """One ONNX Runtime session on one execution provider, created on first use.

    A GPU session also lists CPU so operators the GPU provider lacks still run.
    Creating the session can fail (missing CUDA libraries...): the error surfaces
    from :meth:`run`, where the fallback manager treats it like any failure.
    """

    def __init__(
        self,
        model_path: Path,
        provider: str,
        *,
        config: SessionConfig | None = None,
        output_names: Sequence[str] | None = None,
        model_sha256: str | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.provider = provider
        self.config = config or SessionConfig()
        self.output_names = list(output_names) if output_names else None
        self.model_sha256 = model_sha256
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.provider

    @property
    def session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = load_session(
                        self.model_path,
                        [self.provider],
                        config=self.config,
                        model_sha256=self.model_sha256,
                    )
        return self._session

    def input_names(self) -> list[str]:
        return [i.name for i in self.session.get_inputs()]

    def run(self, feeds: Mapping[str, Any]) -> list[Any]:
        # InferenceSession.run is thread-safe; no lock around it.
        return list(self.session.run(self.output_names, dict(feeds)))


def load_session(
    path: Path,
    providers: Sequence[str],
    *,
    config: SessionConfig,
    model_sha256: str | None = None,
) -> Any:
    """An ``InferenceSession`` on ``providers`` (+CPU), with a clear error for a bad file.

    A CPU-only session with ``config.cache_dir`` set loads the optimised graph cached
    there (building it on first use); ``model_sha256`` (the card's) names the model in
    the cache key, else the file is hashed.
    """
    chosen = list(providers)
    if CPU not in chosen:
        chosen.append(CPU)

    def create(model: Path, options: Any) -> Any:
        return _create_session(model, chosen, options)

    if config.cache_dir is not None and chosen == [CPU] and config.graph_optimization != "disable":
        from magray.ai._session_cache import SessionCache

        return SessionCache(config.cache_dir).load(
            path, config=config, providers=chosen, model_sha256=model_sha256, create=create
        )
    return create(path, config.session_options())


def _create_session(path: Path, chosen: list[str], options: Any) -> Any:
    ort = _ort()
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
    except Exception as exc:
        if chosen[0] != CPU:
            raise  # a provider problem: let the fallback manager see the real error
        raise ModelVerificationError(
            f"ONNX Runtime cannot load {path}: {exc}",
            hint="the file is corrupt or not an ONNX model; reinstall or re-import it",
        ) from exc
    wanted = chosen[0]
    if wanted != CPU and wanted not in session.get_providers():
        # onnxruntime quietly drops a provider it cannot initialise (missing CUDA
        # libraries...); running such a session would be CPU work labelled GPU.
        raise ProviderUnavailableError(
            f"{wanted} could not be initialised; the session only has {session.get_providers()}",
            hint="check the GPU driver and the onnxruntime-gpu install, "
            "or set ai.force_cpu = true (MAGRAY_AI__FORCE_CPU=1)",
        )
    return session
