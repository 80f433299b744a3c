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


BUSY = FetchLimits(2, 16_384)


def tiered(batch_from: float = 200, busy_from: float = 800) -> FetchPacing:
    return FetchPacing(prompt=PROMPT, batched=BATCHED, batch_from_rate=batch_from, busy=BUSY,
                       busy_from_rate=busy_from)


def test_a_busy_worker_waits_less_for_a_batch_and_goes_back_below_its_share_of_the_rate() -> None:
    p = tiered()
    p.after_fetch(0, now=100.0)
    assert p.after_fetch(799, now=101.0) == BATCHED
    assert p.after_fetch(800, now=102.0) == BUSY
    assert p.after_fetch(650, now=103.0) == BUSY  # above 80 % of 800: still busy
    assert p.after_fetch(600, now=104.0) == BATCHED
    assert p.after_fetch(100, now=105.0) == PROMPT  # straight down, below 80 % of 200


def test_from_idle_a_high_rate_goes_straight_to_the_busy_tier() -> None:
    p = tiered()
    p.after_fetch(0, now=100.0)
    assert p.after_fetch(5000, now=101.0) == BUSY


def test_a_busy_threshold_below_the_batch_threshold_starts_with_the_batches() -> None:
    p = tiered(batch_from=500, busy_from=100)
    p.after_fetch(0, now=100.0)
    assert p.after_fetch(300, now=101.0) == PROMPT
    assert p.after_fetch(500, now=102.0) == BUSY


@given(st.lists(st.tuples(st.integers(0, 2000), st.floats(0.01, 3)), max_size=40))
def test_the_tier_is_the_highest_whose_rate_the_last_full_window_reached(
        fetches: list[tuple[int, float]]) -> None:
    p, now = tiered(), 0.0
    p.after_fetch(0, now)
    start, count, level = now, 0, 0
    for records, gap in fetches:
        now += gap
        count += records
        if now - start >= 1.0:
            rate = count / (now - start)
            busy = rate >= (640 if level == 2 else 800)
            batched = rate >= (160 if level >= 1 else 200)
            level = 2 if busy else 1 if batched else 0
            start, count = now, 0
        assert p.after_fetch(records, now) == (PROMPT, BATCHED, BUSY)[level]
