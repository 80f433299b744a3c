"""Fetch pacing: prompt fetches at light load, batched ones under heavy load."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.runtime.fetch_pacing import FetchLimits, FetchPacing

PROMPT, BATCHED = FetchLimits(20, 1), FetchLimits(5, 16_384)


def pacing(rate: float = 500) -> FetchPacing:
    return FetchPacing(prompt=PROMPT, batched=BATCHED, batch_from_rate=rate)


def test_a_worker_that_has_seen_no_record_fetches_promptly() -> None:
    assert pacing().after_fetch(0, now=100.0) == PROMPT


def test_a_second_at_the_rate_makes_fetches_batched_until_the_rate_falls_below_its_share() -> None:
    p = pacing()
    p.after_fetch(0, now=100.0)
    assert p.after_fetch(499, now=101.0) == PROMPT  # 499/s: not yet
    assert p.after_fetch(500, now=102.0) == BATCHED
    assert p.after_fetch(420, now=103.0) == BATCHED  # above 80 % of the rate: still batched
    assert p.after_fetch(390, now=104.0) == PROMPT


def test_the_mode_changes_only_when_a_window_of_a_second_ends() -> None:
    p = pacing()
    p.after_fetch(0, now=100.0)
    assert p.after_fetch(5000, now=100.5) == PROMPT
    assert p.after_fetch(0, now=101.0) == BATCHED


def test_a_rate_of_zero_batches_always() -> None:
    p = pacing(rate=0)
    p.after_fetch(0, now=100.0)
    assert p.after_fetch(0, now=101.0) == BATCHED


@given(st.lists(st.tuples(st.integers(0, 2000), st.floats(0.01, 3)), max_size=40))
def test_batched_exactly_when_the_last_full_window_reached_the_rate(
        fetches: list[tuple[int, float]]) -> None:
    p, now = pacing(), 0.0
    p.after_fetch(0, now)
    start, count, batching = now, 0, False
    for records, gap in fetches:
        now += gap
        count += records
        if now - start >= 1.0:
            batching = count / (now - start) >= (400 if batching else 500)
            start, count = now, 0
        assert p.after_fetch(records, now) == (BATCHED if batching else PROMPT)
