"""The live profile: sessions, identity, time, bounded memory, replay and serialisation."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.events import Event
from orchestrator.core.profile import (
    EVENT_TIMES_PER_TYPE,
    RECENT_ACTIONS,
    RECENT_CONTACTS,
    RECENT_PAGES,
    REPLAY_GUARD,
    SENT_LOG_MS,
    SENT_LOG_PER_KEY,
    SESSION_GAP_MS,
    SESSIONS_KEPT,
    Consent,
    Profile,
    SessionLog,
    apply_event,
    event_identity,
    queries,
    record_sent,
)

from .factories import MINUTE, SECOND, T0, click, contact, feedback, page_view


def applied(events: list[Event], profile: Profile | None = None) -> Profile:
    profile = profile or Profile(person_id="v1")
    for event in events:
        apply_event(profile, event)
    return profile


def sent_record(action_id: str, action: str = "login_prompt") -> dict[str, Any]:
    return {"action_id": action_id, "action": action, "channel": "web"}


# ---------------------------------------------------------------- first event, time

def test_new_profile_starts_empty_with_service_consent_and_no_marketing_consent() -> None:
    profile = Profile(person_id="v1")
    assert (profile.events_seen, profile.sessions, profile.logged_in) == (0, 0, False)
    assert queries.consent(profile) == Consent(service=True, marketing=False)


def test_first_event_sets_visitor_first_and_last_seen_and_opens_a_session() -> None:
    profile = Profile(person_id="v1")
    assert apply_event(profile, page_view("e1", "/", "home", T0)) is True
    assert profile.visitor_id == "v1"
    assert (profile.first_seen_ts, profile.last_seen_ts) == (T0, T0)
    assert (profile.events_seen, profile.sessions, profile.session_id) == (1, 1, "s1")
    assert profile.session_started_ts == T0


def test_out_of_order_event_is_counted_but_does_not_move_last_seen_back() -> None:
    profile = applied([page_view("e1", "/a", "billing", T0 + 10 * SECOND),
                       page_view("e2", "/b", "billing", T0)])
    assert profile.last_seen_ts == T0 + 10 * SECOND
    assert profile.first_seen_ts == T0
    assert profile.events_seen == 2
    assert profile.session_topic_views == {"billing": 2}
    assert [p["url"] for p in profile.recent_pages] == ["/b", "/a"]  # event-time order


def test_out_of_order_event_from_an_older_session_does_not_reopen_it() -> None:
    profile = applied([page_view("e1", "/", None, T0, session_id="s1"),
                       page_view("e2", "/", None, T0 + 40 * MINUTE, session_id="s2"),
                       page_view("e3", "/", None, T0 + 1 * MINUTE, session_id="s1")])
    assert (profile.sessions, profile.session_id) == (2, "s2")
    assert profile.session_started_ts == T0 + 40 * MINUTE


# ---------------------------------------------------------------- sessions

def test_new_session_id_starts_a_new_session_and_resets_topic_views() -> None:
    profile = applied([page_view("e1", "/billing/faq", "billing", T0, session_id="s1"),
                       page_view("e2", "/billing/pay", "billing", T0 + SECOND, session_id="s1")])
    assert (profile.sessions, profile.session_topic_views) == (1, {"billing": 2})
    apply_event(profile, page_view("e3", "/moving", "moving", T0 + 2 * SECOND, session_id="s2"))
    assert (profile.sessions, profile.session_id) == (2, "s2")
    assert profile.session_started_ts == T0 + 2 * SECOND
    assert profile.session_topic_views == {"moving": 1}


def test_same_session_id_stays_one_session_however_long_the_gap() -> None:
    profile = applied([page_view("e1", "/", "billing", T0, session_id="s1"),
                       page_view("e2", "/", "billing", T0 + 2 * SESSION_GAP_MS, session_id="s1")])
    assert profile.sessions == 1
    assert profile.session_topic_views == {"billing": 2}


def test_without_session_id_events_fall_into_thirty_minute_windows_of_event_time() -> None:
    window = T0 - T0 % SESSION_GAP_MS
    profile = applied([page_view("e1", "/", "billing", window, session_id=None),
                       page_view("e2", "/", "billing", window + SESSION_GAP_MS - 1, session_id=None),
                       page_view("e3", "/", "moving", window + SESSION_GAP_MS, session_id=None)])
    assert profile.sessions == 2
    assert profile.session_id is None
    assert profile.session_started_ts == window + SESSION_GAP_MS
    assert profile.session_topic_views == {"moving": 1}


def test_session_window_can_be_configured() -> None:
    profile = Profile(person_id="v1")
    apply_event(profile, page_view("e1", "/", None, T0, session_id=None), session_gap_ms=MINUTE)
    apply_event(profile, page_view("e2", "/", None, T0 + MINUTE, session_id=None), session_gap_ms=MINUTE)
    assert profile.sessions == 2


def test_only_the_newest_sessions_keep_their_topics_but_all_are_counted() -> None:
    profile = applied([page_view(f"e{i}", "/", "billing", T0 + i * MINUTE, session_id=f"s{i}")
                       for i in range(SESSIONS_KEPT + 3)])
    assert profile.sessions == SESSIONS_KEPT + 3
    assert len(profile.session_log) == SESSIONS_KEPT
    assert profile.session_id == f"s{SESSIONS_KEPT + 2}"


def test_only_page_views_with_a_category_count_as_topic_views() -> None:
    profile = applied([page_view("e1", "/", None, T0),
                       click("e2", "click", T0, session_id="s1", page={"url": "/b", "category": "billing"}),
                       page_view("e3", "/billing", "billing", T0)])
    assert profile.session_topic_views == {"billing": 1}
    assert [p["url"] for p in profile.recent_pages] == ["/", "/billing"]
    assert profile.recent_pages[1] == {"ts": T0, "url": "/billing", "category": "billing"}


# ---------------------------------------------------------------- identity

def test_login_sets_logged_in_and_customer_id() -> None:
    profile = applied([page_view("e1", "/", None, T0),
                       click("e2", "login", T0 + SECOND, session_id="s1", customer_id="c1")])
    assert profile.logged_in is True
    assert profile.customer_id == "c1"
    assert profile.visitor_id == "v1"


def test_login_without_a_customer_id_does_not_log_in() -> None:
    profile = applied([click("e1", "login", T0, session_id="s1")])
    assert profile.logged_in is False
    assert profile.customer_id is None


def test_logout_clears_logged_in_but_keeps_the_customer_id() -> None:
    for logout in (click("e3", "logout", T0 + 2 * SECOND, session_id="s1", customer_id="c1"),
                   click("e3", "logout", T0 + 2 * SECOND, session_id="s1")):
        profile = applied([click("e1", "login", T0, session_id="s1", customer_id="c1"),
                           page_view("e2", "/", None, T0 + SECOND, customer_id="c1"), logout])
        assert profile.logged_in is False
        assert profile.customer_id == "c1"


def test_page_view_carrying_a_customer_id_means_logged_in() -> None:
    profile = applied([page_view("e1", "/", None, T0, customer_id="c1")])
    assert (profile.logged_in, profile.customer_id) == (True, "c1")


def test_consent_update_replaces_consent() -> None:
    profile = applied([click("e1", "consent_updated", T0, consent={"service": False, "marketing": True})])
    assert queries.consent(profile) == Consent(service=False, marketing=True)


def test_contact_event_sets_customer_and_remembers_the_contact() -> None:
    profile = Profile(person_id="c1")
    apply_event(profile, contact("k1", "contact_started", T0, reason="billing", sentiment=-0.4))
    assert profile.customer_id == "c1"
    assert profile.visitor_id is None
    assert profile.recent_contacts == [{"ts": T0, "type": "contact_started", "channel": "phone",
                                        "reason": "billing", "sentiment": -0.4}]
    assert profile.sessions == 0


def test_contact_consent_update_replaces_consent_without_a_contact_entry() -> None:
    profile = Profile(person_id="c1")
    apply_event(profile, contact("k1", "consent_updated", T0, channel=None,
                                 consent={"service": False, "marketing": False}))
    assert queries.consent(profile) == Consent(service=False, marketing=False)
    assert profile.recent_contacts == []


# ---------------------------------------------------------------- actions and feedback

def test_record_sent_starts_the_cooldown_clock_on_event_time_and_keeps_an_outcome_slot() -> None:
    profile = Profile(person_id="v1")
    record_sent(profile, sent_record("a1"), "login_prompt", T0)
    assert profile.last_sent == {"login_prompt": T0}
    assert profile.recent_actions == [{"action_id": "a1", "action": "login_prompt", "channel": "web",
                                       "ts": T0, "outcome": None}]


def test_cooldown_clock_never_moves_back() -> None:
    profile = Profile(person_id="v1")
    record_sent(profile, sent_record("a1"), "login_prompt", T0 + MINUTE)
    record_sent(profile, sent_record("a2"), "login_prompt", T0)
    assert profile.last_sent == {"login_prompt": T0 + MINUTE}


def test_feedback_records_the_outcome_of_the_action_it_names() -> None:
    profile = Profile(person_id="v1")
    record_sent(profile, sent_record("a1"), "login_prompt", T0)
    record_sent(profile, sent_record("a2", "direct_link"), "direct_link:billing", T0)
    assert apply_event(profile, feedback("a2", "clicked", T0 + SECOND)) is True
    assert profile.recent_actions[0]["outcome"] is None
    assert profile.recent_actions[1]["outcome"] == "clicked"
    assert profile.recent_actions[1]["outcome_ts"] == T0 + SECOND


def test_feedback_for_an_unknown_action_changes_no_action() -> None:
    profile = Profile(person_id="v1")
    record_sent(profile, sent_record("a1"), "login_prompt", T0)
    apply_event(profile, feedback("zzz", "clicked", T0))
    assert profile.recent_actions[0]["outcome"] is None
    assert profile.events_seen == 1


def test_feedback_identity_is_its_action_and_outcome() -> None:
    assert event_identity(feedback("a1", "shown")) == "feedback:a1:shown"
    assert event_identity(page_view("e9", "/", None)) == "e9"


def test_later_outcome_of_the_same_action_is_not_a_replay() -> None:
    profile = Profile(person_id="v1")
    record_sent(profile, sent_record("a1"), "login_prompt", T0)
    assert apply_event(profile, feedback("a1", "shown", T0)) is True
    assert apply_event(profile, feedback("a1", "clicked", T0 + SECOND)) is True
    assert profile.recent_actions[0]["outcome"] == "clicked"


# ---------------------------------------------------------------- bounded memory

def test_recent_pages_keep_only_the_latest() -> None:
    profile = applied([page_view(f"e{i}", f"/p{i}", None, T0 + i) for i in range(RECENT_PAGES + 5)])
    assert len(profile.recent_pages) == RECENT_PAGES
    assert profile.recent_pages[0]["url"] == "/p5"
    assert profile.recent_pages[-1]["url"] == f"/p{RECENT_PAGES + 4}"


def test_recent_contacts_keep_only_the_latest() -> None:
    profile = applied([contact(f"k{i}", "contact_started", T0 + i) for i in range(RECENT_CONTACTS + 3)],
                      Profile(person_id="c1"))
    assert len(profile.recent_contacts) == RECENT_CONTACTS
    assert profile.recent_contacts[0]["ts"] == T0 + 3


def test_recent_actions_keep_only_the_latest() -> None:
    profile = Profile(person_id="v1")
    for i in range(RECENT_ACTIONS + 7):
        record_sent(profile, sent_record(f"a{i}"), "login_prompt", T0 + i)
    assert len(profile.recent_actions) == RECENT_ACTIONS
    assert profile.recent_actions[0]["action_id"] == "a7"


def test_replay_guard_keeps_the_newest_events_by_event_time() -> None:
    profile = applied([click(f"e{i}", "click", T0 + i, session_id="s1")
                       for i in reversed(range(REPLAY_GUARD + 10))])
    assert len(profile.seen) == REPLAY_GUARD
    assert profile.seen[0][0] == T0 + 10
    assert profile.events_seen == REPLAY_GUARD + 10


# ---------------------------------------------------------------- replay

def test_replayed_event_returns_false_and_changes_nothing() -> None:
    event = page_view("e1", "/billing", "billing", T0)
    profile = applied([event])
    before = profile.to_dict()
    assert apply_event(profile, event) is False
    assert profile.to_dict() == before


def test_replay_is_recognised_by_event_id_and_time_even_with_a_different_body() -> None:
    profile = applied([page_view("e1", "/billing", "billing", T0)])
    assert apply_event(profile, page_view("e1", "/moving", "moving", T0)) is False
    assert profile.session_topic_views == {"billing": 1}


def event_list() -> st.SearchStrategy[list[Event]]:
    """Distinct events of every kind over a few sessions, in any order of time."""
    def build(kind: str, n: int, offset_s: int, session: str | None, category: str | None,
              customer: str | None) -> Event:
        ts = T0 + offset_s * SECOND
        if kind == "page":
            return page_view(f"e{n}", f"/{category}", category, ts, session_id=session, customer_id=customer)
        if kind in ("login", "logout"):
            return click(f"e{n}", kind, ts, session_id=session, customer_id=customer)
        if kind == "consent":
            return click(f"e{n}", "consent_updated", ts, consent={"service": n % 2 == 0, "marketing": False})
        if kind == "contact":
            return contact(f"e{n}", "contact_started", ts, reason=category)
        return feedback(f"a{n % 3}", ("shown", "clicked", "dismissed", "converted")[n % 4], ts)

    one = st.builds(
        build,
        kind=st.sampled_from(["page", "page", "page", "login", "logout", "consent", "contact", "feedback"]),
        n=st.integers(min_value=0, max_value=10_000),
        offset_s=st.integers(min_value=0, max_value=3 * 3600),
        session=st.sampled_from([None, "s1", "s2"]),
        category=st.sampled_from([None, "billing", "moving", "products"]),
        customer=st.sampled_from([None, "c1"]),
    )
    return st.lists(one, max_size=REPLAY_GUARD - 2, unique_by=event_identity)


@settings(max_examples=150, deadline=None)
@given(events=event_list(), data=st.data())
def test_duplicated_events_give_the_same_profile_as_each_event_once(events: list[Event],
                                                                    data: st.DataObject) -> None:
    sequence = list(events)
    duplicates = data.draw(st.integers(min_value=0, max_value=2 * len(events)), label="duplicates")
    for _ in range(duplicates if events else 0):
        original = data.draw(st.sampled_from(events), label="duplicate of")
        first = next(i for i, e in enumerate(sequence) if e is original)
        sequence.insert(data.draw(st.integers(min_value=first + 1, max_value=len(sequence))), original)

    def with_outcome_slots() -> Profile:  # sent actions, so that feedback has something to change
        profile = Profile(person_id="p")
        for slot in ("a0", "a1", "a2"):
            record_sent(profile, sent_record(slot), slot, T0)
        return profile

    once, twice = with_outcome_slots(), with_outcome_slots()
    assert all(apply_event(once, event) for event in events)
    results = [apply_event(twice, event) for event in sequence]

    assert twice.to_dict() == once.to_dict()
    first_sightings = [sequence.index(event) == i for i, event in enumerate(sequence)]
    assert results == first_sightings
    assert results.count(False) == len(sequence) - len(events)


# ---------------------------------------------------------------- serialisation

def test_profile_round_trips_through_json_bytes() -> None:
    profile = applied([
        click("e1", "login", T0, session_id="s1", customer_id="c1"),
        page_view("e2", "/billing", "billing", T0 + SECOND, customer_id="c1"),
        contact("e3", "contact_started", T0 + 2 * SECOND, reason="billing", sentiment=0.25),
        click("e4", "consent_updated", T0 + 3 * SECOND, consent={"service": True, "marketing": True}),
    ])
    record_sent(profile, sent_record("a1", "direct_link"), "direct_link:billing", T0 + SECOND)
    apply_event(profile, feedback("a1", "clicked", T0 + 4 * SECOND))

    restored = Profile.from_dict(orjson.loads(orjson.dumps(profile.to_dict())))
    assert restored == profile
    assert restored.to_dict() == profile.to_dict()


def test_from_dict_ignores_fields_it_does_not_know() -> None:
    data = Profile(person_id="v1", session_log=SessionLog(before=3)).to_dict() \
        | {"added_in_a_later_version": 1}
    restored = Profile.from_dict(data)
    assert restored == Profile(person_id="v1", session_log=SessionLog(before=3))


def test_to_dict_copies_so_the_dict_does_not_alias_the_profile() -> None:
    profile = applied([page_view("e1", "/billing", "billing", T0)])
    data = profile.to_dict()
    data["session_log"]["s1"][2]["billing"] = 99
    assert profile.session_topic_views == {"billing": 1}


def test_a_late_page_view_from_an_earlier_session_does_not_count_towards_the_current_one() -> None:
    from orchestrator.core.events import ClickstreamEvent

    profile = Profile(person_id="v")

    def view(event_id: str, session: str, ts: int) -> ClickstreamEvent:
        return ClickstreamEvent.model_validate({
            "event_id": event_id, "type": "page_view", "ts": ts, "visitor_id": "v",
            "session_id": session, "page": {"url": "/billing", "category": "billing"}})

    apply_event(profile, view("new", "s2", 2_000_000_000_000))
    apply_event(profile, view("late", "s1", 1_999_000_000_000))
    assert profile.session_id == "s2"
    assert profile.session_topic_views == {"billing": 1}
    assert profile.events_seen == 2


# ---------------------------------------------------------------- what rules read: event times, sends

def test_event_times_are_kept_per_type_except_page_views() -> None:
    profile = applied([page_view("p", "/", "home", T0), click("l", "login", T0 + SECOND),
                       click("x", "video_play", T0 + 2 * SECOND), feedback("a", "shown", T0 + 3 * SECOND),
                       contact("k", "callback_requested", T0 + 4 * SECOND)])
    assert profile.event_times == {"login": [T0 + SECOND], "other": [T0 + 2 * SECOND],
                                   "feedback": [T0 + 3 * SECOND], "callback_requested": [T0 + 4 * SECOND]}


def test_event_times_stay_bounded_and_sorted() -> None:
    searches = [click(f"s{i}", "search", T0 + i * SECOND) for i in range(EVENT_TIMES_PER_TYPE + 5)]
    profile = applied([*searches, click("late", "search", T0 - MINUTE)])
    times = profile.event_times["search"]
    assert len(times) == EVENT_TIMES_PER_TYPE
    assert times == sorted(times)


def test_sent_log_keeps_a_week_of_sends_per_cap_key_and_drops_keys_gone_quiet() -> None:
    week = SENT_LOG_MS
    profile = Profile(person_id="v1")
    record_sent(profile, sent_record("a1"), "login_prompt", T0)
    record_sent(profile, sent_record("a2", "direct_link"), "direct_link:billing", T0 + MINUTE)
    record_sent(profile, sent_record("a3"), "login_prompt", T0 + week)
    assert profile.sent_log == {"login_prompt": [T0 + week], "direct_link:billing": [T0 + MINUTE]}
    record_sent(profile, sent_record("a4"), "login_prompt", T0 + week + 2 * MINUTE)
    assert profile.sent_log == {"login_prompt": [T0 + week, T0 + week + 2 * MINUTE]}


def test_sent_log_is_bounded_per_key() -> None:
    profile = Profile(person_id="v1")
    for i in range(SENT_LOG_PER_KEY + 10):
        record_sent(profile, sent_record(f"a{i}"), "k", T0 + i * SECOND)
    assert profile.sent_log["k"] == [T0 + i * SECOND for i in range(10, SENT_LOG_PER_KEY + 10)]


def test_held_out_sends_are_marked_in_recent_actions() -> None:
    profile = Profile(person_id="v1")
    record_sent(profile, sent_record("a1"), "login_prompt", T0, holdout=True)
    assert profile.recent_actions == [{"action_id": "a1", "action": "login_prompt", "channel": "web",
                                       "ts": T0, "outcome": None, "holdout": True}]
    assert profile.last_sent == {"login_prompt": T0}
