"""Adapters to the lower packages: the only module that knows their APIs.

Everything the router needs from magray-memory, magray-llm, magray-tools and
magray-todo goes through the small functions here, built on those packages'
public ``__init__`` exports only. An API change in a lower package touches
this file and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.router._types import Passage, Plan, ToolOutcome

if TYPE_CHECKING:
    from magray.common.metrics import MetricsRegistry
    from magray.common.settings import Settings
    from magray.llm import LLMClient
    from magray.memory import MemoryStore
    from magray.todo import ProgressEvent, RunReport, Task, TodoStore
    from magray.tools import ConfirmRequest, ToolContext, ToolRegistry

__all__ = [
    "call_tool",
    "llm_client",
    "llm_configured",
    "model_stats",
    "order_models",
    "memory_add",
    "memory_search",
    "open_memory",
    "open_plans",
    "open_todo",
    "run_plan_tasks",
    "tool_context",
    "tool_parameters",
    "tool_registry",
    "tool_schemas",
]

# ---------------------------------------------------------------- memory


def open_memory(settings: Settings) -> MemoryStore:
    """The memory store of ``settings`` with its configured embedder."""
    from magray.memory import MemoryStore

    return MemoryStore.open(
        settings.memory.path, embedder=settings.memory.embedder, settings=settings.memory
    )


def memory_search(
    store: MemoryStore,
    query: str,
    k: int,
    *,
    layers: Sequence[str] | None = None,
    where: dict[str, Any] | None = None,
) -> list[Passage]:
    """The ``k`` passages most similar to ``query`` across ``layers`` (default: all)
    among the records matching ``where`` (magray-memory's filter)."""
    hits = store.search(query, k=k, layers=list(layers) if layers else None, where=where)
    return [Passage(h.id, str(h.layer), float(h.score), h.text, dict(h.metadata)) for h in hits]


def memory_add(store: MemoryStore, text: str, metadata: dict[str, Any], *, layer: str) -> str:
    """Store one text; returns its id (an existing id when dedupe finds the same text)."""
    (record_id,) = store.add([text], metadata=metadata, layer=layer)
    return record_id


# ---------------------------------------------------------------- llm


def llm_configured(settings: Settings) -> bool:
    """True when a language model is configured (else the router runs in no-LLM mode)."""
    return bool(settings.llm.model)


def llm_client(settings: Settings, *, metrics: MetricsRegistry | None = None) -> LLMClient:
    """An LLM client over the ``[llm]`` settings (model chain = model + fallbacks).

    Several deployments in the chain go through litellm's Router (magray-llm decides).
    ``router.model_order = "latency"`` does two things: within a name with several
    deployments the Router uses ``latency-based-routing`` (unless
    ``llm.routing_strategy`` is set), and the chain itself is reordered by the p50
    latency measured in this and earlier runs (see :func:`order_models`), which the
    Router cannot know in a fresh process.
    """
    from magray.llm import LLMClient

    latency = settings.router.model_order == "latency"
    strategy = settings.llm.routing_strategy
    if strategy is None and latency:
        strategy = "latency-based-routing"
    client = LLMClient(settings=settings, metrics=metrics, routing_strategy=strategy)
    chain = list(dict.fromkeys(client.models))
    if latency and len(chain) > 1:
        from magray.common.metrics import default_registry

        stats = model_stats(metrics or default_registry())
        labels = {name: [d.label for d in client.deployments(name)] for name in chain}
        chain = order_models(chain, _group_stats(stats, labels))
        client.model, client.fallbacks = chain[0], chain[1:]
    return client


def _group_stats(
    stats: dict[str, dict[str, float]], labels: dict[str, list[str]]
) -> dict[str, dict[str, float]]:
    """Per-deployment stats summed per chain name (p50: its fastest measured deployment)."""
    out: dict[str, dict[str, float]] = {}
    for name, members in labels.items():
        measured = [stats[label] for label in members if label in stats]
        if not measured:
            continue
        entry = {
            "calls": sum(m.get("calls", 0.0) for m in measured),
            "errors": sum(m.get("errors", 0.0) for m in measured),
        }
        p50s = [m["p50"] for m in measured if "p50" in m]
        if p50s:
            entry["p50"] = min(p50s)
        out[name] = entry
    return out


def _parse_key(key: str) -> tuple[str, dict[str, str]]:
    name, _, rest = key.partition("{")
    labels = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)
    return name, labels


