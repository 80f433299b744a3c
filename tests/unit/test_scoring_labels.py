"""Delayed labels: settling by outcome and by horizon, reordering, replays, and the sample of
moments (a share of events, the smallest priorities, bounded, independent of arrival order)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.profile.pending import entries, outcomes_seen_of, pending_of
from orchestrator.core.scoring.features import LOGGED_IN, N_FEATURES, pack
from orchestrator.core.scoring.intents import IntentSpec, IntentSpecError, load_intents
from orchestrator.core.scoring.labels import (
    MAX_WEIGHT,
    SettledLabel,
    earliest_deadline,
    priority,
    settle_expired,
    settle_on_event,
    snapshot,
)

pytestmark = pytest.mark.unit

T0 = 1_700_000_000_000
MINUTE = 60_000
HOUR = 60 * MINUTE
BUY = IntentSpec(name="buy", outcome_event_types=("purchase",), horizon_s=3600, max_pending=64)
LOGIN = IntentSpec(name="login", outcome_event_types=("login", "signup"), horizon_s=1800,
                   only_anonymous=True, max_pending=64)
SPECS = (BUY, LOGIN)


def vector(value: float = 0.25, logged_in: bool = False) -> list[float]:
    v = [value] * N_FEATURES
    v[LOGGED_IN] = 1.0 if logged_in else 0.0
    return v


VECTOR = vector()


def intents(pending: dict) -> set[str]:
    return {name for name, _, _ in entries(pending)}


def test_an_outcome_inside_the_horizon_decides_the_moment_and_it_is_learned_when_the_horizon_ends(
) -> None:
    pending: dict = {}
    assert snapshot(pending, [BUY], T0, vector(0.5))
    assert settle_on_event(pending, SPECS, "purchase", T0 + 30 * MINUTE) == []
    assert outcomes_seen_of(pending, "buy") == [T0]
    assert settle_expired(pending, SPECS, T0 + HOUR) == []  # as a negative would, it waits
    settled = settle_expired(pending, SPECS, T0 + HOUR + 1)
    assert settled == [SettledLabel("buy", pack(vector(0.5)), True, T0, T0 + HOUR + 1)]
    assert pending == {}


@pytest.mark.parametrize("outcome_ts", [T0, T0 + HOUR])
def test_an_outcome_at_the_snapshot_time_or_exactly_at_the_horizon_counts(outcome_ts: int) -> None:
    pending: dict = {}
    snapshot(pending, [BUY], T0, VECTOR)
    settle_on_event(pending, SPECS, "purchase", outcome_ts)
    assert [s.label for s in settle_expired(pending, SPECS, T0 + 2 * HOUR)] == [True]


def test_an_outcome_after_the_horizon_is_not_positive_and_the_snapshot_expires_negative() -> None:
    pending: dict = {}
    snapshot(pending, [BUY], T0, VECTOR)
    assert settle_on_event(pending, SPECS, "purchase", T0 + HOUR + 1) == []
    settled = settle_expired(pending, SPECS, T0 + HOUR + 1)
    assert [(s.intent, s.label, s.snapshot_ts) for s in settled] == [("buy", False, T0)]
    assert pending == {}


def test_without_an_outcome_a_snapshot_expires_only_once_the_watermark_is_past_its_horizon() -> None:
    pending: dict = {}
    snapshot(pending, [BUY], T0, VECTOR)
    assert settle_expired(pending, SPECS, T0 + HOUR) == []  # an outcome at the deadline may still come
    assert earliest_deadline(pending, SPECS) == T0 + HOUR
    assert [s.label for s in settle_expired(pending, SPECS, T0 + HOUR + 1)] == [False]
    assert earliest_deadline(pending, SPECS) is None


def test_a_reordered_outcome_older_than_a_snapshot_does_not_label_it() -> None:
    pending: dict = {}
    snapshot(pending, [BUY], T0, VECTOR)
    snapshot(pending, [BUY], T0 + 20 * MINUTE, VECTOR)
    settle_on_event(pending, SPECS, "purchase", T0 + 10 * MINUTE)
    assert outcomes_seen_of(pending, "buy") == [T0]
    settled = settle_expired(pending, SPECS, T0 + 3 * HOUR)
    assert [(s.snapshot_ts, s.label) for s in settled] == [(T0, True), (T0 + 20 * MINUTE, False)]


def test_a_replayed_outcome_decides_nothing_twice() -> None:
    pending: dict = {}
    snapshot(pending, [BUY], T0, VECTOR)
    snapshot(pending, [BUY], T0 + 10 * MINUTE, VECTOR)
    settle_on_event(pending, SPECS, "purchase", T0 + 15 * MINUTE)
    once = orjson.loads(orjson.dumps(pending))
    assert settle_on_event(pending, SPECS, "purchase", T0 + 15 * MINUTE) == []
    assert pending == once
    assert [s.label for s in settle_expired(pending, SPECS, T0 + 10 * HOUR)] == [True, True]
    assert settle_expired(pending, SPECS, T0 + 10 * HOUR) == []


def test_other_event_types_decide_nothing_and_an_outcome_decides_only_its_intents() -> None:
    pending: dict = {}
    snapshot(pending, [BUY], T0, VECTOR)
    snapshot(pending, [LOGIN], T0, VECTOR)
    settle_on_event(pending, SPECS, "page_view", T0 + MINUTE)
    assert outcomes_seen_of(pending, "buy") == outcomes_seen_of(pending, "login") == []
    settle_on_event(pending, SPECS, "signup", T0 + MINUTE)
    assert (outcomes_seen_of(pending, "login"), outcomes_seen_of(pending, "buy")) == ([T0], [])
    assert {(s.intent, s.label) for s in settle_expired(pending, SPECS, T0 + 2 * HOUR)} == {
        ("login", True), ("buy", False)}


def test_decided_moments_leave_the_sample_and_beyond_max_pending_the_oldest_are_learned_now(
) -> None:
    spec = BUY.model_copy(update={"max_pending": 2})
    t1, t2, t3, t4 = (T0 + n * MINUTE for n in range(4))
    pending: dict = {}
    snapshot(pending, [spec], t1, vector(0.1))
    snapshot(pending, [spec], t2, vector(0.2))
    assert settle_on_event(pending, (spec,), "purchase", t2) == []
    assert snapshot(pending, [spec], t3, vector(0.3)) == ["buy"]  # the decided do not compete
    assert snapshot(pending, [spec], t4, vector(0.4)) == ["buy"]
    assert len(pending_of(pending, "buy")) == 4
    early = settle_on_event(pending, (spec,), "purchase", t4)
    assert [(s.snapshot_ts, s.label, s.settled_ts) for s in early] == [(t1, True, t4), (t2, True, t4)]
    assert outcomes_seen_of(pending, "buy") == [t3, t4]


def test_an_anonymous_only_intent_takes_no_snapshot_of_a_logged_in_person() -> None:
    pending: dict = {}
    assert not snapshot(pending, [LOGIN], T0, vector(logged_in=True))
    assert snapshot(pending, [BUY], T0, vector(logged_in=True))
    assert intents(pending) == {"buy"}


def test_pending_survives_json_and_an_intent_no_longer_configured_is_dropped() -> None:
    pending: dict = {}
    snapshot(pending, [BUY], T0, VECTOR)
    snapshot(pending, [LOGIN], T0, VECTOR)
    pending = orjson.loads(orjson.dumps(pending))
    assert settle_expired(pending, (BUY,), T0 + 2 * HOUR) == [
        SettledLabel("buy", pack(VECTOR), False, T0, T0 + 2 * HOUR)]
    assert pending == {}  # "login" was not in the specs: dropped unlabelled


def test_a_moment_kept_by_several_intents_is_stored_once_with_their_names() -> None:
    pending: dict = {}
    assert snapshot(pending, SPECS, T0, VECTOR) == ["buy", "login"]
    assert pending == {"_intents": ["buy", "login"], "_moments": [[T0, 0b11, pack(VECTOR)]]}
    assert snapshot(pending, SPECS, T0, VECTOR) == []  # already pending


def test_only_events_whose_priority_is_below_the_sample_rate_are_candidates() -> None:
    sampled = BUY.model_copy(update={"sample_rate": 0.25})
    offered = [T0 + n * 997 for n in range(2000)]
    kept = [t for t in offered if snapshot({}, [sampled], t, VECTOR)]
    assert kept == [t for t in offered if priority(t) < 0.25]
    assert 0.2 < len(kept) / len(offered) < 0.3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6 * HOUR), max_size=40, unique=True), st.integers(1, 6), st.randoms())
def test_at_most_max_pending_kept_the_smallest_priorities_whatever_the_order(
        times: list[int], bound: int, rnd) -> None:
    spec = BUY.model_copy(update={"max_pending": bound})
    shuffled = list(times)
    rnd.shuffle(shuffled)
    results = []
    for order in (times, shuffled):
        pending: dict = {}
        for t in order:
            snapshot(pending, [spec], T0 + t, VECTOR)
        results.append([ts for ts, _ in pending_of(pending, "buy")])
    kept = results[0]
    assert kept == results[1]  # the same sample whatever the arrival order
    assert kept == sorted(kept) and len(kept) == min(bound, len(times))
    assert set(kept) == set(sorted((T0 + t for t in times), key=lambda ts: (priority(ts), ts))[:bound])


def test_a_list_over_the_bound_after_a_merge_is_trimmed_to_the_smallest_priorities() -> None:
    spec = BUY.model_copy(update={"max_pending": 3})
    times = [T0 + n * MINUTE for n in range(6)]
    pending = {"_intents": ["buy"], "_moments": [[t, 1, pack(VECTOR)] for t in times]}  # merged
    snapshot(pending, [spec], T0 + HOUR, VECTOR)
    best = sorted([*times, T0 + HOUR], key=lambda ts: (priority(ts), ts))[:3]
    assert [ts for ts, _ in pending_of(pending, "buy")] == sorted(best)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["snap", "purchase", "page_view", "sweep"]),
                          st.integers(0, 4 * HOUR)), max_size=40))
def test_every_snapshot_is_labelled_at_most_once_and_its_label_is_what_happened_in_its_window(
        steps: list[tuple[str, int]]) -> None:
    spec = BUY.model_copy(update={"max_pending": 4})
    pending: dict = {}
    taken: dict[int, list[int]] = {}  # moment -> the outcomes that came after it was taken
    labelled: list[int] = []
    for action, t in steps:  # events in any order; a moment offered once (the profile drops replays)
        if action == "snap":
            if T0 + t not in taken and snapshot(pending, [spec], T0 + t, VECTOR):
                taken[T0 + t] = []
            continue
        if action == "purchase":
            for after in taken.values():
                after.append(T0 + t)
            settled = settle_on_event(pending, (spec,), action, T0 + t)
        elif action == "sweep":
            settled = settle_expired(pending, (spec,), T0 + t)
        else:
            settled = settle_on_event(pending, (spec,), action, T0 + t)
        for s in settled:
            inside = any(s.snapshot_ts <= o <= s.snapshot_ts + BUY.horizon_ms
                         for o in taken[s.snapshot_ts])
            assert s.label == inside
            if not s.label:
                assert s.settled_ts > s.snapshot_ts + BUY.horizon_ms
        labelled += [s.snapshot_ts for s in settled]
    remaining = [ts for ts, _ in pending_of(pending, "buy")]
    assert len(labelled) + len(remaining) == len(set(labelled) | set(remaining))  # at most once
    assert set(labelled) | set(remaining) <= set(taken)
    assert len(remaining) - len(outcomes_seen_of(pending, "buy")) <= 4
    assert len(outcomes_seen_of(pending, "buy")) <= 4


def test_moments_stored_in_the_earlier_layout_settle_as_they_would_have() -> None:
    packed_list = [int(p) for p in pack(VECTOR).split(",")]
    pending = {"buy": [[T0, packed_list], [T0 + 10 * MINUTE, packed_list]],
               "login": [[T0, packed_list]]}  # one list per intent, the vector in each
    assert settle_on_event(pending, SPECS, "purchase", T0 + 5 * MINUTE) == []
    assert pending == {"_intents": ["buy", "login"], "_moments": [
        [T0, 0b11, pack(VECTOR), 0b01, [1.0]], [T0 + 10 * MINUTE, 0b01, pack(VECTOR)]]}
    settled = settle_expired(pending, SPECS, T0 + 2 * HOUR)
    assert sorted((s.intent, s.snapshot_ts, s.label) for s in settled) == [
        ("buy", T0, True), ("buy", T0 + 10 * MINUTE, False), ("login", T0, False)]
    assert pending == {}


def test_a_positive_weighs_what_the_sample_held_when_its_outcome_came_not_what_is_left_later(
) -> None:
    spec = BUY.model_copy(update={"max_pending": 2, "sample_rate": 0.5})
    candidates = [t for t in (T0 + n * MINUTE for n in range(60)) if priority(t) < 0.5][:3]
    pending: dict = {}
    for t in candidates:
        snapshot(pending, [spec], t, VECTOR)
    kept = pending_of(pending, "buy")
    tau = max(priority(ts) for ts, _ in kept)
    weight = min(MAX_WEIGHT, max(1.0, 0.5 / tau))
    settle_on_event(pending, (spec,), "purchase", candidates[-1])
    first, second = (ts for ts, _ in kept)
    alone = settle_expired(pending, (spec,), first + HOUR + 1)  # the other one still waits
    later = settle_expired(pending, (spec,), second + HOUR + 1)
    assert [(s.snapshot_ts, s.label, s.weight) for s in alone + later] == [
        (first, True, weight), (second, True, weight)]


def test_an_intent_set_to_learn_positives_at_the_outcome_gets_them_at_once() -> None:
    spec = BUY.model_copy(update={"learn_positive_at": "outcome"})
    pending: dict = {}
    snapshot(pending, [spec], T0, VECTOR)
    snapshot(pending, [spec], T0 + 40 * MINUTE, VECTOR)
    settled = settle_on_event(pending, (spec,), "purchase", T0 + 30 * MINUTE)
    assert [(s.snapshot_ts, s.label, s.settled_ts) for s in settled] == [(T0, True, T0 + 30 * MINUTE)]
    assert outcomes_seen_of(pending, "buy") == []
    assert [(s.snapshot_ts, s.label) for s in settle_expired(pending, (spec,), T0 + 3 * HOUR)] == [
        (T0 + 40 * MINUTE, False)]


def test_when_positives_are_learned_is_configured_per_intent_and_validated() -> None:
    entry = {"name": "buy", "outcome_event_types": ["purchase"], "horizon_s": 3600}
    assert load_intents([entry])[0].learn_positive_at == "horizon"
    assert load_intents([entry | {"learn_positive_at": "outcome"}])[0].learn_positive_at == "outcome"
    with pytest.raises(IntentSpecError, match="learn_positive_at"):
        load_intents([entry | {"learn_positive_at": "later"}])
