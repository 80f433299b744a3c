"""Fetch pacing: prompt fetches at light load, batched ones under heavy load."""

from __future__ import annotations

import pytest
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


@pytest.mark.parametrize("tiers", [((500, BATCHED),), ((200, BATCHED), (800, BUSY))],
                         ids=["two tiers", "three tiers"])
@given(fetches=st.lists(st.tuples(st.integers(0, 2000), st.floats(0.01, 3)), max_size=40))
def test_the_tier_is_the_highest_whose_rate_the_last_full_window_reached(
        tiers: tuple[tuple[float, FetchLimits], ...], fetches: list[tuple[int, float]]) -> None:
    p = (pacing(tiers[0][0]) if len(tiers) == 1 else
         tiered(batch_from=tiers[0][0], busy_from=tiers[1][0]))
    now = 0.0
    p.after_fetch(0, now)
    start, count, level = now, 0, 0
    for records, gap in fetches:
        now += gap
        count += records
        if now - start >= 1.0:
            rate = count / (now - start)
            # a tier is kept down to 80 % of the rate that enters it
            level = max((n for n, (threshold, _) in enumerate(tiers, start=1)
                         if rate >= threshold * (0.8 if level >= n else 1.0)), default=0)
            start, count = now, 0
        assert p.after_fetch(records, now) == (tiers[level - 1][1] if level else PROMPT)
