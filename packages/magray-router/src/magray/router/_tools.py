"""Memory and todo as tools, so rules, the LLM and MCP clients reach them the same way.

They are registered into the router's tool registry (origin ``magray-router``)
and so run through the same sandbox policy as every other tool: rules can deny
or ask for them like for ``file_write``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from magray.tools import Risk, Tool, ToolContext, ToolResult

if TYPE_CHECKING:
    from magray.memory import MemoryStore
    from magray.todo import TodoStore
    from magray.tools import ToolRegistry

__all__ = ["register_router_tools"]

ORIGIN = "magray-router"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemorySearchArgs(_Args):
    query: str = Field(min_length=1, description="What to look for, in plain words.")
    k: int = Field(default=5, ge=1, le=50, description="How many passages.")
    layer: Literal["interact", "insights", "assets"] | None = Field(
        default=None, description="Only this memory layer (default: all)."
    )


class MemorySearch(Tool[MemorySearchArgs]):
    name = "memory_search"
    description = (
        "Search magray's memory (earlier conversations, notes and facts the user asked to "
        "remember) by meaning. Returns the most relevant passages with their ids and scores."
    )
    args_model = MemorySearchArgs
    risk = Risk.READ

    def __init__(self, store: Callable[[], MemoryStore | None]) -> None:
        self._store = store

    def run(self, args: MemorySearchArgs, ctx: ToolContext) -> ToolResult:
        store = _need(self._store(), "memory")
        hits = store.search(args.query, k=args.k, layers=args.layer)
        rows = [
            {"id": h.id, "layer": str(h.layer), "score": round(h.score, 4), "text": h.text}
            for h in hits
        ]
        lines = [f"[mem:{r['id']}] ({r['layer']}, {r['score']:.2f}) {r['text']}" for r in rows]
        return ToolResult(content="\n".join(lines) or "no matching memory", data={"hits": rows})


class MemoryAddArgs(_Args):
    text: str = Field(min_length=1, description="The fact or note to remember.")
    layer: Literal["interact", "insights", "assets"] = Field(
        default="insights",
        description="insights (kept 90 days, default) or assets (kept for good).",
    )


class MemoryAdd(Tool[MemoryAddArgs]):
    name = "memory_add"
    description = "Remember a fact or note in magray's memory so later questions can use it."
    args_model = MemoryAddArgs
    risk = Risk.WRITE

    def __init__(self, store: Callable[[], MemoryStore | None]) -> None:
        self._store = store

    def run(self, args: MemoryAddArgs, ctx: ToolContext) -> ToolResult:
        store = _need(self._store(), "memory")
        (record_id,) = store.add([args.text], layer=args.layer, metadata={"source": "tool"})
        return ToolResult(
            content=f"remembered as [mem:{record_id}] in {args.layer}",
            data={"id": record_id, "layer": args.layer},
        )


class TodoListArgs(_Args):
    status: Literal["open", "all", "done", "failed"] = Field(
        default="open", description="open (default: not yet done), all, done or failed."
    )
    limit: int = Field(default=50, ge=1, le=500, description="At most this many tasks.")


_OPEN = ["pending", "ready", "running", "failed", "blocked"]


class TodoList(Tool[TodoListArgs]):
    name = "todo_list"
    description = "List the user's tasks (todo items) with their ids and status."
    args_model = TodoListArgs
    risk = Risk.READ

    def __init__(self, store: Callable[[], TodoStore]) -> None:
        self._store = store

    def run(self, args: TodoListArgs, ctx: ToolContext) -> ToolResult:
        store = self._store()
        wanted: Any = {"open": _OPEN, "all": None, "done": "done", "failed": "failed"}[args.status]
        tasks = store.tasks(status=wanted, limit=args.limit)
        lines = [f"#{t.id} [{t.status}] {t.title}" for t in tasks]
        return ToolResult(
            content="\n".join(lines) or f"no {args.status} tasks",
            data={
                "tasks": [{"id": t.id, "title": t.title, "status": str(t.status)} for t in tasks]
            },
        )


class TodoAddArgs(_Args):
    title: str = Field(min_length=1, max_length=500, description="What to do, in one line.")
    depends_on: list[int] = Field(
        default_factory=list, description="Ids of tasks that must be done first."
    )


class TodoAdd(Tool[TodoAddArgs]):
    name = "todo_add"
    description = "Add a task (a todo item or reminder) to the user's task list."
    args_model = TodoAddArgs
    risk = Risk.WRITE

    def __init__(self, store: Callable[[], TodoStore]) -> None:
        self._store = store

    def run(self, args: TodoAddArgs, ctx: ToolContext) -> ToolResult:
        task = self._store().add(args.title, depends_on=args.depends_on)
        return ToolResult(
            content=f"added task #{task.id}: {task.title} [{task.status}]",
            data={"id": task.id, "status": str(task.status)},
        )


class TodoAddManyArgs(_Args):
    titles: list[str] = Field(
        max_length=500,
        description="One task per title (e.g. '{{s1.items}}': one per match of step s1); "
        "blank titles and titles already open on the list are skipped.",
    )


class TodoAddMany(Tool[TodoAddManyArgs]):
    name = "todo_add_many"
    description = (
        "Add several tasks to the user's task list at once, one per title: turn a list of "
        "findings (grep matches, files, commits) into a task list."
    )
    args_model = TodoAddManyArgs
    risk = Risk.WRITE

    def __init__(self, store: Callable[[], TodoStore]) -> None:
        self._store = store

    def run(self, args: TodoAddManyArgs, ctx: ToolContext) -> ToolResult:
        store = self._store()
        open_titles = {t.title for t in store.tasks(status=_OPEN, limit=10_000)}
        added: list[dict[str, Any]] = []
        skipped: list[str] = []
        for raw in args.titles:
            title = " ".join(raw.split())[:500]
            if not title:
                continue
            if title in open_titles:
                skipped.append(title)
                continue
            open_titles.add(title)
            ctx.check()
            task = store.add(title)
            added.append({"id": task.id, "title": task.title, "status": str(task.status)})
        lines = [f"added task #{t['id']}: {t['title']}" for t in added]
        if skipped:
            lines.append(f"({len(skipped)} already on the list, not added again)")
        if not added and not skipped:
            lines.append("no tasks to add: the list of titles was empty")
        return ToolResult(content="\n".join(lines), data={"tasks": added, "skipped": skipped})


class TodoDoneArgs(_Args):
    task: str = Field(
        min_length=1,
        max_length=500,
        description="The task: its id ('3' or '#3') or words of its title that match exactly "
        "one open task.",
    )


class TodoDone(Tool[TodoDoneArgs]):
    name = "todo_done"
    description = (
        "Mark one of the user's open tasks done (by id, or by words of its title); tasks that "
        "waited on it become ready."
    )
    args_model = TodoDoneArgs
    risk = Risk.WRITE

    def __init__(self, store: Callable[[], TodoStore]) -> None:
        self._store = store

    def run(self, args: TodoDoneArgs, ctx: ToolContext) -> ToolResult:
        from magray.common.errors import InvalidInputError, NotFoundError

        store = self._store()
        wanted = args.task.strip().lstrip("#").strip()
        if wanted.isdigit():
            task = store.get(int(wanted))
        else:
            words = wanted.lower().split()
            found = [
                t
                for t in store.tasks(status=_OPEN, limit=10_000)
                if all(w in t.title.lower() for w in words)
            ]
            if not found:
                raise NotFoundError(
                    f"no open task matches {args.task!r}",
                    hint="`magray todo list` shows the open tasks and their ids",
                )
            if len(found) > 1:
                shown = ", ".join(f"#{t.id} {t.title}" for t in found[:5])
                raise InvalidInputError(
                    f"{len(found)} open tasks match {args.task!r}: {shown}",
                    hint="name the task by its id, e.g. 'mark task 3 done'",
                )
            task = found[0]
        changes = store.mark_done(task.id)
        freed = [c.task_id for c in changes if c.task_id != task.id and str(c.new) == "ready"]
        line = f"done: task #{task.id} {task.title}"
        if freed:
            line += f" (now ready: {', '.join(f'#{i}' for i in freed)})"
        return ToolResult(content=line, data={"id": task.id, "now_ready": freed})


def _need(store: MemoryStore | None, what: str) -> MemoryStore:
    if store is None:
        from magray.common.errors import ConfigError

        raise ConfigError(
            f"{what} is off for this session",
            hint="run without --no-memory, or set router.use_memory = true",
        )
    return store


def register_router_tools(
    registry: ToolRegistry,
    *,
    memory: Callable[[], MemoryStore | None],
    todo: Callable[[], TodoStore],
) -> None:
    """Add memory_search, memory_add, todo_list, todo_add, todo_add_many and todo_done unless
    a plugin took the names."""
    tools = (MemorySearch(memory), MemoryAdd(memory), TodoList(todo), TodoAdd(todo))
    for tool in (*tools, TodoAddMany(todo), TodoDone(todo)):
        if tool.name not in registry:
            registry.register(tool, origin=ORIGIN)
