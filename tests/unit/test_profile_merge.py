"""The profile does not depend on the order of events, and merging two profiles is a join.

These are the properties identity stitching relies on: records of one person reach their
profile reordered (two input topics, a re-keyed hop at login) and sometimes twice (redelivery),
and a visitor's anonymous profile is merged into the customer's at login.
"""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.events import Event
from orchestrator.core.profile import (
    REPLAY_GUARD,
    Profile,
    apply_event,
    event_identity,
    merge_profiles,
    record_sent,
)

from .factories import MINUTE, T0, click, contact, feedback, page_view

OUTCOMES = ("shown", "clicked", "dismissed", "converted")


def events_with_distinct_times(max_size: int = REPLAY_GUARD - 2) -> st.SearchStrategy[list[Event]]:
    """Distinct events of every kind (two devices, sessions with and without ids, contacts,
    consent, login/logout, feedback), each at its own millisecond."""
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
        # Within the bounds the profile keeps (SESSIONS_KEPT sessions: two ids and at most four
        # 30-minute windows), where it is exact.
        ts=st.integers(min_value=T0, max_value=T0 + 90 * MINUTE),
        device=st.sampled_from(["v1", "v2"]),
        session=st.sampled_from([None, "s1", "s2"]),
        category=st.sampled_from([None, "billing", "moving", "products"]),
        customer=st.sampled_from([None, "c1"]),
    )
    return st.lists(one, max_size=max_size, unique_by=(event_identity, lambda e: e.ts))


def fresh(person_id: str = "c1") -> Profile:
    """A profile with three sent actions, so that feedback has outcome slots to fill."""
    profile = Profile(person_id=person_id)
    for slot in ("a0", "a1", "a2"):
        record_sent(profile, {"action_id": slot, "action": "login_prompt", "channel": "web"}, slot, T0)
    return profile


def applied(events: list[Event], profile: Profile | None = None) -> Profile:
    profile = profile or fresh()
    for event in events:
        apply_event(profile, event)
    return profile


@settings(max_examples=200, deadline=None)
@given(events=events_with_distinct_times(), data=st.data())
def test_any_order_and_any_duplication_of_the_same_events_gives_the_same_profile(
        events: list[Event], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(events), label="order")
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=10) if events else st.just([]),
                        label="duplicates")
    sequence = list(shuffled)
    for event in repeats:
        sequence.insert(data.draw(st.integers(0, len(sequence)), label="at"), event)
    assert applied(sequence).to_dict() == applied(events).to_dict()


@settings(max_examples=200, deadline=None)
@given(events=events_with_distinct_times(), data=st.data())
def test_merging_a_split_history_gives_the_profile_of_the_whole_history(
        events: list[Event], data: st.DataObject) -> None:
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
@given(events=events_with_distinct_times(), data=st.data())
def test_three_way_merge_is_associative(events: list[Event], data: st.DataObject) -> None:
    sides = data.draw(st.lists(st.integers(0, 2), min_size=len(events), max_size=len(events)))
    a, b, c = (applied([e for e, s in zip(events, sides, strict=True) if s == i], fresh()) for i in range(3))
    left = merge_profiles(merge_profiles(copy.deepcopy(a), copy.deepcopy(b)), copy.deepcopy(c))
    right = merge_profiles(copy.deepcopy(a), merge_profiles(copy.deepcopy(b), copy.deepcopy(c)))
    assert left.to_dict() == right.to_dict()


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
