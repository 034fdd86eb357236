"""What memory answers: transcripts never answer their own question, and the no-LLM
answer's relevance floor, calibrated on the real default embedder (bundled MiniLM).

Run this file as a script to print the calibration table docs/router.md quotes:
``.venv/bin/python packages/magray-router/tests/test_answers.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from magray.router import Route

_SET = Path(__file__).parent / "data" / "relevance.json"


def _labelled() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_SET.read_text())
    return data


def top_scores(embedder: Any, data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Best cosine score over the memories, per relevant and per unrelated question."""
    memory = embedder.embed(data["memory"])
    relevant = embedder.embed([x["q"] for x in data["relevant"]])
    unrelated = embedder.embed(data["unrelated"])
    return (relevant @ memory.T).max(axis=1), (unrelated @ memory.T).max(axis=1)


# ---------------------------------------------------------------- transcripts


def test_asking_twice_does_not_answer_with_the_first_question(make_router) -> None:
    router = make_router()
    (fact,) = router.memory.add(["The staging database is called orca."], layer="insights")
    first = router.ask("what is the staging database called?")
    second = router.ask("What is the staging database called")
    assert first.memory_id is not None  # the exchange was stored ...
    stored = router.memory.get(first.memory_id)
    assert stored.metadata["kind"] == "exchange"
    assert stored.metadata["request"] == "what is the staging database called?"
    # ... and is never the answer: the fact is, and the transcript is not listed at all
    assert second.context[0].id == fact
    assert first.memory_id not in [p.id for p in second.context]
    assert "User asked" not in second.text


def test_an_unknown_question_asked_twice_finds_nothing(make_router) -> None:
    router = make_router()
    router.ask("why is the sky blue?")
    reply = router.ask("why is the sky blue?")
    assert reply.context == []
    assert "Nothing relevant in memory" in reply.text
    assert 'magray memory add "..."' in reply.text


def test_the_llm_context_leaves_out_transcripts_of_the_same_question(
    make_router, llm_server
) -> None:
    from .conftest import loopback

    router = make_router(api_base=llm_server.api_base)
    llm_server.responder = lambda body: loopback.text("Orca, on port 5433.")
    fact = router.remember("The staging database is orca on port 5433.")
    first = router.ask("what is the staging database?")
    router.ask("what is the staging database?")
    system = llm_server.requests[-1]["messages"][0]["content"]
    assert f"[mem:{fact}]" in system
    assert f"[mem:{first.memory_id}]" not in system
    # a different question may still use that exchange as context
    router.ask("tell me about the staging database")
    assert f"[mem:{first.memory_id}]" in llm_server.requests[-1]["messages"][0]["content"]


def test_a_plain_memory_search_still_lists_exchanges(make_router) -> None:
    router = make_router()
    first = router.ask("hello there")
    assert first.memory_id in [p.id for p in router.search_memory("hello there", min_score=-1)]
    assert router.search_memory("hello there", question="hello there", min_score=-1) == []


def test_the_memory_route_leaves_out_its_own_earlier_transcript(make_router) -> None:
    router = make_router()
    router.remember("the staging database is called orca", layer="assets")
    first = router.ask("what do you remember about the staging database", route="memory")
    second = router.ask("what do you remember about the staging database", route="memory")
    assert "orca" in second.text
    assert first.memory_id not in [p.id for p in second.context]


# ---------------------------------------------------------------- relevance floor


def test_an_unrelated_question_gets_nothing_relevant_and_how_to_add(make_router) -> None:
    router = make_router()
    router.memory.add(
        ["The release train leaves every second Tuesday.", "Alice owns the billing service."],
        layer="insights",
    )
    reply = router.ask("what is the capital of Australia?")
    assert reply.route is Route.ANSWER
    assert reply.context == []
    assert reply.citations == []
    assert "Nothing relevant in memory for this request (best match" in reply.text
    assert "magray memory add" in reply.text
    relevant = router.ask("when does the release train leave?")
    assert "second Tuesday" in relevant.text


def test_the_floor_is_a_setting(make_router) -> None:
    router = make_router(answer_min_score=-1.0)
    router.memory.add(["Alice owns the billing service."], layer="insights")
    reply = router.ask("what is the capital of Australia?")
    assert "Alice owns the billing service" in reply.text


def test_the_default_floor_separates_the_labelled_set(embedder) -> None:
    """All 28 relevant questions keep an answer, at least 26 of 28 unrelated get none."""
    from magray.common.settings import Settings

    floor = Settings().router.answer_min_score
    relevant, unrelated = top_scores(embedder, _labelled())
    assert (relevant >= floor).all(), sorted(relevant)[:3]
    assert (unrelated < floor).sum() >= len(unrelated) - 2, sorted(unrelated)[-3:]
    # the old context floor (0.2) would have answered a sixth of the unrelated questions
    assert (unrelated >= Settings().router.min_context_score).sum() >= 4


def _report() -> None:  # pragma: no cover - the calibration table, by hand
    from magray.memory import load_embedder

    data = _labelled()
    relevant, unrelated = top_scores(load_embedder("default"), data)
    print(f"relevant  n={len(relevant)} min={relevant.min():.3f} median={np.median(relevant):.3f}")
    top = np.sort(unrelated)[::-1]
    median = np.median(top)
    print(f"unrelated n={len(unrelated)} max={top[0]:.3f} 2nd={top[1]:.3f} median={median:.3f}")
    print("floor  relevant kept  unrelated refused")
    for floor in np.arange(0.15, 0.451, 0.05):
        kept = int((relevant >= floor).sum())
        refused = int((unrelated < floor).sum())
        print(f"{floor:.2f}   {kept}/{len(relevant)}          {refused}/{len(unrelated)}")


if __name__ == "__main__":  # pragma: no cover
    _report()
