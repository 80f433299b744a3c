"""Fetch pacing: batched fetches while input records flow, prompt ones while idle."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.runtime.fetch_pacing import FetchLimits, FetchPacing

BUSY, IDLE = FetchLimits(5, 16_384), FetchLimits(20, 1)


def pacing() -> FetchPacing:
    return FetchPacing(busy=BUSY, idle=IDLE, idle_after_s=1.0)


def test_a_worker_that_has_seen_no_record_fetches_promptly() -> None:
    assert pacing().after_fetch(0, now=100.0) == IDLE


def test_records_make_the_next_fetches_batched_until_none_came_for_the_idle_time() -> None:
    p = pacing()
    assert p.after_fetch(1, now=100.0) == BUSY
    assert p.after_fetch(0, now=100.9) == BUSY
    assert p.after_fetch(0, now=101.0) == IDLE
    assert p.after_fetch(2, now=101.1) == BUSY


@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 5)), max_size=30))
def test_the_answer_is_busy_exactly_when_records_came_within_the_idle_time(
        fetches: list[tuple[int, float]]) -> None:
    p, now, last = pacing(), 0.0, None
    for records, gap in fetches:
        now += gap
        if records:
            last = now
        expected = BUSY if last is not None and now - last < 1.0 else IDLE
        assert p.after_fetch(records, now) == expected
