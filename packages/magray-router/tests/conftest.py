"""Fixtures of the router tests: a shared embedder, a loopback LLM, settings builders."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).parent


def _load_loopback() -> Any:
    name = "magray_router_loopback"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _HERE / "loopback.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


loopback = _load_loopback()


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The real default embedder (magray-ai), loaded once for the whole session."""
    from magray.memory import load_embedder

    return load_embedder("default")


@pytest.fixture
def server() -> Iterator[Any]:
    """magray-llm's loopback server (:mod:`magray.llm.testing`), for the agents' tests."""
    from magray.llm.testing import LoopbackLLM, close_litellm_clients

    with LoopbackLLM() as srv:
        try:
            yield srv
        finally:
            close_litellm_clients()


@pytest.fixture
def llm_server() -> Iterator[Any]:
    with loopback.LoopbackLLM() as server:
        yield server


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("alpha\nTODO: write the docs\nbeta\n")
    (ws / "src").mkdir()
    (ws / "src" / "app.py").write_text("def main():\n    pass  # TODO: handle errors\n")
    return ws


def _settings(
    tmp_path: Path,
    workspace: Path,
    *,
    api_base: str | None,
    fallbacks: list[str],
    router: Any,
    timeout: float = 3.0,
) -> Any:
    from magray.common.settings import Settings

    data: dict[str, Any] = {
        "memory": {"path": str(tmp_path / "memory")},
        "todo": {"path": str(tmp_path / "todo.db"), "retry_backoff": 0.0},
        "router": {"plan_db": str(tmp_path / "smart.db"), **router},
        "tools": {"workspace": [str(workspace)]},
    }
    if api_base is not None:
        models = {m: {"api_base": api_base, "api_key": "sk-test"} for m in fallbacks}
        data["llm"] = {
            "model": "openai/test-model",
            "fallbacks": fallbacks,
            "models": models,
            "api_base": api_base,
            "api_key": "sk-test",
            "timeout": timeout,
            "max_retries": 1,
            "retry_base_delay": 0.0,
            "structured_mode": "json_schema",
        }
    return Settings(**data)


@pytest.fixture
def make_router(tmp_path: Path, workspace: Path, embedder: Any) -> Iterator[Any]:
    """Build a Router over temp stores; ``api_base`` switches LLM mode on."""
    from magray.llm import LLMClient
    from magray.memory import MemoryStore
    from magray.router import Router

    made: list[Any] = []

    def make(
        *,
        api_base: str | None = None,
        memory: bool = True,
        fallbacks: tuple[str, ...] = (),
        yes: bool = False,
        timeout: float = 3.0,
        confirm: Any = None,
        tools: dict[str, Any] | None = None,
        **router: Any,
    ) -> Any:
        settings = _settings(
            tmp_path,
            workspace,
            api_base=api_base,
            fallbacks=list(fallbacks),
            router=router,
            timeout=timeout,
        )
        if tools:
            settings = type(settings)(
                **{**settings.model_dump(), "tools": {**settings.tools.model_dump(), **tools}}
            )
        store = (
            MemoryStore.open(tmp_path / "memory", embedder=embedder, settings=settings.memory)
            if memory
            else None
        )
        llm = LLMClient(settings=settings, sleep=lambda _s: None) if api_base else None
        r = Router(
            settings,
            use_memory=memory,
            memory=store,
            llm=llm,
            assume_yes=yes or None,
            confirm=confirm,
            sleep=lambda _s: None,
            retry_backoff=0.0,
        )
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


# litellm trips the root `filterwarnings = error` while streaming (it reads a
# deprecated pydantic attribute) and its service logger leaves an event loop to
# the garbage collector. Those are litellm's, so they are ignored here only.
LITELLM_WARNING_FILTERS = (
    "ignore::DeprecationWarning:litellm.*",
    "ignore:Accessing the 'model_computed_fields' attribute:DeprecationWarning",
    "ignore:unclosed event loop:ResourceWarning",
    "ignore::pytest.PytestUnraisableExceptionWarning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            for spec in LITELLM_WARNING_FILTERS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture(autouse=True)
def _close_litellm_event_loop() -> Iterator[None]:
    """Close the event loop litellm's sync logger leaves on the main thread."""
    yield
    import asyncio
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        policy = asyncio.get_event_loop_policy()
        try:
            loop = policy.get_event_loop()
        except RuntimeError:
            return
        if not loop.is_running():
            loop.close()
        policy.set_event_loop(None)
