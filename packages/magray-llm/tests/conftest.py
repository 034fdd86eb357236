"""Fixtures of magray-llm's tests: the loopback server of :mod:`magray.llm.testing`.

Replies are scripted per model name: JSON completions, SSE streams, error
statuses, delays and hanging responses (released at teardown, so a client
timeout, not a sleep, decides how long a "slow" test takes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from magray.llm.testing import LoopbackLLM, close_litellm_clients

# litellm itself trips the root `filterwarnings = error`: it reads a deprecated
# pydantic attribute while streaming, and its service logger leaves an event loop
# (and that loop's self-pipe sockets) to the garbage collector. Those are
# litellm's, not ours, so they are ignored for this package's tests only.
LITELLM_WARNING_FILTERS = (
    "ignore::DeprecationWarning:litellm.*",
    "ignore:Accessing the 'model_computed_fields' attribute:DeprecationWarning",
    "ignore:unclosed event loop:ResourceWarning",
    "ignore::pytest.PytestUnraisableExceptionWarning",
)
_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            for spec in LITELLM_WARNING_FILTERS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture(autouse=True)
def _close_litellm_event_loop() -> Iterator[None]:
    """Close the main-thread event loop litellm's sync service logger creates and keeps.

    (``asyncio.run`` in a later test would otherwise drop it unclosed.)
    """
    yield
    close_litellm_clients()
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


@pytest.fixture
def server() -> Iterator[LoopbackLLM]:
    """A loopback OpenAI-compatible server (:mod:`magray.llm.testing`)."""
    with LoopbackLLM() as srv:
        try:
            yield srv
        finally:
            close_litellm_clients()


@pytest.fixture
def sleeps() -> list[float]:
    """Delays the client asked to sleep (injected instead of time.sleep)."""
    return []
