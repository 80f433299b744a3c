"""Figures read from an engine worker's /metrics (Prometheus text), for the benchmarks.

The input-wait histogram (``orchestrator_input_wait_seconds``) says how long records waited
before the worker started on them; a benchmark reads it before and after a run and reports the
run's share of it beside the latency it measured itself.
"""

from __future__ import annotations

import re
import urllib.request
from typing import Any

INPUT_WAIT_BUCKET = re.compile(
    r'^orchestrator_input_wait_seconds_bucket\{(?=[^}]*source="clickstream")[^}]*le="([^"]+)"[^}]*\} (\S+)$',
    re.MULTILINE)


def input_wait_buckets(web_port: int) -> dict[float, float]:
    """The worker's cumulative input-wait histogram of clickstream records: upper bound (s) ->
    records at or under it; empty for a worker without the metric (an older tree)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:  # HTTPError included
        return {}
    return {float(le): float(n) for le, n in INPUT_WAIT_BUCKET.findall(text)}


def bucket_quantile(q: float, cumulative: dict[float, float]) -> float | None:
    """``q`` of a cumulative histogram, interpolated linearly inside its bucket (as Prometheus's
    ``histogram_quantile``); None without observations."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    rank = q * cumulative[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below) if count > below else bound
        lower, below = bound, count
    return lower


def input_wait_summary(before: dict[float, float], after: dict[float, float]) -> dict[str, Any] | None:
    """p50 / p99 (ms) of the records a run added to the input-wait histogram."""
    run = {le: after[le] - before.get(le, 0.0) for le in after}
    p50, p99 = bucket_quantile(0.5, run), bucket_quantile(0.99, run)
    if p50 is None or p99 is None:
        return None
    return {"p50": round(p50 * 1000, 1), "p99": round(p99 * 1000, 1),
            "records": int(run[max(run)])}
