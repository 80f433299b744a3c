"""Each part of the profile joins as a lattice (commutative, associative, idempotent where the
part is a set or a register), and applying an event commutes with merging."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.profile import (
    SESSIONS_KEPT,
    Outcome,
    Profile,
    Register,
    Session,
    SessionLog,
    event_identity,
    merge_profiles,
)
from orchestrator.core.profile.state import GUARD, VISITORS, NewestTimes

from .factories import T0
from .test_profile_merge import Scored, applied, fresh, scored_events

T = TypeVar("T")
# Few instants, so that equal timestamps are the common case.
TIMES = st.sampled_from([T0, T0 + 1, T0 + 2, T0 + 60_000])
TIES = st.sampled_from([0, 7, 2**31])


def lattice(join: Callable[[T, T], T], a: T, b: T, c: T, *, idempotent: bool = True) -> None:
    assert join(a, b) == join(b, a)
    assert join(join(a, b), c) == join(a, join(b, c))
    if idempotent:
        assert join(a, a) == a


def in_place(join: Callable[[Any, Any], None]) -> Callable[[Any, Any], Any]:
    """A pure join from one that changes its first argument."""
    def pure(a: Any, b: Any) -> Any:
        mine = copy.deepcopy(a)
        join(mine, copy.deepcopy(b))
        return mine

    return pure


# One value per stamp: two writers with the same (ts, tie) are the same event.
registers = st.one_of(st.none(), st.builds(lambda ts, tie: Register(ts, tie, (ts + tie) % 3 == 0),
                                           TIMES, TIES))


@given(registers, registers, registers)
def test_a_register_joins_to_the_newest_writer(a: Register[bool] | None, b: Register[bool] | None,
                                                c: Register[bool] | None) -> None:
    lattice(Register.join, a, b, c)
    assert Register.join(a, b) in (a, b)


@given(registers, TIMES, TIES)
def test_adding_to_a_register_is_joining_a_register_of_one_write(current: Register[bool] | None,
                                                                 ts: int, tie: int) -> None:
    value = (ts + tie) % 3 == 0
    assert Register.add(current, ts, tie, value) == Register.join(current, Register(ts, tie, value))


outcomes = st.builds(Outcome, st.sampled_from(["shown", "dismissed", "clicked", "converted"]), TIMES)


@given(outcomes, outcomes, outcomes)
def test_feedback_outcomes_join_to_the_furthest_stage_then_the_latest(a: Outcome, b: Outcome,
                                                                     c: Outcome) -> None:
    lattice(Outcome.join, a, b, c)
    assert Outcome.join(None, a) == a


visitor_sets = st.dictionaries(st.sampled_from([f"v{i}" for i in range(12)]), TIMES, max_size=12) \
    .map(lambda stamps: _bounded(stamps))


def _bounded(stamps: dict[str, int]) -> dict[str, int]:
    kept: dict[str, int] = {}
    VISITORS.join(kept, stamps)
    return kept


@given(visitor_sets, visitor_sets, visitor_sets)
def test_visitors_join_to_the_newest_of_the_union(a: dict[str, int], b: dict[str, int],
                                                  c: dict[str, int]) -> None:
    lattice(in_place(VISITORS.join), a, b, c)


guards = st.lists(st.builds(lambda ts, tie: [ts, tie], st.integers(T0, T0 + 20), TIES), max_size=50) \
    .map(lambda seen: GUARD.join(seen, []))


@given(guards, guards, guards)
def test_replay_guards_join_to_the_newest_of_the_union(a: list[list[int]], b: list[list[int]],
                                                       c: list[list[int]]) -> None:
    lattice(GUARD.join, a, b, c)


TIMES_KEPT = NewestTimes(4)
time_lists = st.lists(TIMES, max_size=8).map(lambda ts: sorted(ts)[-4:])


@given(time_lists, time_lists, time_lists)
def test_event_times_where_guards_cannot_tell_join_as_a_multiset_union(a: list[int], b: list[int],
                                                                       c: list[int]) -> None:
    def join(x: list[int], y: list[int]) -> list[int]:
        return TIMES_KEPT.join(x, y, lambda ts: None)

    lattice(join, a, b, c)


def sessions(keys: list[str]) -> st.SearchStrategy[SessionLog]:
    one = st.builds(lambda s, e, views: Session(min(s, e), max(s, e), views), TIMES, TIMES,
                    st.dictionaries(st.sampled_from(["billing", "moving"]), st.integers(1, 3), max_size=2))
    return st.builds(SessionLog, st.dictionaries(st.sampled_from(keys), one, max_size=len(keys)),
                     st.integers(0, 3))


@given(sessions([f"s{i}" for i in range(SESSIONS_KEPT)]),
       sessions([f"s{i}" for i in range(SESSIONS_KEPT)]),
       sessions([f"s{i}" for i in range(SESSIONS_KEPT)]))
def test_session_logs_join_commutatively_and_associatively_adding_the_views_of_a_shared_session(
        a: SessionLog, b: SessionLog, c: SessionLog) -> None:
    # Not idempotent on purpose: the halves of one session split by a login add up, and a
    # carried profile is merged once per visitor (``merged_from``).
    lattice(in_place(SessionLog.join), a, b, c, idempotent=False)


@given(sessions(["a1", "a2", "a3", "a4"]), sessions(["b1", "b2", "b3", "b4"]),
       sessions(["c1", "c2", "c3", "c4"]))
def test_session_logs_beyond_the_kept_ones_evict_the_oldest_whatever_the_grouping(
        a: SessionLog, b: SessionLog, c: SessionLog) -> None:
    join = in_place(SessionLog.join)
    lattice(join, a, b, c, idempotent=False)
    whole = join(join(a, b), c)
    assert len(whole) == min(SESSIONS_KEPT, len(a) + len(b) + len(c))
    assert whole.count == a.count + b.count + c.count


#: Parts a merge does not join exactly when an event is held on both sides (carried profiles
#: hold disjoint events: an anonymous history ends where the customer's begins):
#: - added up: a session split by a login, page totals and their time;
#: - entries alike at one millisecond, counted with what the replay guards tell per millisecond
#:   (`state.join_counts`): an event of another kind held on both sides at that ms makes two
#:   distinct entries count as one.
NOT_EXACT_ON_SHARED_EVENTS = ("session_log", "page_totals", "session_dwell", "event_times",
                              "recent_pages", "recent_contacts")


def exact_parts(profile: Profile) -> dict[str, Any]:
    data = profile.to_dict()
    for name in NOT_EXACT_ON_SHARED_EVENTS:
        del data[name]
    return data


@settings(max_examples=200, deadline=None)
@given(events=scored_events(), extra=scored_events(max_size=3), data=st.data())
def test_applying_an_event_then_merging_equals_merging_then_applying(
        events: list[Scored], extra: list[Scored], data: st.DataObject) -> None:
    """Scores with None and equal timestamps included; a new event, or one a side already holds."""
    sides = data.draw(st.lists(st.sampled_from(["a", "b"]), min_size=len(events),
                               max_size=len(events)), label="sides")
    a, b = (applied([e for e, s in zip(events, sides, strict=True) if name in s], fresh())
            for name in "ab")
    held = {event_identity(e) for e, _ in events}
    for event in extra:
        if event_identity(event[0]) in held:
            continue
        apply_first = merge_profiles(applied([event], copy.deepcopy(a)), copy.deepcopy(b))
        merge_first = applied([event], merge_profiles(copy.deepcopy(a), copy.deepcopy(b)))
        assert apply_first.to_dict() == merge_first.to_dict()
    if events:
        event = data.draw(st.sampled_from(events), label="an event already held")
        apply_first = merge_profiles(applied([event], copy.deepcopy(a)), copy.deepcopy(b))
        merge_first = applied([event], merge_profiles(copy.deepcopy(a), copy.deepcopy(b)))
        assert exact_parts(apply_first) == exact_parts(merge_first)
