"""Graph queries and exports over a snapshot of the tasks (networkx).

Edges point the way work flows: ``depends_on -> task``. networkx is
imported when a :class:`TaskGraph` is built, not when ``magray.todo`` is.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from magray.todo._model import Status, Task
from magray.todo.errors import CycleError, TaskNotFoundError, TodoInputError

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["CriticalPath", "TaskGraph", "check_acyclic", "kahn", "local_topo"]

Direction = Literal["down", "up", "both"]

_COLOURS = {
    Status.PENDING: "#eeeeee",
    Status.READY: "#cfe8ff",
    Status.RUNNING: "#fff3b0",
    Status.DONE: "#c8f0c8",
    Status.FAILED: "#ffc8c8",
    Status.CANCELLED: "#dddddd",
    Status.BLOCKED: "#ffe0b0",
    Status.SKIPPED: "#e8e0f0",
}


class CriticalPath:
    """The heaviest dependency chain: ``tasks`` in order and their total ``weight``."""

    def __init__(self, tasks: list[int], weight: float) -> None:
        self.tasks = tasks
        self.weight = weight

    def __repr__(self) -> str:
        return f"CriticalPath(tasks={self.tasks}, weight={self.weight})"

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "weight": self.weight}


class TaskGraph:
    """A DAG of tasks built from a store snapshot (see :meth:`TodoStore.graph`).

    Args:
        tasks: The nodes.
        edges: ``(task_id, depends_on)`` pairs; pairs naming tasks outside
            ``tasks`` are ignored.
    """

    def __init__(self, tasks: Iterable[Task], edges: Iterable[tuple[int, int]]) -> None:
        import networkx as nx

        self.tasks: dict[int, Task] = {t.id: t for t in tasks}
        self.nx: nx.DiGraph = nx.DiGraph()
        self.nx.add_nodes_from(self.tasks)
        self.nx.add_edges_from(
            (dep, task) for task, dep in edges if task in self.tasks and dep in self.tasks
        )

    def __len__(self) -> int:
        return len(self.tasks)

    def _need(self, task_id: int) -> None:
        if task_id not in self.tasks:
            raise TaskNotFoundError(task_id)

    # ------------------------------------------------------------ queries
    def dependencies(self, task_id: int) -> list[int]:
        """Direct dependencies of ``task_id``."""
        self._need(task_id)
        return sorted(self.nx.predecessors(task_id))

    def ancestors(self, task_id: int) -> set[int]:
        """Everything ``task_id`` depends on, directly or not."""
        import networkx as nx

        self._need(task_id)
        return set(nx.ancestors(self.nx, task_id))

    def descendants(self, task_id: int) -> set[int]:
        """Everything that depends on ``task_id``, directly or not."""
        import networkx as nx

        self._need(task_id)
        return set(nx.descendants(self.nx, task_id))

    def ready(self) -> list[Task]:
        """Unfinished tasks whose dependencies (in this graph) are all done.

        Computed from the graph alone, so it also answers for a snapshot that
        was never stored; highest priority first, then oldest.
        """
        out = [
            task
            for task_id, task in self.tasks.items()
            if task.status in (Status.PENDING, Status.READY)
            and all(self.tasks[d].status is Status.DONE for d in self.nx.predecessors(task_id))
        ]
        return sorted(out, key=lambda t: (-t.priority, t.id))

    def topological_order(self) -> list[int]:
        """Every task after its dependencies; ties broken by priority, then id."""
        import networkx as nx

        return list(
            nx.lexicographical_topological_sort(self.nx, key=lambda n: (-self.tasks[n].priority, n))
        )

    def critical_path(
        self,
        *,
        weight: Literal["estimate", "priority"] = "estimate",
        include_done: bool = False,
    ) -> CriticalPath:
        """The chain of dependencies with the largest total weight.

        Args:
            weight: ``"estimate"`` sums estimated seconds (a task without an
                estimate counts 1, so with no estimates this is the longest
                chain); ``"priority"`` sums priorities (negative ones count 0).
            include_done: Count finished tasks too (default: remaining work only).
        """
        if weight not in ("estimate", "priority"):
            raise TodoInputError(f"weight must be 'estimate' or 'priority', not {weight!r}")
        keep = {
            n
            for n, t in self.tasks.items()
            if include_done or t.status not in (Status.DONE, Status.CANCELLED, Status.SKIPPED)
        }

        def cost(n: int) -> float:
            task = self.tasks[n]
            if weight == "priority":
                return float(max(task.priority, 0))
            return 1.0 if task.estimate is None else float(task.estimate)

        # best[n] = (weight, length, parent) of the heaviest chain ending at n;
        # equal weights prefer the longer chain, then the smaller ids.
        best: dict[int, tuple[float, int, int | None]] = {}
        for node in self.topological_order():
            if node not in keep:
                continue
            prev = [(best[p][0], best[p][1], -p) for p in self.nx.predecessors(node) if p in best]
            so_far, length, neg_parent = max(prev, default=(0.0, 0, None))
            parent = None if neg_parent is None else -neg_parent
            best[node] = (so_far + cost(node), length + 1, parent)
        if not best:
            return CriticalPath([], 0.0)
        end = max(best, key=lambda n: (best[n][0], best[n][1], -n))
        total = best[end][0]
        path: list[int] = []
        cursor: int | None = end
        while cursor is not None:
            path.append(cursor)
            cursor = best[cursor][2]
        return CriticalPath(path[::-1], total)

    def subgraph(self, root: int, *, direction: Direction = "down") -> TaskGraph:
        """``root`` with its descendants (``"down"``), ancestors (``"up"``) or both."""
        self._need(root)
        keep = {root}
        if direction in ("down", "both"):
            keep |= self.descendants(root)
        if direction in ("up", "both"):
            keep |= self.ancestors(root)
        if direction not in ("down", "up", "both"):
            raise TodoInputError(f"direction must be down, up or both, not {direction!r}")
        return TaskGraph(
            [self.tasks[n] for n in sorted(keep)],
            [(b, a) for a, b in self.nx.edges if a in keep and b in keep],
        )

    # ------------------------------------------------------------ exports
    def edges(self) -> list[tuple[int, int]]:
        """``(task_id, depends_on)`` pairs, sorted."""
        return sorted((b, a) for a, b in self.nx.edges)

    def to_json(self) -> dict[str, Any]:
        """``{"nodes": [task dicts], "edges": [{"task", "depends_on"}]}``."""
        return {
            "nodes": [self.tasks[n].to_dict() for n in sorted(self.tasks)],
            "edges": [{"task": a, "depends_on": b} for a, b in self.edges()],
        }

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False)

    def to_mermaid(self) -> str:
        """A Mermaid ``flowchart`` (paste into Markdown on GitHub)."""
        lines = ["flowchart TD"]
        for n in sorted(self.tasks):
            task = self.tasks[n]
            label = _mermaid_text(f"#{n} {task.title}") + f"<br/><i>{task.status.value}</i>"
            lines.append(f'    t{n}["{label}"]:::{task.status.value}')
        for a, b in sorted(self.nx.edges):
            lines.append(f"    t{a} --> t{b}")
        for status, colour in _COLOURS.items():
            lines.append(f"    classDef {status.value} fill:{colour},stroke:#555")
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        """A Graphviz ``digraph`` (render with ``dot -Tsvg``)."""
        lines = [
            "digraph todo {",
            "    rankdir=LR;",
            '    node [shape=box, style="rounded,filled", fontname="Helvetica"];',
        ]
        for n in sorted(self.tasks):
            task = self.tasks[n]
            label = _dot_text(f"#{n} {task.title}") + f"\\n[{task.status.value}]"
            lines.append(f'    t{n} [label="{label}", fillcolor="{_COLOURS[task.status]}"];')
        for a, b in sorted(self.nx.edges):
            lines.append(f"    t{a} -> t{b};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def export(self, fmt: Literal["mermaid", "dot", "json"]) -> str:
        """The graph as text in ``fmt``."""
        if fmt == "mermaid":
            return self.to_mermaid()
        if fmt == "dot":
            return self.to_dot()
        if fmt == "json":
            return self.to_json_text() + "\n"
        raise TodoInputError(f"unknown graph format {fmt!r}", hint="use mermaid, dot or json")


def _mermaid_text(value: str) -> str:
    # Mermaid labels in "..." accept HTML entities; escape what would end or break them.
    out = value.replace("&", "&amp;").replace('"', "#quot;")
    return out.replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _dot_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def kahn(nodes: Iterable[int], edges: Iterable[tuple[int, int]]) -> list[int]:
    """``nodes``, each after the nodes it depends on (Kahn's algorithm).

    ``edges`` are ``(node, depends_on)`` pairs; pairs naming a node outside
    ``nodes`` are ignored. Nodes on a cycle are left out of the result.
    """
    indegree = dict.fromkeys(nodes, 0)
    children: dict[int, list[int]] = {}
    for node, dep in edges:
        if node in indegree and dep in indegree:
            indegree[node] += 1
            children.setdefault(dep, []).append(node)
    queue = deque(n for n, d in indegree.items() if d == 0)
    order: list[int] = []
    while queue:
        node = queue.popleft()
        order.append(node)
        for child in children.get(node, ()):
            indegree[child] -= 1
            if indegree[child] == 0:
                queue.append(child)
    return order


def local_topo(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """Batch indexes, dependencies first; raises :class:`CycleError` on a cycle."""
    order = kahn(range(n), set(edges))
    if len(order) < n:
        check_acyclic(set(edges))
    return order


def check_acyclic(edges: set[tuple[int, int]], *, start: int | None = None) -> None:
    """Raise :class:`CycleError` naming a cycle among ``(task, depends_on)`` edges.

    The cycle is listed from ``start`` when it passes through it.
    """
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_edges_from((b, a) for a, b in edges)  # depends_on -> task
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    # find_cycle gives (u, v) edges u -> v meaning "v depends on u"; name it as
    # "a needs b needs ... needs a".
    named = [int(v) for _, v in reversed(cycle)]
    if start in named:
        at = named.index(start)
        named = named[at:] + named[:at]
    raise CycleError([*named, named[0]])
