"""Cycle rejection and graph queries/exports."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from magray.todo import CycleError, InvalidTransitionError, Status, TaskSpec, TodoStore


def chain(store: TodoStore, n: int) -> list[int]:
    ids = [store.add("t0").id]
    for i in range(1, n):
        ids.append(store.add(f"t{i}", depends_on=[ids[-1]]).id)
    return ids


def test_self_dependency_is_a_cycle(store: TodoStore) -> None:
    a = store.add("a")
    with pytest.raises(CycleError) as info:
        store.add_dependency(a.id, a.id)
    assert info.value.cycle == [a.id, a.id]


def test_long_cycle_is_rejected_and_named(store: TodoStore) -> None:
    a, b, c, d = chain(store, 4)  # d needs c needs b needs a
    with pytest.raises(CycleError) as info:
        store.add_dependency(a, d)  # a would need d
    assert info.value.cycle == [a, d, c, b, a]
    assert f"#{a} -> #{d} -> #{c} -> #{b} -> #{a}" in info.value.message
    assert info.value.code == "todo.cycle"
    assert (a, d) not in store.edges()  # nothing was written
    assert store.get(a).status is Status.READY


def test_batch_of_edges_is_all_or_nothing(store: TodoStore) -> None:
    a, b, c = (store.add(x).id for x in "abc")
    with pytest.raises(CycleError) as info:
        store.add_dependencies([(b, a), (c, b), (a, c)])
    assert sorted(info.value.cycle[:-1]) == [a, b, c]
    assert store.edges() == []
    store.add_dependencies([(b, a), (c, b)])
    assert sorted(store.edges()) == [(b, a), (c, b)]


def test_large_batch_is_checked_with_networkx(store: TodoStore) -> None:
    ids = [t.id for t in store.add_many([TaskSpec(f"t{i}") for i in range(100)])]
    chain_edges = [(ids[i], ids[i - 1]) for i in range(1, 100)]
    with pytest.raises(CycleError) as info:
        store.add_dependencies([*chain_edges, (ids[0], ids[99])])
    assert len(info.value.cycle) == 101
    assert store.edges() == []
    store.add_dependencies(chain_edges)
    assert len(store.edges()) == 99
    assert [t.id for t in store.ready()] == [ids[0]]


def test_cycle_within_a_new_batch(store: TodoStore) -> None:
    with pytest.raises(CycleError):
        store.add_many([TaskSpec("x"), TaskSpec("y")], edges=[(0, 1), (1, 0)])
    assert store.tasks() == []


def test_diamond_is_not_a_cycle(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b", depends_on=[a]).id
    c = store.add("c", depends_on=[a]).id
    d = store.add("d", depends_on=[b]).id
    store.add_dependency(d, c)
    assert store.dependencies(d) == [b, c]


def test_dependency_on_running_or_done_task_is_refused(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b").id
    store.mark_done(a)
    with pytest.raises(InvalidTransitionError, match="cannot get new dependencies"):
        store.add_dependency(a, b)


def test_adding_a_dependency_makes_a_ready_task_pending(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b").id
    assert store.add_dependency(b, a).status is Status.PENDING
    store.mark_done(a)
    assert store.get(b).status is Status.READY


def test_queries(store: TodoStore) -> None:
    a = store.add("a", priority=1).id
    b = store.add("b", depends_on=[a], estimate=10).id
    c = store.add("c", depends_on=[a], priority=5, estimate=1).id
    d = store.add("d", depends_on=[b, c]).id
    e = store.add("e").id
    graph = store.graph()
    assert len(graph) == 5
    assert graph.ancestors(d) == {a, b, c}
    assert graph.descendants(a) == {b, c, d}
    assert graph.dependencies(d) == [b, c]
    order = graph.topological_order()
    assert order.index(a) < order.index(b) < order.index(d)
    assert order.index(c) < order.index(b)  # higher priority first among ready ones
    assert [t.id for t in graph.ready()] == [a, e]
    path = graph.critical_path()
    assert path.tasks == [a, b, d]
    assert path.weight == 12.0
    assert graph.critical_path(weight="priority").tasks == [a, c, d]
    store.mark_done(a)
    assert store.graph().critical_path().tasks == [b, d]
    assert store.graph().critical_path(include_done=True).tasks == [a, b, d]
    assert [t.id for t in store.graph().ready()] == [c, b, e]


def test_subgraph_directions(store: TodoStore) -> None:
    a, b, c = chain(store, 3)
    other = store.add("other").id
    graph = store.graph()
    assert set(graph.subgraph(b).tasks) == {b, c}
    assert set(graph.subgraph(b, direction="up").tasks) == {a, b}
    sub = graph.subgraph(b, direction="both")
    assert set(sub.tasks) == {a, b, c}
    assert other not in sub.tasks
    assert sub.edges() == [(b, a), (c, b)]


def test_exports_escape_labels(store: TodoStore) -> None:
    a = store.add('say "hi" <b> & \\ go').id
    b = store.add("next", depends_on=[a]).id
    graph = store.graph()
    mermaid = graph.export("mermaid")
    assert mermaid.startswith("flowchart TD\n")
    assert f"t{a} --> t{b}" in mermaid
    assert "#quot;hi#quot;" in mermaid
    assert "&lt;b&gt; &amp;" in mermaid
    assert '"hi"' not in mermaid
    dot = graph.export("dot")
    assert dot.startswith("digraph todo {")
    assert dot.rstrip().endswith("}")
    assert f"t{a} -> t{b};" in dot
    assert 'say \\"hi\\" <b> & \\\\ go\\n[ready]' in dot
    data = json.loads(graph.export("json"))
    assert [n["id"] for n in data["nodes"]] == [a, b]
    assert data["edges"] == [{"task": b, "depends_on": a}]


def test_concurrent_writers_cannot_close_a_cycle(tmp_path: Path) -> None:
    """Two connections add opposite edges at once: the write lock lets exactly one win."""
    path = tmp_path / "race.db"
    with TodoStore(path) as setup:
        pairs = [(setup.add("x").id, setup.add("y").id) for _ in range(20)]
    left, right = TodoStore(path), TodoStore(path)
    barrier = threading.Barrier(2, timeout=30)
    outcomes: dict[str, list[bool]] = {"left": [], "right": []}

    def worker(store: TodoStore, name: str, flip: bool) -> None:
        for a, b in pairs:
            barrier.wait()
            try:
                store.add_dependency(*((b, a) if flip else (a, b)))
                outcomes[name].append(True)
            except CycleError:
                outcomes[name].append(False)

    threads = [
        threading.Thread(target=worker, args=(left, "left", False)),
        threading.Thread(target=worker, args=(right, "right", True)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    left.close()
    right.close()
    assert all(a != b for a, b in zip(outcomes["left"], outcomes["right"], strict=True))
    with TodoStore(path) as check:
        assert len(check.edges()) == len(pairs)
        check.graph().topological_order()  # raises if the graph had a cycle
