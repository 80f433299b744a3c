"""Feature extraction: values for profiles built from events, event time only, quantised, bounded;
the profile's page statistics (views and time on page) independent of event order."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.profile import (
    DWELL_CAP_MS,
    RECENT_PAGES,
    Profile,
    apply_event,
    dwell_ms,
    merge_profiles,
)
from orchestrator.core.scoring.features import (
    FEATURE_NAMES,
    MAX_VALUE,
    N_FEATURES,
    PACK_SCALE,
    as_dict,
    dense,
    extract_features,
    pack,
    unpack,
)

from .factories import click, contact, page_view

pytestmark = pytest.mark.unit

# 2023-11-14T00:00:00Z, a Tuesday, midnight UTC.
MIDNIGHT = 1_699_920_000_000
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
NOW = MIDNIGHT + 10 * HOUR


def person(events: list, person_id: str = "v1") -> Profile:
    profile = Profile(person_id=person_id)
    for event in events:
        apply_event(profile, event)
    return profile


def features(profile: Profile, now: int = NOW) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, extract_features(profile, None, now), strict=True))


def views(scale_views: float, n: int) -> float:
    return round(math.log1p(n) / math.log1p(scale_views) * PACK_SCALE) / PACK_SCALE


def seconds(s: float) -> float:
    return round(math.log1p(s) / math.log1p(3600) * PACK_SCALE) / PACK_SCALE


def pages(n: int, category: str, start: int, gap: int, session: str = "s1", first: int = 0) -> list:
    return [page_view(f"{session}-{first + i}", f"/{category}/{i}", category, start + i * gap,
                      session_id=session) for i in range(n)]


def test_an_empty_profile_has_every_feature_and_looks_never_seen() -> None:
    vector = extract_features(Profile(person_id="p"), None, MIDNIGHT)
    assert len(vector) == N_FEATURES == len(FEATURE_NAMES)
    named = dict(zip(FEATURE_NAMES, vector, strict=True))
    assert named["recency"] == 1.0  # no previous event: as long ago as can be
    assert named["identified"] == named["logged_in"] == named["contacts_7d"] == 0.0
    assert named["last_contact_age"] == 1.0
    assert not any(v for k, v in named.items() if k.startswith(("views_", "dwell_", "before_")))


def test_views_and_time_on_page_per_category_this_session() -> None:
    # Five billing pages a minute apart, then a pricing page 90 s after the last one.
    profile = person([*pages(5, "billing", NOW - 10 * MINUTE, MINUTE),
                      page_view("p", "/pricing", "pricing", NOW - 5 * MINUTE + 30 * SECOND,
                                session_id="s1")])
    named = features(profile)
    assert named["views_billing"] == views(100, 5)
    assert named["views_pricing"] == views(100, 1)
    assert named["dwell_billing"] == seconds(4 * 60 + 90)
    assert named["dwell_pricing"] == 0.0  # the page just opened has no time yet
    assert named["before_views_billing"] == named["before_dwell_billing"] == 0.0


def test_the_share_of_this_session_s_page_views_per_category_says_what_the_visit_is_about(
) -> None:
    earlier = pages(4, "products", NOW - 2 * DAY, MINUTE, session="s0")  # not this session
    profile = person([*earlier, *pages(3, "billing", NOW - 10 * MINUTE, MINUTE),
                      page_view("p", "/pricing", "pricing", NOW - 5 * MINUTE, session_id="s1")])
    named = features(profile)
    assert (named["share_billing"], named["share_pricing"]) == (0.75, 0.25)
    assert named["share_products"] == 0.0
    long_visit = person(pages(40, "billing", NOW - HOUR, MINUTE))
    assert features(long_visit)["share_billing"] == 1.0  # the same share, whatever the length


def test_unknown_categories_count_as_other_and_counts_have_no_low_cap() -> None:
    profile = person([*pages(150, "weather", NOW - 3 * HOUR, 30 * SECOND)])
    named = features(profile)
    assert named["views_other"] == views(100, 150) > 1.0  # above the scale, not capped at it
    assert named["dwell_other"] == seconds(149 * 30)  # every gap, also of pages no longer recent


def test_time_on_page_is_the_gap_to_the_next_page_capped_and_zero_after_a_long_pause() -> None:
    assert dwell_ms(0, 40 * SECOND) == 40 * SECOND
    assert dwell_ms(0, 20 * MINUTE) == DWELL_CAP_MS
    assert dwell_ms(0, 2 * HOUR) == 0  # the visit ended: no time on that page


def test_earlier_sessions_are_the_before_features() -> None:
    profile = person([*pages(3, "products", NOW - 2 * DAY, MINUTE, session="old"),
                      *pages(2, "products", NOW - 5 * MINUTE, MINUTE, session="new")])
    named = features(profile)
    assert named["views_products"] == views(100, 2)
    assert named["before_views_products"] == views(100, 3)
    assert named["before_dwell_products"] == seconds(2 * 60)
    assert named["dwell_products"] == seconds(60)
    assert named["sessions_before"] == views(100, 1)


def test_time_comes_from_the_event_and_later_items_are_ignored() -> None:
    profile = person([page_view("a", "/", "home", NOW - HOUR),
                      page_view("b", "/", "home", NOW + HOUR)])
    at_now = features(profile)
    assert at_now["recency"] == round(math.log1p(3600) / math.log1p(30 * 24 * 3600) * 1000) / 1000


def test_weekend_and_identity_flags() -> None:
    saturday = MIDNIGHT + 4 * DAY + 10 * HOUR
    profile = person([click("e1", "login", saturday - MINUTE, customer_id="c1")])
    named = features(profile, saturday)
    assert named["weekend"] == 1.0
    assert named["identified"] == named["logged_in"] == 1.0
    assert named["logins_7d"] > 0.0


def test_last_contact_reason_and_sentiment_and_contacts_in_seven_days() -> None:
    profile = person([contact("c1", ts=NOW - 10 * DAY, reason="moving", sentiment=0.5),
                      contact("c2", ts=NOW - DAY, reason="billing", sentiment=-0.8)])
    named = features(profile)
    assert named["last_contact_billing"] == 1.0 and named["last_contact_moving"] == 0.0
    assert named["last_contact_negative"] == 0.8 and named["last_contact_positive"] == 0.0
    assert named["contacts_7d"] == round(math.log1p(1) / math.log1p(10) * 1000) / 1000


def test_the_engine_s_own_actions_are_not_features() -> None:
    assert not any(name.startswith("actions") for name in FEATURE_NAMES)


def test_the_vector_scored_is_the_vector_stored_bit_for_bit() -> None:
    profile = person([*pages(7, "billing", NOW - 20 * MINUTE, 97 * SECOND),
                      contact("c1", ts=NOW - DAY, reason="billing", sentiment=-0.37)])
    vector = extract_features(profile, None, NOW)
    packed = pack(vector)
    assert all(part.isdigit() for part in packed.split(","))  # integers: index, thousandths
    assert unpack(packed) == as_dict(vector)  # the same floats, not within rounding
    assert dense(packed) == vector
    assert pack(dense(packed)) == packed


# ------------------------------------------------------------------ any profile

timestamps = st.integers(min_value=946_684_800_000, max_value=4_102_444_800_000)
texts = st.one_of(st.none(), st.text(max_size=12))
page_entries = st.fixed_dictionaries({"ts": timestamps, "url": st.text(min_size=1, max_size=8),
                                      "category": texts})
contacts = st.fixed_dictionaries({
    "ts": timestamps, "type": st.sampled_from(["contact_started", "cancellation_requested"]),
    "channel": st.sampled_from(["phone", "chat"]), "reason": texts,
    "sentiment": st.one_of(st.none(), st.floats(min_value=-1, max_value=1))})
profiles = st.builds(
    lambda **layout: Profile.from_layout(layout),  # the stored layout, as a worker reads it
    person_id=st.just("p"),
    recent_pages=st.lists(page_entries, max_size=20).map(lambda ps: sorted(ps, key=lambda p: p["ts"])),
    session_log=st.dictionaries(st.text(max_size=6), st.tuples(
        timestamps, timestamps, st.dictionaries(st.text(max_size=12), st.integers(0, 10**6), max_size=6)
    ).map(lambda t: [min(t[0], t[1]), max(t[0], t[1]), t[2]]), max_size=3),
    page_totals=st.dictionaries(st.text(max_size=12), st.tuples(st.integers(0, 10**7), st.integers(
        0, 10**12)).map(list), max_size=6),
    sessions_before=st.integers(0, 10**6), customer_id=texts,
    first_seen_ts=st.one_of(st.just(0), timestamps),
    recent_contacts=st.lists(contacts, max_size=10).map(lambda cs: sorted(cs, key=lambda c: c["ts"])),
    event_times=st.dictionaries(
        st.sampled_from(["login", "search", "add_to_cart", "form_start", "form_submit", "purchase"]),
        st.lists(timestamps, max_size=10).map(sorted), max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(profiles, timestamps)
def test_every_feature_is_finite_bounded_and_quantised_for_any_profile(profile: Profile, now: int) -> None:
    vector = extract_features(profile, None, now)
    assert len(vector) == N_FEATURES
    for name, v in zip(FEATURE_NAMES, vector, strict=True):
        assert isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= MAX_VALUE, (name, v)
        assert round(v * PACK_SCALE) / PACK_SCALE == v, (name, v)
    assert unpack(pack(vector)) == as_dict(vector)


# ------------------------------------------------------------------ page statistics in the profile

@st.composite
def page_events(draw: st.DrawFn) -> list:
    return _page_events(draw)


def _page_events(draw: st.DrawFn) -> list:
    n = draw(st.integers(0, RECENT_PAGES + 15))
    times = sorted(draw(st.lists(st.integers(0, 40 * MINUTE), min_size=n, max_size=n, unique=True)))
    return [page_view(f"e{i}", f"/{i}", draw(st.sampled_from(["billing", "products", None])),
                      NOW + t, session_id=draw(st.sampled_from(["s1", "s2"])))
            for i, t in enumerate(times)]


@st.composite
def near_order(draw: st.DrawFn) -> tuple[list, list]:
    """Page views in event-time order, and an arrival order that moves each at most a few places
    (within the recent pages the profile keeps, where the page statistics are exact)."""
    events = _page_events(draw)
    # Each page arrives at its place plus a delay of 0-3 places (ties keep event order), so no
    # page is ever more than 3 places out: chained swaps could carry one arbitrarily far.
    delays = draw(st.lists(st.integers(0, 3), min_size=len(events), max_size=len(events)))
    order = sorted(range(len(events)), key=lambda i: (i + delays[i], i))
    return events, [events[i] for i in order]


def stats(profile: Profile) -> tuple:
    return profile.page_totals, profile.session_dwell, profile.recent_pages


@settings(max_examples=200, deadline=None)
@given(near_order())
def test_page_statistics_do_not_depend_on_arrival_order_within_the_recent_pages(
        orders: tuple[list, list]) -> None:
    in_order, arrived = orders
    assert stats(person(arrived)) == stats(person(in_order))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_page_statistics_of_a_merge_equal_those_of_the_whole_history(data: st.DataObject) -> None:
    events = data.draw(page_events())[:RECENT_PAGES]  # each side keeps all its pages: exact
    sides = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    left = person([e for e, s in zip(events, sides, strict=True) if s])
    right = person([e for e, s in zip(events, sides, strict=True) if not s])
    whole = person(events)
    assert stats(merge_profiles(copy.deepcopy(left), copy.deepcopy(right))) == stats(whole)
    assert stats(merge_profiles(copy.deepcopy(right), copy.deepcopy(left))) == stats(whole)


def test_time_on_pages_that_left_the_recent_pages_is_kept_in_the_totals() -> None:
    profile = person(pages(RECENT_PAGES + 5, "billing", NOW, MINUTE))
    assert len(profile.recent_pages) == RECENT_PAGES
    assert profile.page_totals["billing"] == [RECENT_PAGES + 5, 5 * MINUTE]
    assert profile.session_dwell == {"s1": {"billing": 5 * MINUTE}}
    named = features(profile, NOW + (RECENT_PAGES + 5) * MINUTE)
    assert named["dwell_billing"] == seconds((RECENT_PAGES + 4) * 60)
