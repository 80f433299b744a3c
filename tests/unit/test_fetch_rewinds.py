"""Specifications of the fetch rewind: a jump in offsets is fetched again, never committed blind.

The property at the end runs a small model of Faust's fetch loop (``Consumer._drain_messages``:
the read offset, the gap test, the hand-over, and the commit computed from acknowledged and gap
offsets) over a partition log with real holes, while the loop drops random runs of fetched
records the way Faust does during a rebalance or recovery. With :class:`FetchRewinds` and the
frozen read offset, no commit ever passes a record that exists and was not handed over.
"""

from __future__ import annotations

from itertools import groupby

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.runtime.faust_consumer import Admission, FetchRewinds, first_skipped

pytestmark = pytest.mark.unit

TP = ("clickstream", 2)


def test_records_of_a_partition_that_never_jumped_are_handed_over() -> None:
    rewinds = FetchRewinds()
    assert [rewinds.admit(TP, offset) for offset in (5, 6, 7)] == [Admission(True)] * 3


def test_after_a_jump_the_jumping_record_and_the_rest_of_its_fetch_wait_for_the_refetch() -> None:
    rewinds = FetchRewinds()
    rewinds.jumped(TP, 3397, 4209)
    assert rewinds.admit(TP, 4209) == Admission(False)  # the record that showed the jump
    assert rewinds.admit(TP, 4210) == Admission(False)  # the old fetch, still in hand
    assert rewinds.admit(TP, 3397) == Admission(True)  # the fetch from the first missing one
    assert not rewinds.rewinding(TP)
    assert rewinds.admit(TP, 3398) == Admission(True)


def test_a_refetch_that_starts_after_the_first_missing_offset_makes_the_part_before_a_gap() -> None:
    rewinds = FetchRewinds()
    rewinds.jumped(TP, 10, 20)  # 10 and 11 were transaction markers; 12..19 were dropped
    rewinds.admit(TP, 20)
    assert rewinds.admit(TP, 12) == Admission(True, (10, 11))


def test_a_jump_during_a_refetch_starts_it_again() -> None:
    rewinds = FetchRewinds()
    rewinds.jumped(TP, 10, 20)
    rewinds.admit(TP, 20)
    rewinds.jumped(TP, 10, 12)  # the refetch dropped 10 and 11 again
    assert rewinds.admit(TP, 12) == Admission(False)
    assert rewinds.admit(TP, 10) == Admission(True)


def test_a_revoked_partition_forgets_its_rewind() -> None:
    rewinds = FetchRewinds()
    rewinds.jumped(TP, 10, 20)
    rewinds.forget([TP])
    assert rewinds.admit(TP, 21) == Admission(True)


def test_the_first_skipped_record_of_a_fetch_is_where_the_partition_is_fetched_from_next() -> None:
    assert first_skipped([5, 6, 7, 8], 6) == 7
    assert first_skipped([5, 6, 7, 8], 8) is None
    assert first_skipped([3, 4, 5], 4) == 5  # 3 and 4 were handed over before (a refetch)
    assert first_skipped([0, 1], None) == 0


def _committable(acked: set[int], committed: int) -> int:
    """Faust's ``_new_offset``: the end of the first run of consecutive acknowledged offsets."""
    ordered = sorted(o for o in acked if o >= committed)
    if not ordered or ordered[0] != committed:
        return committed
    run = next(list(g) for _, g in groupby(enumerate(ordered), lambda a: a[1] - a[0]))
    return run[-1][1] + 1


@settings(max_examples=400, deadline=None)
@given(holes=st.sets(st.integers(101, 199), max_size=30),
       batch=st.integers(1, 40),
       drops=st.lists(st.tuples(st.integers(0, 39), st.integers(1, 60)), max_size=8))
def test_no_commit_passes_a_record_that_exists_and_was_never_handed_over(
        holes: set[int], batch: int, drops: list[tuple[int, int]]) -> None:
    """A model of Faust's fetch loop with this consumer's checks, over a log with real holes
    (offsets the broker does not hold) while Faust drops runs of fetched records."""
    present = [o for o in range(100, 200) if o not in holes]
    rewinds = FetchRewinds()
    position = 100  # the fetcher's next offset, as after a seek to the committed offset 100
    read: int | None = 99  # the last offset handed over, as the consumer sets it at that seek
    delivered: list[int] = []
    gaps: set[int] = set()
    drops = list(drops)
    for _ in range(10_000):
        fetched = [o for o in present if o >= position][:batch]
        if not fetched:
            break
        position = fetched[-1] + 1
        yielded = fetched
        if drops:  # Faust drops a run of the fetched records on their way to the loop
            at, length = drops.pop(0)
            yielded = fetched[:at] + fetched[at + length:]
        rewound = False
        for offset in yielded:
            if read is None or offset >= read:
                if offset - (read or 0) > 1 and read and not rewound:  # Faust's test, _add_gap
                    if any(read + 1 <= o < offset for o in fetched):
                        rewinds.jumped(TP, read + 1, offset)
                        rewound, position = True, read + 1
                    elif not rewinds.rewinding(TP):
                        gaps.update(range(read + 1, offset + 1))  # Faust's interval holds `offset`
                admission = rewinds.admit(TP, offset)
                if admission.deliver:
                    if admission.real_gap is not None:
                        gaps.update(range(admission.real_gap[0], admission.real_gap[1] + 1))
                    delivered.append(offset)
                if not rewinds.rewinding(TP):
                    read = offset
        if not rewound:
            start = first_skipped(fetched, read)
            if start is not None:
                position = start
        commit = _committable(set(delivered) | gaps, 100)
        assert all(o in delivered for o in present if o < commit), "committed past a record"
        assert not (gaps - set(delivered)) & set(present), "a record was taken for a gap"
    assert sorted(set(delivered)) == present, "every record is handed over in the end"