def model_stats(metrics: MetricsRegistry) -> dict[str, dict[str, float]]:
    """Per-model ``p50`` latency (ms), ``calls`` and ``errors``: this process plus earlier
    runs (``<data>/metrics.json``, what ``magray status`` shows)."""
    from magray.common import paths
    from magray.common.metrics import MetricsRegistry, load_state

    merged = MetricsRegistry()
    merged.merge_state(load_state(paths.data_dir() / "metrics.json"))
    merged.merge_state(metrics.state())
    snap = merged.snapshot()
    stats: dict[str, dict[str, float]] = {}
    for key, summary in snap["histograms"].items():
        name, labels = _parse_key(key)
        if name == "llm.latency_ms" and "model" in labels and summary.get("count"):
            entry = stats.setdefault(labels["model"], {"calls": 0.0, "errors": 0.0})
            entry["p50"] = float(summary["p50"])
    for key, value in snap["counters"].items():
        name, labels = _parse_key(key)
        if name == "llm.calls" and "model" in labels:
            entry = stats.setdefault(labels["model"], {"calls": 0.0, "errors": 0.0})
            entry["calls"] += float(value)
            if labels.get("outcome") != "ok":
                entry["errors"] += float(value)
    return stats


def order_models(chain: Sequence[str], stats: dict[str, dict[str, float]]) -> list[str]:
    """Healthy measured models by p50 latency, then unmeasured ones as configured, then
    unhealthy ones (more than half of at least 3 calls failed)."""

    def key(item: tuple[int, str]) -> tuple[int, float, int]:
        index, model = item
        entry = stats.get(model, {})
        calls = entry.get("calls", 0.0)
        if calls >= 3 and entry.get("errors", 0.0) / calls > 0.5:
            return (2, 0.0, index)
        if "p50" in entry and calls > entry.get("errors", 0.0):
            return (0, entry["p50"], index)
        return (1, 0.0, index)

    return [m for _, m in sorted(enumerate(chain), key=key)]


def llm_warm_up(settings: Settings) -> bool:
    """Import litellm in a daemon thread when the ``[llm]`` chain needs it (magray-llm's
    ``warm_up`` decides: models served by the direct transport do not); True if started."""
    from magray.llm import warm_up

    return warm_up(background=True, settings=settings.llm) is not None


# ---------------------------------------------------------------- tools


def tool_registry() -> ToolRegistry:
    """Built-in tools plus installed plugins."""
    from magray.tools import ToolRegistry

    return ToolRegistry.from_entry_points()


def tool_context(
    settings: Settings,
    *,
    confirm: Callable[[ConfirmRequest], bool] | None = None,
    assume_yes: bool | None = None,
    cwd: Path | None = None,
) -> ToolContext:
    """The sandbox context every tool call of this session runs in."""
    from magray.tools import Policy, ToolContext, deny_all

    policy = Policy.from_settings(settings.tools, cwd=cwd, assume_yes=assume_yes)
    return ToolContext(policy=policy, confirm=confirm or deny_all, cwd=cwd)


def tool_schemas(registry: ToolRegistry, ctx: ToolContext) -> list[dict[str, Any]]:
    """OpenAI-style function schemas of the tools the policy enables."""
    return registry.schemas(ctx)


