"""Erasure that holds, and privacy decisions on broker time (pure core)."""

from __future__ import annotations

from orchestrator.core.journey import Trigger, process_event
from orchestrator.core.profile import (
    Profile,
    apply_event,
    effective_ts,
    erased_before,
    erasure_marker,
    is_erasure_marker,
    merge_profiles,
    queries,
)
from orchestrator.runtime.stores import decode_profile, encode_profile

from .factories import MINUTE, SECOND, T0, click, contact, page_view, self_service_rules

RULES = self_service_rules()


def test_a_privacy_decision_goes_by_the_event_time_but_never_later_than_the_broker_time() -> None:
    assert effective_ts(T0, T0 + SECOND) == T0          # an old event, sent late: its own time
    assert effective_ts(T0 + 58 * MINUTE, T0) == T0     # dated ahead by its producer: broker time
    assert effective_ts(T0, None) == T0                 # no broker time known


def test_an_erasure_leaves_a_marker_of_the_broker_time_and_nothing_else() -> None:
    profile = Profile(person_id="c1")
    apply_event(profile, page_view("e1", "/billing", "billing", T0))
    erase = contact("k9", "erasure_requested", T0 + 58 * MINUTE, channel=None)
    outcome = process_event(erase, "c1", profile,
                            Trigger(record_kafka_ts=T0 + SECOND, decided_ts=T0 + SECOND), RULES)
    assert outcome.profile is None
    assert outcome.erasure == Profile(person_id="c1", erased_ts=T0 + SECOND)
    assert is_erasure_marker(outcome.erasure)


def test_a_second_erasure_never_moves_the_marker_back() -> None:
    assert erasure_marker("c1", T0, erasure_marker("c1", T0 + SECOND)).erased_ts == T0 + SECOND


def test_an_event_from_before_the_erasure_is_dropped_and_changes_nothing() -> None:
    marker = erasure_marker("v1", T0)
    for event, kafka_ts in ((page_view("old", "/billing", "billing", T0 - 1), T0 + MINUTE),
                            (page_view("ahead", "/billing", "billing", T0 + MINUTE), T0 - 1)):
        outcome = process_event(event, "v1", marker, Trigger(kafka_ts, kafka_ts), RULES)
        assert outcome.erased and not outcome.actions
        assert outcome.profile == erasure_marker("v1", T0)


def test_an_event_from_after_the_erasure_starts_a_person_that_keeps_the_marker() -> None:
    event = page_view("new", "/billing", "billing", T0 + SECOND)
    outcome = process_event(event, "v1", erasure_marker("v1", T0), Trigger(T0 + SECOND, T0 + SECOND), RULES)
    assert not outcome.erased and outcome.profile is not None
    assert (outcome.profile.events_seen, outcome.profile.erased_ts) == (1, T0)
    assert not is_erasure_marker(outcome.profile)
    assert erased_before(outcome.profile, T0 - 1, T0 + MINUTE)


def test_the_marker_is_stored_and_read_back_and_joins_by_its_latest_time() -> None:
    marker = erasure_marker("c1", T0)
    assert decode_profile(encode_profile(marker)) == marker
    assert merge_profiles(Profile(person_id="c1"), erasure_marker("c1", T0)).erased_ts == T0
    assert merge_profiles(erasure_marker("c1", T0 + 1), erasure_marker("c1", T0)).erased_ts == T0 + 1


def test_consent_sent_later_wins_over_one_dated_ahead_by_its_producer() -> None:
    ahead = click("yes", "consent_updated", T0 + 58 * MINUTE, consent={"service": True, "marketing": True})
    later = click("no", "consent_updated", T0 + SECOND, consent={"service": True, "marketing": False})
    for order in ((ahead, T0), (later, T0 + SECOND)), ((later, T0 + SECOND), (ahead, T0)):
        profile = Profile(person_id="v1")
        for event, broker_ts in order:
            apply_event(profile, event, broker_ts=broker_ts)
        assert not queries.consents_to(profile, "marketing")


def test_an_old_consent_sent_late_does_not_override_a_newer_one() -> None:
    newer = click("no", "consent_updated", T0 + MINUTE, consent={"service": True, "marketing": False})
    backfilled = click("yes", "consent_updated", T0, consent={"service": True, "marketing": True})
    profile = Profile(person_id="v1")
    apply_event(profile, newer, broker_ts=T0 + MINUTE)
    apply_event(profile, backfilled, broker_ts=T0 + 2 * MINUTE)
    assert not queries.consents_to(profile, "marketing")
