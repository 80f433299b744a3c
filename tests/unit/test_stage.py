"""The journey stage and the open case, read from a profile built by folding events.

Each test is one rule of orchestrator.core.stage (or one of its boundaries). Times are event
time relative to the person's newest event, so every history below ends at ``NOW``.
"""

from __future__ import annotations

from orchestrator.core.events import Event
from orchestrator.core.profile import RECENT_PAGES, SESSION_GAP_MS, Profile, apply_event, record_sent
from orchestrator.core.stage import STAGES, journey_stage, open_case

from .factories import MINUTE, T0, click, contact, feedback, page_view

DAY = 24 * 60 * MINUTE
NOW = T0 + 60 * DAY


def profile_of(*events: Event, person_id: str = "v1") -> Profile:
    profile = Profile(person_id=person_id)
    for event in events:
        apply_event(profile, event)
    return profile


def stage_of(*events: Event) -> str:
    stage = journey_stage(profile_of(*events))
    assert stage in STAGES
    return stage


def visit(event_id: str, ts: int = NOW, session_id: str = "now", category: str | None = None,
          customer_id: str | None = None) -> Event:
    return page_view(event_id, f"/{category or 'home'}", category, ts, session_id=session_id,
                     customer_id=customer_id)


# ---------------------------------------------------------------- awareness

def test_an_empty_profile_is_awareness() -> None:
    assert journey_stage(Profile(person_id="v1")) == "awareness"


def test_a_fresh_visitor_with_one_page_view_is_awareness() -> None:
    assert stage_of(visit("e1")) == "awareness"


# ---------------------------------------------------------------- consideration (anonymous)

def test_a_search_in_the_last_7_days_is_consideration() -> None:
    assert stage_of(click("e1", "search", NOW - 6 * DAY, session_id="s"),
                    visit("e2", session_id="s")) == "consideration"


def test_a_search_exactly_7_days_ago_no_longer_counts() -> None:
    # One long-lived session, so that the second-session rule stays out of it.
    assert stage_of(click("e1", "search", NOW - 7 * DAY, session_id="s"),
                    visit("e2", session_id="s")) == "awareness"


def test_a_form_start_in_the_last_7_days_is_consideration() -> None:
    assert stage_of(click("e1", "form_start", NOW - DAY, session_id="s"),
                    visit("e2", session_id="s")) == "consideration"


def test_an_add_to_cart_in_an_earlier_session_within_7_days_is_consideration_not_conversion() -> None:
    assert stage_of(click("e1", "add_to_cart", NOW - DAY, session_id="before"),
                    visit("e2", session_id="now")) == "consideration"


def test_a_second_session_is_consideration() -> None:
    assert stage_of(visit("e1", NOW - DAY, session_id="first"),
                    visit("e2", NOW, session_id="second")) == "consideration"


def test_without_session_ids_a_second_fixed_30_minute_window_is_a_second_session() -> None:
    window = NOW // SESSION_GAP_MS * SESSION_GAP_MS
    assert stage_of(click("e1", ts=window), click("e2", ts=window + SESSION_GAP_MS - 1)) == "awareness"
    assert stage_of(click("e1", ts=window + SESSION_GAP_MS - 1),
                    click("e2", ts=window + SESSION_GAP_MS)) == "consideration"


def test_three_pricing_or_product_pages_are_consideration() -> None:
    assert stage_of(visit("e1", NOW - 2, category="pricing"), visit("e2", NOW - 1, category="products"),
                    visit("e3", NOW, category="broadband")) == "consideration"


def test_two_pricing_pages_are_not_enough() -> None:
    assert stage_of(visit("e1", NOW - 1, category="pricing"),
                    visit("e2", NOW, category="pricing")) == "awareness"


def test_service_pages_do_not_count_towards_consideration() -> None:
    assert stage_of(*(visit(f"e{n}", NOW - n, category="billing") for n in range(5))) == "awareness"


def test_product_pages_pushed_out_of_the_recent_pages_no_longer_count() -> None:
    product = [visit(f"p{n}", NOW - 100 + n, category="products") for n in range(3)]
    newer = [visit(f"h{n}", NOW - 50 + n) for n in range(RECENT_PAGES - 2)]
    assert stage_of(*product, *newer[:-1]) == "consideration"  # exactly RECENT_PAGES pages kept
    assert stage_of(*product, *newer) == "awareness"           # the oldest product page dropped


# ---------------------------------------------------------------- conversion

def test_a_purchase_6_days_ago_is_conversion() -> None:
    assert stage_of(click("e1", "purchase", NOW - 6 * DAY, session_id="buy", customer_id="c1"),
                    visit("e2", customer_id="c1")) == "conversion"


def test_a_purchase_8_days_ago_of_a_customer_is_retention() -> None:
    assert stage_of(click("e1", "purchase", NOW - 8 * DAY, session_id="buy", customer_id="c1"),
                    visit("e2", customer_id="c1")) == "retention"


def test_a_purchase_exactly_7_days_ago_is_no_longer_conversion() -> None:
    assert stage_of(click("e1", "purchase", NOW - 7 * DAY, session_id="buy", customer_id="c1"),
                    visit("e2", customer_id="c1")) == "retention"


def test_a_signup_in_the_last_7_days_is_conversion() -> None:
    assert stage_of(click("e1", "signup", NOW - 3 * DAY, session_id="join", customer_id="c1"),
                    visit("e2", customer_id="c1")) == "conversion"


def test_an_add_to_cart_in_the_current_session_is_conversion() -> None:
    assert stage_of(visit("e1", NOW - MINUTE), click("e2", "add_to_cart", NOW, session_id="now")) \
        == "conversion"


