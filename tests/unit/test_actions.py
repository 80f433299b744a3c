"""Action records as the channel topics' contract has them."""

from __future__ import annotations

import dataclasses
import uuid

from orchestrator.core.actions import action_id_for, build_action_record
from orchestrator.core.profile import Profile
from orchestrator.core.rules import Decision

from .factories import SECOND, T0, contact, feedback, page_view

CONTRACT_FIELDS = {
    "action_id", "channel", "action", "person_id", "visitor_id", "customer_id", "payload", "rule",
    "rule_set_version", "scores", "trigger_event_id", "trigger_ts", "trigger_event_ts", "decided_ts",
    "expires_ts",
}

DIRECT_LINK = Decision(action="direct_link", channel="web", rule="self-service-direct-link",
                       payload={"url": "/account/billing", "title": "Your bills", "topic": "billing"},
                       cap_key="direct_link:billing", expires_after_ms=300_000)


def customer_profile() -> Profile:
    return Profile(person_id="v1", visitors={"v1": 0}, customer_id="c1", login=[0, 0, True])


def test_action_record_has_every_contract_field_with_its_value() -> None:
    event = page_view("e1", "/billing/faq", "billing", T0, customer_id="c1")
    record = build_action_record(DIRECT_LINK, event, customer_profile(), trigger_kafka_ts=T0 + 5,
                                 decided_ts=T0 + 20, rule_set_version="2026-11-23.1")
    assert set(record) == CONTRACT_FIELDS
    assert record == {
        "action_id": action_id_for("e1", "web", "direct_link"),
        "channel": "web",
        "action": "direct_link",
        "person_id": "v1",
        "visitor_id": "v1",
        "customer_id": "c1",
        "payload": {"url": "/account/billing", "title": "Your bills", "topic": "billing"},
        "rule": "self-service-direct-link",
        "rule_set_version": "2026-11-23.1",
        "scores": {},
        "trigger_event_id": "e1",
        "trigger_ts": T0 + 5,
        "trigger_event_ts": T0,
        "decided_ts": T0 + 20,
        "expires_ts": T0 + 20 + 300_000,
    }


def test_anonymous_visitor_action_has_no_customer_id() -> None:
    event = page_view("e1", "/billing/faq", "billing", T0, visitor_id="v9")
    record = build_action_record(DIRECT_LINK, event, Profile(person_id="v9", visitors={"v9": 0}),
                                 trigger_kafka_ts=T0, decided_ts=T0, rule_set_version="1")
    assert (record["visitor_id"], record["customer_id"], record["person_id"]) == ("v9", None, "v9")


def test_contact_centre_trigger_takes_the_visitor_from_the_profile() -> None:
    event = contact("k1", "contact_started", T0)
    record = build_action_record(DIRECT_LINK, event, customer_profile(), trigger_kafka_ts=T0,
                                 decided_ts=T0, rule_set_version="1")
    assert record["visitor_id"] == "v1"
    assert record["trigger_event_id"] == "k1"


def test_feedback_trigger_is_identified_by_the_action_it_reports_on() -> None:
    event = feedback("a-42", "clicked", T0)
    record = build_action_record(DIRECT_LINK, event, customer_profile(), trigger_kafka_ts=T0,
                                 decided_ts=T0, rule_set_version="1")
    assert record["trigger_event_id"] == "feedback:a-42"
    assert record["action_id"] == action_id_for("feedback:a-42", "web", "direct_link")


def test_same_trigger_gives_the_same_action_id_whenever_it_is_decided() -> None:
    event = page_view("e1", "/billing/faq", "billing", T0)
    first = build_action_record(DIRECT_LINK, event, customer_profile(), trigger_kafka_ts=T0,
                                decided_ts=T0 + SECOND, rule_set_version="1")
    replayed = build_action_record(DIRECT_LINK, event, customer_profile(), trigger_kafka_ts=T0 + 99,
                                   decided_ts=T0 + 3600 * SECOND, rule_set_version="2")
    assert first["action_id"] == replayed["action_id"]


def test_action_id_is_a_uuid_that_differs_by_trigger_channel_and_action() -> None:
    base = action_id_for("e1", "web", "login_prompt")
    assert uuid.UUID(base).version == 5
    assert base == action_id_for("e1", "web", "login_prompt")
    assert len({base, action_id_for("e2", "web", "login_prompt"),
                action_id_for("e1", "contact-centre", "login_prompt"),
                action_id_for("e1", "web", "direct_link")}) == 4


def test_action_id_parts_cannot_run_into_each_other() -> None:
    assert action_id_for("e1", "web", "x") != action_id_for("e1w", "eb", "x")


def test_held_out_decision_record_is_marked_and_carries_the_scores() -> None:
    event = page_view("e1", "/billing/faq", "billing", T0)
    held = dataclasses.replace(DIRECT_LINK, holdout=True)
    record = build_action_record(held, event, customer_profile(), trigger_kafka_ts=T0, decided_ts=T0,
                                 rule_set_version="1", scores={"churn_risk": 0.2, "contact_need": None})
    assert set(record) == CONTRACT_FIELDS | {"holdout"}
    assert record["holdout"] is True
    assert record["scores"] == {"churn_risk": 0.2, "contact_need": None}
    assert record["action_id"] == action_id_for("e1", "web", "direct_link")
