"""Health registry and metrics registry."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from magray.common.health import HealthRegistry, HealthResult, Status
from magray.common.metrics import Counter, Histogram, MetricsRegistry


def test_report_is_worst_status() -> None:
    reg = HealthRegistry()
    reg.register("a", lambda: HealthResult.ok("fine"))
    reg.register("b", lambda: HealthResult.degraded("slow disk", free_mb=10))
    report = reg.run()
    assert report.status is Status.DEGRADED
    assert [c.name for c in report.checks] == ["a", "b"]
    assert report.to_dict()["checks"][1]["details"] == {"free_mb": 10}


def test_raising_and_bad_checks_fail() -> None:
    reg = HealthRegistry()

    def broken() -> HealthResult:
        raise RuntimeError("no db")

    reg.register("broken", broken)
    reg.register("wrong", lambda: "ok")  # type: ignore[arg-type, return-value]
    report = reg.run()
    assert report.status is Status.FAILED
    assert report.checks[0].message == "RuntimeError: no db"
    assert "returned str" in report.checks[1].message


def test_slow_check_times_out() -> None:
    release = threading.Event()
    reg = HealthRegistry()
    reg.register("hang", lambda: (release.wait(5), HealthResult.ok())[1], timeout=0.05)
    start = time.perf_counter()
    report = reg.run()
    release.set()
    assert report.checks[0].status is Status.FAILED
    assert "timed out" in report.checks[0].message
    assert time.perf_counter() - start < 2


def test_entry_points_register_common_checks() -> None:
    reg = HealthRegistry()
    assert reg.load_entry_points(None) == []
    assert {"common.python", "common.config", "common.data_dir"} <= set(reg.names())
    assert reg.run(["common.python", "common.data_dir"]).status is Status.OK


def test_empty_report_is_ok() -> None:
    assert HealthRegistry().run().status is Status.OK


def test_histogram_percentiles_exact_for_small_samples() -> None:
    hist = Histogram()
    for v in range(1, 101):
        hist.observe(v)
    summary = hist.summary()
    assert summary["count"] == 100
    assert summary["p50"] == pytest.approx(50.5)
    assert summary["p95"] == pytest.approx(95.05)
    assert summary["p99"] == pytest.approx(99.01)
    assert summary["min"] == 1
    assert summary["max"] == 100


def test_histogram_reservoir_stays_bounded_and_representative() -> None:
    hist = Histogram(reservoir=512, seed=7)
    for v in range(100_000):
        hist.observe(v)
    assert hist.count == 100_000
    p50 = hist.percentile(50)
    assert p50 is not None
    assert 40_000 < p50 < 60_000  # uniform reservoir, not the first 512 values


def test_counter_rejects_negative() -> None:
    with pytest.raises(ValueError, match="only goes up"):
        Counter().inc(-1)


def test_registry_labels_and_snapshot_threadsafe() -> None:
    reg = MetricsRegistry()

    def work() -> None:
        for _ in range(1000):
            reg.counter("calls", model="m1").inc()
            reg.histogram("latency_ms", model="m1").observe(1.0)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reg.gauge("queue").set(3)
    snap = reg.snapshot()
    assert snap["counters"] == {"calls{model=m1}": 4000}
    assert snap["gauges"] == {"queue": 3}
    assert snap["histograms"]["latency_ms{model=m1}"]["count"] == 4000
    with reg.histogram("timed").time():
        pass
    assert reg.histogram("timed").count == 1
    reg.reset()
    assert reg.snapshot()["counters"] == {}


def test_histogram_merge_is_exact_for_counts_and_extremes() -> None:
    a, b = Histogram(seed=1), Histogram(seed=2)
    for v in range(100):
        a.observe(v)
    for v in range(100, 300):
        b.observe(v)
    a.merge_state(b.state())
    summary = a.summary()
    assert summary["count"] == 300
    assert summary["min"] == 0
    assert summary["max"] == 299
    assert summary["sum"] == sum(range(300))
    assert summary["p50"] == pytest.approx(149.5)


def test_merged_reservoir_is_weighted_by_counts() -> None:
    a, b = Histogram(reservoir=1000, seed=3), Histogram(reservoir=1000, seed=4)
    for _ in range(9000):
        a.observe(1.0)
    for _ in range(1000):
        b.observe(100.0)
    a.merge_state(b.state())
    assert a.percentile(50) == 1.0
    assert a.percentile(95) == 100.0  # 10 % of observations, so above p90


def test_persist_accumulates_across_runs(tmp_path: Path) -> None:
    from magray.common.metrics import load_state, persist

    path = tmp_path / "metrics.json"
    for run in range(3):
        reg = MetricsRegistry()
        reg.counter("llm.calls", model="m").inc(2)
        reg.gauge("queue").set(run)
        reg.histogram("lat").observe(float(run))
        persist(reg, path)
    total = MetricsRegistry()
    total.merge_state(load_state(path))
    snap = total.snapshot()
    assert snap["counters"] == {"llm.calls{model=m}": 6}
    assert snap["gauges"] == {"queue": 2}
    assert snap["histograms"]["lat"]["count"] == 3
    path.write_text("{not json")
    assert load_state(path) == {}