def test_a_form_submit_in_the_current_session_is_conversion() -> None:
    assert stage_of(click("e1", "form_submit", NOW - MINUTE, session_id="now"), visit("e2")) == "conversion"


def test_conversion_comes_before_retention_and_advocacy_for_a_customer() -> None:
    assert stage_of(contact("k1", "contact_ended", NOW - DAY, sentiment=0.9),
                    click("e1", "add_to_cart", NOW, session_id="now", customer_id="c1")) == "conversion"


# ---------------------------------------------------------------- retention and advocacy

def bought_8_days_ago() -> Event:
    return click("buy", "purchase", NOW - 8 * DAY, session_id="buy", customer_id="c1")


def test_a_known_customer_who_never_bought_is_retention_even_with_a_positive_contact() -> None:
    assert stage_of(contact("k1", "contact_ended", NOW, sentiment=0.9)) == "retention"


def test_a_customer_known_only_from_the_contact_centre_is_retention() -> None:
    assert stage_of(contact("k1", "contact_started", NOW)) == "retention"


def test_a_customer_who_bought_and_whose_last_contact_was_positive_is_advocacy() -> None:
    assert stage_of(bought_8_days_ago(), contact("k1", "contact_ended", NOW, sentiment=0.6)) == "advocacy"


def test_a_last_contact_sentiment_of_exactly_0_5_is_positive() -> None:
    assert stage_of(bought_8_days_ago(), contact("k1", "contact_ended", NOW, sentiment=0.5)) == "advocacy"


def test_a_last_contact_sentiment_below_0_5_is_retention() -> None:
    assert stage_of(bought_8_days_ago(), contact("k1", "contact_ended", NOW, sentiment=0.4)) == "retention"


def test_only_the_last_contact_counts_for_advocacy() -> None:
    assert stage_of(bought_8_days_ago(), contact("k1", "contact_ended", NOW - DAY, sentiment=0.9),
                    contact("k2", "contact_ended", NOW, sentiment=-0.5)) == "retention"
    assert stage_of(bought_8_days_ago(), contact("k1", "contact_ended", NOW - DAY, sentiment=-0.5),
                    contact("k2", "contact_ended", NOW, sentiment=0.9)) == "advocacy"


def test_a_last_contact_without_sentiment_is_not_positive() -> None:
    assert stage_of(bought_8_days_ago(), contact("k1", "contact_ended", NOW - DAY, sentiment=0.9),
                    contact("k2", "contact_started", NOW)) == "retention"


def test_a_cancellation_request_in_the_last_30_days_turns_advocacy_into_retention() -> None:
    assert stage_of(bought_8_days_ago(), contact("k0", "cancellation_requested", NOW - 29 * DAY),
                    contact("k1", "contact_ended", NOW, sentiment=0.6)) == "retention"


def test_a_cancellation_request_30_days_ago_or_more_no_longer_blocks_advocacy() -> None:
    assert stage_of(bought_8_days_ago(), contact("k0", "cancellation_requested", NOW - 30 * DAY),
                    contact("k1", "contact_ended", NOW, sentiment=0.6)) == "advocacy"


def test_a_customer_who_bought_and_converted_on_one_of_our_actions_is_advocacy() -> None:
    profile = profile_of(bought_8_days_ago(), visit("e1", customer_id="c1"), person_id="c1")
    record_sent(profile, {"action_id": "a1", "action": "upgrade_offer", "channel": "web"}, "k", NOW - DAY)
    assert journey_stage(profile) == "retention"
    apply_event(profile, feedback("a1", "clicked", NOW))
    assert journey_stage(profile) == "retention"
    apply_event(profile, feedback("a1", "converted", NOW + 1))
    assert journey_stage(profile) == "advocacy"


# ---------------------------------------------------------------- open case

def test_no_contact_means_no_open_case() -> None:
    assert open_case(profile_of(visit("e1"))) is None


def test_an_opened_case_is_open_under_its_reason() -> None:
    assert open_case(profile_of(contact("k1", "case_opened", NOW, reason="billing"))) == "billing"


def test_a_resolution_with_the_same_reason_closes_the_case() -> None:
    assert open_case(profile_of(contact("k1", "case_opened", NOW - DAY, reason="billing"),
                                contact("k2", "case_resolved", NOW, reason="billing"))) is None


def test_a_resolution_with_another_reason_leaves_the_case_open() -> None:
    assert open_case(profile_of(contact("k1", "case_opened", NOW - DAY, reason="billing"),
                                contact("k2", "case_resolved", NOW, reason="moving"))) == "billing"


def test_a_newer_case_opened_after_a_resolution_is_open() -> None:
    assert open_case(profile_of(contact("k1", "case_opened", NOW - 2 * DAY, reason="billing"),
                                contact("k2", "case_resolved", NOW - DAY, reason="billing"),
                                contact("k3", "case_opened", NOW, reason="billing"))) == "billing"


def test_the_newest_of_two_open_cases_is_reported() -> None:
    assert open_case(profile_of(contact("k1", "case_opened", NOW - DAY, reason="billing"),
                                contact("k2", "case_opened", NOW, reason="moving"))) == "moving"


def test_a_case_opened_without_a_reason_is_open_as_unspecified() -> None:
    assert open_case(profile_of(contact("k1", "case_opened", NOW))) == "unspecified"
    assert open_case(profile_of(contact("k1", "case_opened", NOW - 1),
                                contact("k2", "case_resolved", NOW))) is None


def test_the_open_case_does_not_depend_on_arrival_order() -> None:
    opened = contact("k1", "case_opened", NOW - DAY, reason="billing")
    resolved = contact("k2", "case_resolved", NOW, reason="billing")
    assert open_case(profile_of(resolved, opened)) is None
