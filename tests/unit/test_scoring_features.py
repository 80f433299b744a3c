"""Feature extraction: values for hand-built profiles, event time only, bounded for any profile."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.scoring.features import (
    FEATURE_INDEX,
    FEATURE_NAMES,
    N_FEATURES,
    as_dict,
    extract_features,
    pack,
    unpack,
)
from orchestrator.simulate.population import ReplayState

pytestmark = pytest.mark.unit

# 2023-11-14T00:00:00Z, a Tuesday, midnight UTC.
MIDNIGHT = 1_699_920_000_000
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


# The population's replay state has exactly the attributes the features may read (and the
# pending snapshots, which they do not read).
Person = ReplayState


def feature(person: Person, name: str, now: int = MIDNIGHT + 10 * HOUR) -> float:
    return extract_features(person, None, now)[FEATURE_INDEX[name]]


def lg(n: float, cap: float) -> float:
    return min(1.0, math.log1p(n) / math.log1p(cap))


def test_an_empty_profile_has_every_feature_and_looks_never_seen() -> None:
    vector = extract_features(Person(), None, MIDNIGHT)
    assert len(vector) == N_FEATURES == len(FEATURE_NAMES)
    named = dict(zip(FEATURE_NAMES, vector, strict=True))
    assert named["recency"] == 1.0  # no previous event: as long ago as can be
    assert named["identified"] == named["logged_in"] == named["contacts_7d"] == 0.0
    assert named["last_contact_age"] == 1.0


def test_session_categories_are_counted_and_unknown_ones_bucketed_as_other() -> None:
    person = Person(session_topic_views={"billing": 3, "weather": 2, "garden": 1})
    assert feature(person, "session_cat_billing") == pytest.approx(lg(3, 10))
    assert feature(person, "session_cat_other") == pytest.approx(lg(3, 10))
    assert feature(person, "session_cat_pricing") == 0.0
    assert feature(person, "session_pages") == pytest.approx(lg(6, 20))


def test_page_views_decay_with_the_half_life_of_each_window() -> None:
    now = MIDNIGHT + 10 * HOUR
    person = Person(recent_pages=[{"ts": now - HOUR, "url": "/a", "category": None}])
    assert feature(person, "pages_decayed_1h", now) == pytest.approx(lg(0.5, 20))
    assert feature(person, "pages_decayed_1d", now) == pytest.approx(lg(2 ** (-1 / 24), 20))


def test_dwell_is_the_mean_gap_between_page_views_of_the_latest_visit() -> None:
    now = MIDNIGHT + 10 * HOUR
    pages = [now - 3 * HOUR, now - 120 * SECOND, now - 60 * SECOND, now]  # the first is a visit before
    person = Person(recent_pages=[{"ts": t, "url": "/", "category": None} for t in pages])
    assert feature(person, "dwell", now) == pytest.approx(lg(60, 1800))


def test_recency_is_the_log_seconds_since_the_previous_event_of_any_kind() -> None:
    now = MIDNIGHT + 10 * HOUR
    person = Person(recent_pages=[{"ts": now - HOUR, "url": "/", "category": None},
                                  {"ts": now, "url": "/b", "category": None}],
                    event_times={"search": [now - 10 * SECOND]})
    assert feature(person, "recency", now) == pytest.approx(lg(10, 30 * 24 * 3600))


def test_time_comes_from_the_event_and_later_items_are_ignored() -> None:
    person = Person(recent_pages=[{"ts": MIDNIGHT, "url": "/", "category": None}])
    at_midnight = extract_features(person, None, MIDNIGHT)
    assert at_midnight[FEATURE_INDEX["hour_sin"]] == pytest.approx(0.5)
    assert at_midnight[FEATURE_INDEX["hour_cos"]] == pytest.approx(1.0)
    six_am = extract_features(person, None, MIDNIGHT + 6 * HOUR)
    assert six_am[FEATURE_INDEX["hour_sin"]] == pytest.approx(1.0)
    # A page after "now" (the person's later history, seen when scoring a late event) is not used.
    later = replace(person, recent_pages=[*person.recent_pages,
                                          {"ts": MIDNIGHT + HOUR, "url": "/x", "category": None}])
    assert extract_features(later, None, MIDNIGHT) == at_midnight
    assert extract_features(person, None, MIDNIGHT) == at_midnight  # no clock: same input, same output


def test_weekend_is_saturday_and_sunday_utc() -> None:
    assert feature(Person(), "weekend", MIDNIGHT) == 0.0               # Tuesday
    assert feature(Person(), "weekend", MIDNIGHT + 4 * DAY) == 1.0     # Saturday
    assert feature(Person(), "weekend", MIDNIGHT + 6 * DAY - 1) == 1.0  # Sunday 23:59:59.999
    assert feature(Person(), "weekend", MIDNIGHT + 6 * DAY) == 0.0     # Monday


def test_last_contact_reason_and_sentiment_and_contacts_in_seven_days() -> None:
    now = MIDNIGHT + 10 * DAY
    person = Person(recent_contacts=[
        {"ts": now - 8 * DAY, "type": "contact_started", "channel": "phone", "reason": "moving",
         "sentiment": 0.5},
        {"ts": now - DAY, "type": "contact_started", "channel": "chat", "reason": "billing",
         "sentiment": -0.6},
    ])
    assert feature(person, "contacts_7d", now) == pytest.approx(lg(1, 10))
    assert feature(person, "last_contact_billing", now) == 1.0
    assert feature(person, "last_contact_moving", now) == 0.0
    assert feature(person, "last_contact_negative", now) == pytest.approx(0.6)
    assert feature(person, "last_contact_positive", now) == 0.0
    assert feature(person, "last_contact_age", now) == pytest.approx(lg(1, 90))
    unknown = Person(recent_contacts=[{"ts": now, "type": "case_opened", "channel": "email",
                                       "reason": "price", "sentiment": None}])
    assert feature(unknown, "last_contact_other", now) == 1.0
    assert feature(unknown, "last_contact_negative", now) == 0.0


def test_actions_and_their_outcomes_in_seven_days_without_held_out_ones() -> None:
    now = MIDNIGHT + 10 * DAY
    sent = [("a1", now - 8 * DAY, "clicked", False), ("a2", now - DAY, "clicked", False),
            ("a3", now - HOUR, "dismissed", False), ("a4", now - MINUTE, None, False),
            ("a5", now - MINUTE, "converted", True)]
    person = Person(recent_actions=[
        {"action_id": i, "action": "x", "channel": "web", "ts": ts, "outcome": outcome,
         **({"holdout": True} if held else {})} for i, ts, outcome, held in sent])
    assert feature(person, "actions_7d", now) == pytest.approx(lg(3, 10))
    assert feature(person, "actions_clicked_7d", now) == pytest.approx(lg(1, 10))
    assert feature(person, "actions_dismissed_7d", now) == pytest.approx(lg(1, 10))
    assert feature(person, "actions_converted_7d", now) == 0.0


def test_behaviour_counts_in_their_windows_and_abandoned_forms() -> None:
    now = MIDNIGHT + 10 * DAY
    person = Person(event_times={
        "form_start": [now - 2 * DAY, now - 2 * HOUR, now - HOUR],
        "form_submit": [now - 50 * MINUTE],
        "add_to_cart": [now - 25 * HOUR, now - MINUTE],
        "search": [now - MINUTE, now],
        "login": [now - 8 * DAY, now - 6 * DAY],
    })
    assert feature(person, "form_starts_24h", now) == pytest.approx(lg(2, 10))
    assert feature(person, "forms_abandoned_24h", now) == pytest.approx(lg(1, 10))
    assert feature(person, "add_to_cart_24h", now) == pytest.approx(lg(1, 10))
    assert feature(person, "searches_24h", now) == pytest.approx(lg(2, 10))
    assert feature(person, "logins_7d", now) == pytest.approx(lg(1, 10))


def test_identity_flags() -> None:
    assert feature(Person(customer_id="c1"), "identified") == 1.0
    assert feature(Person(customer_id="c1"), "logged_in") == 0.0
    assert feature(Person(customer_id="c1", logged_in=True), "logged_in") == 1.0


def test_packed_vectors_are_ints_and_unpack_to_the_same_river_input_within_rounding() -> None:
    person = Person(session_topic_views={"billing": 2}, sessions=3, customer_id="c",
                    first_seen_ts=MIDNIGHT - 30 * DAY)
    vector = extract_features(person, None, MIDNIGHT + 10 * HOUR)
    packed = pack(vector)
    assert all(isinstance(v, int) for v in packed)
    plain, restored = as_dict(vector), unpack(packed)
    assert set(restored) <= set(plain)
    for name, value in plain.items():
        assert restored.get(name, 0.0) == pytest.approx(value, abs=0.005)


# ------------------------------------------------------------------ any profile

timestamps = st.integers(min_value=946_684_800_000, max_value=4_102_444_800_000)
small = st.integers(min_value=-5, max_value=10**9)
texts = st.one_of(st.none(), st.text(max_size=12))
pages = st.fixed_dictionaries({"ts": timestamps, "url": st.text(min_size=1, max_size=8),
                               "category": texts})
contacts = st.fixed_dictionaries({
    "ts": timestamps, "type": st.sampled_from(["contact_started", "cancellation_requested"]),
    "channel": st.sampled_from(["phone", "chat"]), "reason": texts,
    "sentiment": st.one_of(st.none(), st.floats(min_value=-1, max_value=1))})
actions = st.fixed_dictionaries({
    "action_id": st.text(max_size=4), "action": st.just("x"), "channel": st.just("web"),
    "ts": timestamps, "outcome": st.sampled_from([None, "shown", "clicked", "dismissed", "converted"])})
profiles = st.builds(
    Person,
    recent_pages=st.lists(pages, max_size=20).map(lambda ps: sorted(ps, key=lambda p: p["ts"])),
    session_topic_views=st.dictionaries(st.text(max_size=12), st.integers(0, 10**6), max_size=8),
    sessions=small, events_seen=small, logged_in=st.booleans(), customer_id=texts,
    first_seen_ts=st.one_of(st.just(0), timestamps), last_seen_ts=st.one_of(st.just(0), timestamps),
    recent_contacts=st.lists(contacts, max_size=10).map(lambda cs: sorted(cs, key=lambda c: c["ts"])),
    recent_actions=st.lists(actions, max_size=20).map(lambda a: sorted(a, key=lambda x: x["ts"])),
    event_times=st.dictionaries(
        st.sampled_from(["login", "search", "add_to_cart", "form_start", "form_submit"]),
        st.lists(timestamps, max_size=10).map(sorted), max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(profiles, timestamps)
def test_every_feature_is_finite_and_in_unit_range_for_any_profile(person: Person, now: int) -> None:
    vector = extract_features(person, None, now)
    assert len(vector) == N_FEATURES
    assert all(isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= 1.0 for v in vector), \
        dict(zip(FEATURE_NAMES, vector, strict=True))
