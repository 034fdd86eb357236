"""The state machine: validated transitions, cascades, retries."""

from __future__ import annotations

import itertools

import pytest

from magray.todo import TRANSITIONS, InvalidTransitionError, Status, TodoStore

S = Status


def st(store: TodoStore, *ids: int) -> list[str]:
    return [store.get(i).status.value for i in ids]


def test_transition_table_is_closed_and_done_is_final() -> None:
    assert set(TRANSITIONS) == set(Status)
    assert TRANSITIONS[S.DONE] == frozenset()
    assert S.RUNNING not in TRANSITIONS[S.DONE]
    for old, news in TRANSITIONS.items():
        assert old not in news


def test_done_cannot_run_again(store: TodoStore) -> None:
    a = store.add("a").id
    store.mark_done(a, result={"n": 1})
    for action in (store.mark_done, store.fail, store.cancel, store.retry):
        with pytest.raises(InvalidTransitionError) as info:
            action(a)
        assert info.value.details["task_id"] == a
        assert info.value.hint
    assert store.get(a).result == {"n": 1}


def test_pending_task_cannot_be_done_and_says_why(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b", depends_on=[a]).id
    with pytest.raises(InvalidTransitionError, match=f"still waits on #{a} \\(ready\\)") as info:
        store.mark_done(b)
    assert f"dep rm {b}" in (info.value.hint or "")
    assert info.value.details["waiting_on"] == [a]


def test_done_promotes_only_fully_satisfied_dependents(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b").id
    c = store.add("c", depends_on=[a, b]).id
    d = store.add("d", depends_on=[a]).id
    changes = store.mark_done(a)
    assert {(ch.task_id, ch.new) for ch in changes} == {(a, S.DONE), (d, S.READY)}
    assert st(store, c, d) == ["pending", "ready"]
    store.mark_done(b)
    assert st(store, c) == ["ready"]


def test_failure_blocks_the_whole_chain(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b", depends_on=[a]).id
    c = store.add("c", depends_on=[b]).id
    other = store.add("other").id
    changes = store.fail(a, "disk full")
    assert {(ch.task_id, ch.new) for ch in changes} == {
        (a, S.FAILED),
        (b, S.BLOCKED),
        (c, S.BLOCKED),
    }
    assert st(store, a, b, c, other) == ["failed", "blocked", "blocked", "ready"]
    assert store.get(c).cause == a
    assert store.get(a).error == "disk full"


def test_skip_policy_skips_dependents(skip_store: TodoStore) -> None:
    a = skip_store.add("a").id
    b = skip_store.add("b", depends_on=[a]).id
    skip_store.fail(a)
    assert st(skip_store, b) == ["skipped"]
    skip_store.retry(a)
    assert st(skip_store, a, b) == ["ready", "pending"]


def test_retry_reopens_exactly_the_chain_it_blocked(store: TodoStore) -> None:
    a = store.add("a").id
    x = store.add("x").id
    b = store.add("b", depends_on=[a]).id
    c = store.add("c", depends_on=[b, x]).id
    y_dep = store.add("y", depends_on=[x]).id
    store.fail(a)
    store.fail(x)  # c is already blocked by a; y gets blocked by x
    assert store.get(c).cause == a
    assert store.get(y_dep).cause == x
    with pytest.raises(InvalidTransitionError, match=f"because of task #{a}") as info:
        store.retry(b)
    assert f"retry {a}" in (info.value.hint or "")
    store.retry(a)
    # b re-opens; c re-settles and is still blocked, now by x.
    assert st(store, a, b, c, y_dep) == ["ready", "pending", "blocked", "blocked"]
    assert store.get(c).cause == x
    store.retry(x)
    assert st(store, x, c, y_dep) == ["ready", "pending", "pending"]
    assert store.get(a).attempts == 0
    assert store.get(a).error is None


def test_marking_a_failed_task_done_unblocks_its_chain(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b", depends_on=[a]).id
    c = store.add("c", depends_on=[b]).id
    store.fail(a)
    store.mark_done(a, result="fixed by hand")
    assert st(store, a, b, c) == ["done", "ready", "pending"]


def test_cancel_cascades_and_retry_restores(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b", depends_on=[a]).id
    c = store.add("c", depends_on=[b]).id
    d = store.add("d").id
    store.mark_done(d)
    e = store.add("e", depends_on=[d, c]).id
    changes = store.cancel(a)
    assert {ch.task_id for ch in changes} == {a, b, c, e}
    assert st(store, a, b, c, d, e) == ["cancelled"] * 3 + ["done", "cancelled"]
    with pytest.raises(InvalidTransitionError):
        store.cancel(a)
    store.retry(a)
    assert st(store, a, b, c, e) == ["ready", "pending", "pending", "pending"]


def test_cancelling_a_blocked_task_keeps_its_own_cause(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b", depends_on=[a]).id
    store.fail(a)
    store.cancel(b)
    store.retry(a)
    assert st(store, a, b) == ["ready", "cancelled"]  # cancelled by hand stays cancelled
    store.retry(b)
    assert st(store, b) == ["pending"]


def test_new_dependency_on_failed_task_blocks(store: TodoStore) -> None:
    a = store.add("a").id
    store.fail(a)
    b = store.add("b", depends_on=[a])
    assert b.status is S.BLOCKED
    assert b.cause == a
    c = store.add("c")
    store.add_dependency(c.id, b.id)
    assert store.get(c.id).status is S.BLOCKED
    assert store.get(c.id).cause == a


def test_removing_the_blocking_edge_unblocks(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b", depends_on=[a]).id
    c = store.add("c", depends_on=[b]).id
    store.fail(a)
    assert store.remove_dependency(b, a) is True
    assert st(store, b, c) == ["ready", "pending"]
    assert store.remove_dependency(b, a) is False


def test_clear_removes_finished_and_resettles(store: TodoStore) -> None:
    a = store.add("a").id
    b = store.add("b").id
    c = store.add("c", depends_on=[a, b]).id
    store.mark_done(a)
    store.cancel(b)
    assert st(store, c) == ["cancelled"]
    assert store.clear() == 3
    assert store.tasks() == []
    x = store.add("x").id
    y = store.add("y", depends_on=[x]).id
    store.fail(x)
    store.delete(x)  # deleting the failed task frees its dependent
    assert st(store, y) == ["ready"]
    assert store.clear(statuses=None) == 1


def test_every_transition_outside_the_table_is_refused(store: TodoStore) -> None:
    """Drive each status through the public methods; refused ones leave no trace."""
    methods = {
        S.DONE: store.mark_done,
        S.FAILED: store.fail,
        S.CANCELLED: store.cancel,
    }
    for start, (target, method) in itertools.product(
        [S.READY, S.FAILED, S.CANCELLED, S.DONE], methods.items()
    ):
        task = store.add(f"{start}->{target}").id
        if start is S.FAILED:
            store.fail(task)
        elif start is S.CANCELLED:
            store.cancel(task)
        elif start is S.DONE:
            store.mark_done(task)
        before = store.get(task)
        if target in TRANSITIONS[start]:
            method(task)
            assert store.get(task).status is target
        else:
            with pytest.raises(InvalidTransitionError):
                method(task)
            assert store.get(task) == before
