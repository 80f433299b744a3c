"""The profile does not depend on the order of events, and merging two profiles is a join.

These are the properties identity stitching relies on: records of one person reach their
profile reordered (two input topics, a re-keyed hop at login) and sometimes twice (redelivery),
and a visitor's anonymous profile is merged into the customer's at login.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.events import Event
from orchestrator.core.profile import (
    REPLAY_GUARD,
    Profile,
    apply_event,
    event_identity,
    merge_profiles,
    note_scores,
    record_sent,
)
from orchestrator.core.profile.pending import pending_of

from .factories import MINUTE, T0, click, contact, feedback, page_view

OUTCOMES = ("shown", "clicked", "dismissed", "converted")


# Scores a person can carry: intents with a probability, or None while a model is not trusted.
INTENTS = ("churn_risk", "contact_need", "login_propensity")
SCORE_VALUES = (None, 0.0, 0.25, 0.75)
# A few instants shared by many events, so that equal timestamps (and equal ``scored_ts``) are
# common, within the bounds the profile keeps (SESSIONS_KEPT sessions: two ids and at most four
# 30-minute windows), where it is exact.
SHARED_TIMES = (T0, T0 + 1, T0 + MINUTE, T0 + 31 * MINUTE, T0 + 61 * MINUTE)

Scored = tuple[Event, dict[str, float | None]]


def scores() -> st.SearchStrategy[dict[str, float | None]]:
    return st.dictionaries(st.sampled_from(INTENTS), st.sampled_from(SCORE_VALUES), max_size=3)


def scored_events(max_size: int = REPLAY_GUARD - 2) -> st.SearchStrategy[list[Scored]]:
    """Distinct events of every kind (two devices, sessions with and without ids, contacts,
    consent, login/logout, feedback), often at the same millisecond, each with the scores a
    model gave at it (None among them)."""
    def build(kind: str, n: int, ts: int, device: str, session: str | None, category: str | None,
              customer: str | None) -> Event:
        if kind == "page":
            return page_view(f"e{n}", f"/{category}", category, ts, session_id=session,
                             visitor_id=device, customer_id=customer)
        if kind in ("login", "logout", "search", "purchase"):
            return click(f"e{n}", kind, ts, device, session_id=session, customer_id=customer)
        if kind == "consent":
            return click(f"e{n}", "consent_updated", ts, device,
                         consent={"service": n % 2 == 0, "marketing": n % 3 == 0})
        if kind == "contact":
            return contact(f"e{n}", ("contact_started", "case_opened", "case_resolved")[n % 3], ts,
                           reason=category, sentiment=(n % 5 - 2) / 2)
        return feedback(f"a{n % 3}", OUTCOMES[n % 4], ts)

    one = st.builds(
        build,
        kind=st.sampled_from(["page", "page", "page", "login", "logout", "search", "purchase",
                              "consent", "contact", "feedback"]),
        n=st.integers(min_value=0, max_value=10_000),
        ts=st.one_of(st.sampled_from(SHARED_TIMES), st.integers(min_value=T0, max_value=T0 + 90 * MINUTE)),
        device=st.sampled_from(["v1", "v2"]),
        session=st.sampled_from([None, "s1", "s2"]),
        category=st.sampled_from([None, "billing", "moving", "products"]),
        customer=st.sampled_from([None, "c1"]),
    )
    return st.lists(st.tuples(one, scores()), max_size=max_size,
                    unique_by=lambda scored: event_identity(scored[0]))


def fresh(person_id: str = "c1") -> Profile:
    """A profile with three sent actions, so that feedback has outcome slots to fill."""
    profile = Profile(person_id=person_id)
    for slot in ("a0", "a1", "a2"):
        record_sent(profile, {"action_id": slot, "action": "login_prompt", "channel": "web"}, slot, T0)
    return profile


def applied(events: Sequence[Event | Scored], profile: Profile | None = None) -> Profile:
    """Apply each event and, as the journey does for an event that is not late, keep the scores
    given with it (none for a bare event)."""
    profile = profile or fresh()
    for item in events:
        event, given_scores = item if isinstance(item, tuple) else (item, {})
        late = event.ts < profile.last_seen_ts
        if apply_event(profile, event) and not late:
            note_scores(profile, given_scores, event.ts)
    return profile


@settings(max_examples=200, deadline=None)
@given(events=scored_events(), data=st.data())
def test_any_order_and_any_duplication_of_the_same_events_gives_the_same_profile(
        events: list[Scored], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(events), label="order")
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=10) if events else st.just([]),
                        label="duplicates")
    sequence = list(shuffled)
    for event in repeats:
        sequence.insert(data.draw(st.integers(0, len(sequence)), label="at"), event)
    assert applied(sequence).to_dict() == applied(events).to_dict()


@settings(max_examples=200, deadline=None)
@given(events=scored_events(), data=st.data())
def test_merging_a_split_history_gives_the_profile_of_the_whole_history(
        events: list[Scored], data: st.DataObject) -> None:
    """An anonymous part and a known part, merged in either order, equal one profile of it all."""
    in_anonymous = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)),
                             label="which side")
    anonymous = applied([e for e, side in zip(events, in_anonymous, strict=True) if side], fresh())
    known = applied([e for e, side in zip(events, in_anonymous, strict=True) if not side], fresh())
    whole = applied(events)

    one_way = merge_profiles(copy.deepcopy(known), copy.deepcopy(anonymous))
    other_way = merge_profiles(copy.deepcopy(anonymous), copy.deepcopy(known))
    assert one_way.to_dict() == whole.to_dict()
    assert other_way.to_dict() == whole.to_dict()


@settings(max_examples=100, deadline=None)
@given(events=scored_events(), data=st.data())
def test_three_way_merge_is_associative(events: list[Scored], data: st.DataObject) -> None:
    sides = data.draw(st.lists(st.integers(0, 2), min_size=len(events), max_size=len(events)))
    a, b, c = (applied([e for e, s in zip(events, sides, strict=True) if s == i], fresh()) for i in range(3))
    left = merge_profiles(merge_profiles(copy.deepcopy(a), copy.deepcopy(b)), copy.deepcopy(c))
    right = merge_profiles(copy.deepcopy(a), merge_profiles(copy.deepcopy(b), copy.deepcopy(c)))
    assert left.to_dict() == right.to_dict() == applied(events).to_dict()


@settings(max_examples=150, deadline=None)
@given(events=scored_events(), data=st.data())
def test_merging_overlapping_histories_is_commutative(events: list[Scored], data: st.DataObject) -> None:
    """Two profiles that share some events (each event on one side or on both)."""
    sides = data.draw(st.lists(st.sampled_from(["a", "b", "ab"]), min_size=len(events),
                               max_size=len(events)), label="sides")
    a, b = (applied([e for e, s in zip(events, sides, strict=True) if name in s], fresh())
            for name in "ab")
    one_way = merge_profiles(copy.deepcopy(a), copy.deepcopy(b))
    other_way = merge_profiles(copy.deepcopy(b), copy.deepcopy(a))
    assert one_way.to_dict() == other_way.to_dict()


def scored_profile(scored_ts: int, given_scores: dict[str, float | None]) -> Profile:
    profile = Profile(person_id="c1")
    profile.scores, profile.scored_ts = dict(given_scores), scored_ts
    return profile


def score_register() -> st.SearchStrategy[Profile]:
    return st.builds(scored_profile, st.sampled_from([0, T0, T0 + 1]), scores())


def test_merge_with_the_same_scored_ts_and_a_none_score_against_a_float_does_not_raise() -> None:
    trusted = scored_profile(T0, {"churn_risk": 0.25})
    untrusted = scored_profile(T0, {"churn_risk": None})
    one_way = merge_profiles(copy.deepcopy(trusted), copy.deepcopy(untrusted))
    other_way = merge_profiles(copy.deepcopy(untrusted), copy.deepcopy(trusted))
    assert one_way.scores == other_way.scores
    assert one_way.scored_ts == other_way.scored_ts == T0


def test_the_newer_scores_win_the_merge_whatever_they_hold() -> None:
    older = scored_profile(T0, {"churn_risk": 0.75, "contact_need": 0.25})
    newer = scored_profile(T0 + 1, {"churn_risk": None})
    for target, other in ((older, newer), (newer, older)):
        merged = merge_profiles(copy.deepcopy(target), copy.deepcopy(other))
        assert (merged.scored_ts, merged.scores) == (T0 + 1, {"churn_risk": None})


@settings(max_examples=300, deadline=None)
@given(a=score_register(), b=score_register(), c=score_register())
def test_scores_merge_as_a_join_commutative_associative_idempotent(a: Profile, b: Profile,
                                                                   c: Profile) -> None:
    def join(x: Profile, y: Profile) -> Profile:
        return merge_profiles(copy.deepcopy(x), copy.deepcopy(y))

    def register(p: Profile) -> tuple[int, dict[str, float | None]]:
        return p.scored_ts, p.scores

    assert register(join(a, b)) == register(join(b, a))
    assert register(join(join(a, b), c)) == register(join(a, join(b, c)))
    assert register(join(a, a)) == register(a)
    assert register(join(a, b)) in (register(a), register(b))


def test_note_scores_keeps_the_newest_by_event_time_whatever_the_arrival_order() -> None:
    calls = [({"churn_risk": 0.25}, T0), ({"churn_risk": None}, T0), ({"churn_risk": 0.75}, T0 - 1)]
    results = set()
    for order in (calls, calls[::-1], calls[1:] + calls[:1]):
        profile = Profile(person_id="c1")
        for given_scores, ts in order:
            note_scores(profile, given_scores, ts)
        results.add((profile.scored_ts, tuple(profile.scores.items())))
    assert len(results) == 1
    assert results.pop()[0] == T0


@given(held=scores(), held_ts=st.sampled_from(SHARED_TIMES), given_scores=scores(),
       given_ts=st.sampled_from(SHARED_TIMES))
def test_note_scores_keeps_the_later_scores_and_breaks_a_tie_of_the_same_ms_by_content(
        held: dict[str, float | None], held_ts: int, given_scores: dict[str, float | None],
        given_ts: int) -> None:
    profile = Profile(person_id="c1", scores=dict(held), scored_ts=held_ts)
    def content(s: dict[str, float | None]) -> list[tuple[str, tuple[int, float]]]:
        return sorted((k, (0, 0.0) if v is None else (2, v)) for k, v in s.items())
    newer = (given_ts, content(given_scores)) > (held_ts, content(held))
    assert note_scores(profile, given_scores, given_ts) is newer
    assert (profile.scored_ts, profile.scores) == ((given_ts, given_scores) if newer
                                                   else (held_ts, held))


def test_pending_snapshots_at_the_same_time_merge_in_either_order() -> None:
    a, b = Profile(person_id="c1"), Profile(person_id="c1")
    a.pending = {"churn_risk": [[T0, [1, 2]], [T0 + 1, [0, 0]]]}  # the earlier layout
    b.pending = {"churn_risk": [[T0, [3, 4]]], "contact_need": [[T0, [5, 6]]]}
    one_way = merge_profiles(copy.deepcopy(a), copy.deepcopy(b))
    other_way = merge_profiles(copy.deepcopy(b), copy.deepcopy(a))
    assert one_way.pending == other_way.pending
    assert pending_of(one_way.pending, "churn_risk") == [(T0, "1,2"), (T0, "3,4"), (T0 + 1, "0,0")]
    assert pending_of(one_way.pending, "contact_need") == [(T0, "5,6")]


def test_two_distinct_page_views_alike_at_the_same_millisecond_both_survive_the_merge() -> None:
    """The same url and category at the same ms from two events (two tabs): both count."""
    first = page_view("e1", "/billing", "billing", T0, visitor_id="v1")
    second = page_view("e2", "/billing", "billing", T0, visitor_id="v2")
    merged = merge_profiles(applied([first], Profile(person_id="c1")),
                            applied([second], Profile(person_id="c1")))
    assert merged.to_dict() == applied([first, second], Profile(person_id="c1")).to_dict()
    assert len(merged.recent_pages) == 2


def test_two_distinct_events_of_a_type_at_the_same_millisecond_both_count_after_the_merge() -> None:
    first, second = click("e1", "search", T0), click("e2", "search", T0)
    merged = merge_profiles(applied([first], Profile(person_id="c1")),
                            applied([second], Profile(person_id="c1")))
    assert merged.event_times["search"] == [T0, T0]


def test_merge_carries_anonymous_pages_sessions_and_visitor_into_the_customer_profile() -> None:
    anonymous = applied([page_view("e1", "/billing", "billing", T0, visitor_id="v9", session_id="s9"),
                         page_view("e2", "/billing/faq", "billing", T0 + MINUTE, visitor_id="v9",
                                   session_id="s9")], Profile(person_id="v9"))
    customer = applied([contact("k1", "contact_started", T0 - 60 * MINUTE, reason="billing")],
                       Profile(person_id="c1", customer_id="c1"))
    merged = merge_profiles(customer, anonymous)
    assert merged.person_id == "c1"
    assert merged.customer_id == "c1"
    assert merged.visitor_id == "v9"
    assert [p["url"] for p in merged.recent_pages] == ["/billing", "/billing/faq"]
    assert merged.session_topic_views == {"billing": 2}
    assert (merged.events_seen, merged.first_seen_ts) == (3, T0 - 60 * MINUTE)
    assert len(merged.recent_contacts) == 1


def test_an_event_in_both_profiles_counts_once_after_the_merge() -> None:
    shared = page_view("e1", "/billing", "billing", T0)
    merged = merge_profiles(applied([shared], Profile(person_id="c1")),
                            applied([shared, page_view("e2", "/", None, T0 + 1)], Profile(person_id="v1")))
    assert merged.events_seen == 2
    assert len(merged.recent_pages) == 2
    assert apply_event(merged, shared) is False


def test_feedback_that_arrives_before_its_action_is_recorded_is_joined_to_it() -> None:
    profile = Profile(person_id="v1")
    apply_event(profile, feedback("a1", "clicked", T0 + MINUTE))
    record_sent(profile, {"action_id": "a1", "action": "login_prompt", "channel": "web"}, "k", T0)
    assert profile.recent_actions[0]["outcome"] == "clicked"
    assert profile.early_outcomes == {}


def test_a_later_funnel_stage_wins_whatever_order_the_feedback_arrives_in() -> None:
    for order in (["clicked", "shown"], ["shown", "clicked"]):
        profile = fresh()
        for n, outcome in enumerate(order):
            apply_event(profile, feedback("a1", outcome, T0 + n))
        assert profile.recent_actions[1]["outcome"] == "clicked"


def test_login_state_is_the_newest_by_event_time_not_by_arrival() -> None:
    login = click("e1", "login", T0, customer_id="c1")
    logout = click("e2", "logout", T0 + MINUTE)
    assert applied([logout, login]).logged_in is False
    assert applied([login, logout]).logged_in is False
    assert applied([login]).logged_in is True
