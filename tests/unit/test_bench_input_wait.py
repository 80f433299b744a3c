"""How the benchmarks read a run's input wait from the worker's histogram."""

from __future__ import annotations

import math

from prometheus_client import generate_latest

from benchmarks.worker_metrics import INPUT_WAIT_BUCKET, bucket_quantile, input_wait_summary
from orchestrator.runtime.metrics import EngineMetrics

INF = math.inf


def test_a_quantile_is_interpolated_inside_the_bucket_that_holds_its_rank() -> None:
    cumulative = {0.01: 50.0, 0.02: 90.0, 0.05: 100.0, INF: 100.0}
    assert bucket_quantile(0.5, cumulative) == 0.01  # the 50th record closes the first bucket
    assert math.isclose(bucket_quantile(0.7, cumulative), 0.015)  # halfway into 10..20 ms
    assert math.isclose(bucket_quantile(0.99, cumulative), 0.047)


def test_a_rank_in_the_open_top_bucket_is_given_as_its_lower_bound() -> None:
    assert bucket_quantile(0.99, {0.01: 10.0, INF: 20.0}) == 0.01


def test_an_empty_histogram_has_no_quantile() -> None:
    assert bucket_quantile(0.5, {}) is None
    assert bucket_quantile(0.5, {0.01: 0.0, INF: 0.0}) is None


def test_a_run_counts_only_the_records_it_added() -> None:
    before = {0.01: 1000.0, 0.1: 1000.0, INF: 1000.0}  # an earlier run, all fast
    after = {0.01: 1000.0, 0.1: 1100.0, INF: 1100.0}  # this run: 100 records, all 10..100 ms
    summary = input_wait_summary(before, after)
    assert summary == {"p50": 55.0, "p99": 99.1, "records": 100}


def test_the_clickstream_buckets_are_read_from_the_workers_exposition() -> None:
    metrics = EngineMetrics()
    metrics.input_wait.labels("clickstream").observe(0.004)
    metrics.input_wait.labels("person-events").observe(0.3)
    found = {float(le): float(n) for le, n in
             INPUT_WAIT_BUCKET.findall(generate_latest(metrics.registry).decode())}
    assert found[0.0025] == 0 and found[0.005] == 1 and found[INF] == 1
    assert found[0.5] == 1  # the person-events record is not among them