def tool_parameters(schemas: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Tool name → its JSON-schema parameters, from :func:`tool_schemas`."""
    out = {}
    for schema in schemas:
        function = schema.get("function", schema)
        out[str(function["name"])] = dict(function.get("parameters") or {})
    return out


def call_tool(
    registry: ToolRegistry, name: str, args: dict[str, Any] | str, ctx: ToolContext
) -> ToolOutcome:
    """Run one call through the sandbox policy; failures come back with ``ok=False``."""
    result = registry.call(name, args, ctx)
    if isinstance(args, str):
        try:
            parsed = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            parsed = {"_raw": args}
        args = parsed if isinstance(parsed, dict) else {"_raw": args}
    return ToolOutcome(
        tool=name,
        args=dict(args),
        ok=result.ok,
        content=result.content,
        error=result.error,
        duration_s=result.duration_s,
        truncated=result.truncated,
        data=dict(result.data or {}),
    )


def raise_for_outcome(registry: ToolRegistry, outcome: ToolOutcome) -> None:
    """Raise the tool's own error class for a failed outcome (for the todo executor)."""
    from magray.tools import ToolResult

    if not outcome.ok:
        ToolResult(ok=False, content=outcome.content, error=outcome.error).raise_for_error()


# ---------------------------------------------------------------- todo


def open_todo(settings: Settings) -> TodoStore:
    """The user's task list (``todo.path`` or ``<data>/todo.db``)."""
    from magray.todo import TodoStore

    return TodoStore(settings.todo.path, settings=settings.todo)


def open_plans(settings: Settings) -> TodoStore:
    """The task store plans run in (``router.plan_db`` or ``<data>/smart.db``).

    A database of its own: magray-todo allows one executor per database, so a
    plan must not wait for (or block) a ``magray todo run`` on the task list.
    """
    from magray.common import paths
    from magray.todo import TodoStore

    path = settings.router.plan_db or paths.data_dir() / "smart.db"
    return TodoStore(Path(path).expanduser(), settings=settings.todo)


def add_plan_tasks(
    store: TodoStore,
    plan: Plan,
    *,
    tag: str,
    max_attempts: int,
    timeout: float,
    read_only: Callable[[str], bool],
) -> dict[str, int]:
    """Write a plan's steps as tasks with dependencies; returns step id -> task id."""
    from magray.todo import Action, TaskSpec

    index = {step.id: i for i, step in enumerate(plan.steps)}
    specs = [
        TaskSpec(
            title=step.title[:500] or step.tool,
            description=f"{plan.goal}\n\nstep {step.id}: {step.tool} {json.dumps(step.args)}",
            tags=("smart", tag),
            max_attempts=max_attempts,
            timeout=timeout,
            action=Action(step.tool, dict(step.args)),
            idempotent=read_only(step.tool),
        )
        for step in plan.steps
    ]
    edges = [(index[s.id], index[d]) for s in plan.steps for d in s.depends_on]
    tasks = store.add_many(specs, edges=edges)
    return {step.id: task.id for step, task in zip(plan.steps, tasks, strict=True)}


def run_plan_tasks(
    store: TodoStore,
    task_ids: Sequence[int],
    runner: Callable[[Task], Any],
    *,
    max_workers: int,
    on_event: Callable[[ProgressEvent], None] | None = None,
    backoff_base: float | None = None,
    sleep: Callable[[float], None] | None = None,
) -> RunReport:
    """Run the plan's tasks (parallel where independent) with the todo executor."""
    from magray.todo import Backoff, Executor

    backoff = None
    if backoff_base is not None:
        backoff = Backoff(base=backoff_base, maximum=max(backoff_base, 1.0) * 8)
    executor = Executor(store, runner, max_workers=max_workers, backoff=backoff, sleep=sleep)
    if on_event is not None:
        executor.subscribe(on_event)
    return executor.run(tasks=list(task_ids))


def task_status(store: TodoStore, task_id: int) -> Task:
    return store.get(task_id)


def open_tasks(store: TodoStore, *, limit: int = 50) -> list[Task]:
    """Tasks still to do (pending, ready, running, failed, blocked)."""
    return store.tasks(status=["pending", "ready", "running", "failed", "blocked"], limit=limit)


def task_counts(store: TodoStore) -> dict[str, int]:
    return {str(k): v for k, v in store.counts().items()}


def tool_is_read_only(registry: ToolRegistry, name: str) -> bool:
    from magray.tools import Risk

    try:
        return registry.get(name).risk is Risk.READ
    except Exception:
        return False
