"""The default HNSW search breadth grows with the layer (recall@10 >= 0.95 at 1M, measured)."""

from __future__ import annotations

import numpy as np

from magray.common.settings import MemorySettings
from magray.memory._index import HNSW, HNSWParams, LayerIndex, auto_ef_search
from memtestkit import unit_vectors


def test_auto_ef_search_by_layer_size() -> None:
    assert auto_ef_search(0) == 64
    assert auto_ef_search(100_000) == 64
    assert auto_ef_search(1_000_000) == 128
    assert auto_ef_search(10_000_000) == 256
    sizes = [100_000, 200_000, 500_000, 1_000_000, 3_000_000, 10**9]
    values = [auto_ef_search(n) for n in sizes]
    assert values == sorted(values)
    assert values[-1] == 1024  # capped


def test_settings_default_is_auto_and_an_explicit_value_wins() -> None:
    assert MemorySettings().hnsw_ef_search is None
    assert MemorySettings(hnsw_ef_search=200).hnsw_ef_search == 200


def test_search_uses_configured_or_auto_ef() -> None:
    vecs = unit_vectors(300, 8, seed=1, clusters=4)
    labels = np.arange(300, dtype=np.int64)
    auto = LayerIndex.build(8, labels, vecs, kind=HNSW, params=HNSWParams())
    fixed = LayerIndex.build(8, labels, vecs, kind=HNSW, params=HNSWParams(ef_search=97))
    auto.search(vecs[0], 5)
    fixed.search(vecs[0], 5)
    assert sorted(auto._plain_params) == [64]  # one cached parameter object per ef used
    assert sorted(fixed._plain_params) == [97]
    fixed.search(vecs[0], 5, ef_search=150)  # a per-query ef overrides both
    assert sorted(fixed._plain_params) == [97, 150]


def test_restore_knows_a_label_held_twice() -> None:
    """A label re-added after its tombstone sits at two positions; a restored layer must
    know (positions() then looks labels up one by one) and find only the live one."""
    vecs = unit_vectors(3, 8, seed=2)
    layer = LayerIndex(8)
    layer.add(np.array([1, 2], dtype=np.int64), vecs[:2])
    layer.add(np.array([1], dtype=np.int64), vecs[2:])  # tombstones position 0
    labels, alive = layer.state()
    assert labels.tolist() == [1, 2, 1]
    twice = LayerIndex.restore(layer.index, labels, alive, kind="flat", params=HNSWParams())
    assert twice._dupes
    assert twice.positions(np.array([1, 2])).tolist() == [2, 1]
    once = LayerIndex.restore(layer.index, labels[1:], alive[1:], kind="flat", params=HNSWParams())
    assert not once._dupes
