"""The customer-context record: what an agent or a web team sees about one person.

Built from the profile alone, newest first in every list, bounded, and plain JSON.
"""

from __future__ import annotations

import orjson

from orchestrator.core.context import CONTEXT_ACTIONS, CONTEXT_PAGES, context_record
from orchestrator.core.events import Event
from orchestrator.core.profile import Profile, apply_event, record_sent
from orchestrator.core.stage import journey_stage, open_case

from .factories import MINUTE, T0, click, contact, feedback, page_view

UPDATED = T0 + 10**6


def profile_of(*events: Event, person_id: str = "c1") -> Profile:
    profile = Profile(person_id=person_id)
    for event in events:
        apply_event(profile, event)
    return profile


def send(profile: Profile, n: int, ts: int, *, holdout: bool = False) -> None:
    record_sent(profile, {"action_id": f"a{n}", "action": "direct_link", "channel": "web"},
                f"k{n}", ts, holdout=holdout)


def busy_customer() -> Profile:
    """A logged-in customer on two devices with more pages and actions than the record shows,
    contacts, scores and an open case."""
    events: list[Event] = [click("login", "login", T0, "v1", customer_id="c1", session_id="s1")]
    events += [page_view(f"p{n}", f"/page/{n}", "billing" if n % 2 else "products", T0 + n * MINUTE,
                         session_id="s1" if n < 8 else "s2", visitor_id="v1" if n < 8 else "v2",
                         customer_id="c1")
               for n in range(1, 16)]
    events += [contact("k1", "case_opened", T0 + 2 * MINUTE, reason="billing", sentiment=-0.3),
               contact("k2", "contact_ended", T0 + 3 * MINUTE, sentiment=0.1)]
    profile = profile_of(*events)
    for n in range(CONTEXT_ACTIONS + 4):
        send(profile, n, T0 + n * MINUTE + 1, holdout=n % 3 == 0)
    apply_event(profile, feedback("a12", "clicked", T0 + 13 * MINUTE))
    profile.scores = {"upgrade": 0.25, "churn": None}
    return profile


def roundtrip(record: dict) -> dict:
    return orjson.loads(orjson.dumps(record))


def test_recent_pages_are_the_newest_first_bounded_to_context_pages() -> None:
    profile = busy_customer()
    assert len(profile.recent_pages) > CONTEXT_PAGES
    pages = context_record(profile, UPDATED)["recent_pages"]
    assert [p["url"] for p in pages] == [f"/page/{n}" for n in range(15, 15 - CONTEXT_PAGES, -1)]
    assert pages[0] == {"ts": T0 + 15 * MINUTE, "url": "/page/15", "category": "billing"}


def test_recent_actions_are_the_newest_first_bounded_to_context_actions_with_their_outcome() -> None:
    profile = busy_customer()
    assert len(profile.recent_actions) > CONTEXT_ACTIONS
    actions = context_record(profile, UPDATED)["recent_actions"]
    newest = CONTEXT_ACTIONS + 3
    assert [a["action_id"] for a in actions] == [f"a{n}" for n in range(newest, newest - CONTEXT_ACTIONS, -1)]
    assert actions[1] == {"action_id": "a12", "action": "direct_link", "channel": "web",
                          "ts": T0 + 12 * MINUTE + 1, "outcome": "clicked", "holdout": True}
    assert actions[0]["outcome"] is None


def test_the_holdout_flag_is_shown_only_for_held_out_actions() -> None:
    actions = context_record(busy_customer(), UPDATED)["recent_actions"]
    for action in actions:
        held_out = int(action["action_id"][1:]) % 3 == 0
        assert ("holdout" in action) is held_out
        if held_out:
            assert action["holdout"] is True


def test_each_recent_action_says_why_it_was_sent_rule_reason_and_the_scores_it_saw() -> None:
    profile = profile_of(page_view("p1", "/billing", "billing", T0))
    record_sent(profile, {"action_id": "a1", "action": "login_prompt", "channel": "web",
                          "rule": "self-service-login-prompt",
                          "payload": {"reason": "3 self-service pages read this session"},
                          "scores": {"login_propensity": 0.8, "churn_risk": None}}, "k1", T0)
    [action] = roundtrip(context_record(profile, UPDATED))["recent_actions"]
    assert action["rule"] == "self-service-login-prompt"
    assert action["reason"] == "3 self-service pages read this session"
    assert action["scores"] == {"login_propensity": 0.8, "churn_risk": None}


def test_an_action_without_reason_or_scores_has_only_its_rule() -> None:
    profile = profile_of(page_view("p1", "/billing", "billing", T0))
    record_sent(profile, {"action_id": "a1", "action": "direct_link", "channel": "web",
                          "rule": "self-service-direct-link", "payload": {"url": "/account"},
                          "scores": {}}, "k1", T0)
    [action] = context_record(profile, UPDATED)["recent_actions"]
    assert action["rule"] == "self-service-direct-link"
    assert "reason" not in action and "scores" not in action


def test_recent_contacts_are_newest_first() -> None:
    contacts = context_record(busy_customer(), UPDATED)["recent_contacts"]
    assert [c["type"] for c in contacts] == ["contact_ended", "case_opened"]
    assert contacts[1] == {"ts": T0 + 2 * MINUTE, "type": "case_opened", "channel": "phone",
                           "reason": "billing", "sentiment": -0.3}


def test_visitor_ids_are_newest_first() -> None:
    record = context_record(busy_customer(), UPDATED)
    assert record["visitor_ids"] == ["v2", "v1"]
    older_device_back = busy_customer()
    apply_event(older_device_back, click("late", ts=T0 + 20 * MINUTE, visitor_id="v1"))
    assert context_record(older_device_back, UPDATED)["visitor_ids"] == ["v1", "v2"]


def test_scores_carry_trust_and_the_model_version_when_given() -> None:
    profile = busy_customer()
    assert context_record(profile, UPDATED)["scores"] == {
        "churn": {"score": None, "trusted": False, "model": None},
        "upgrade": {"score": 0.25, "trusted": True, "model": None},
    }
    versions = {"upgrade": "upgrade-v3", "churn": "churn-v1"}
    assert context_record(profile, UPDATED, versions)["scores"] == {
        "churn": {"score": None, "trusted": False, "model": "churn-v1"},
        "upgrade": {"score": 0.25, "trusted": True, "model": "upgrade-v3"},
    }


def test_the_record_is_plain_json_and_unchanged_by_a_round_trip() -> None:
    record = context_record(busy_customer(), UPDATED, {"upgrade": "upgrade-v3"})
    assert roundtrip(record) == record


def test_the_record_describes_the_person_and_their_current_session() -> None:
    profile = busy_customer()
    record = context_record(profile, UPDATED)
    assert (record["person_id"], record["customer_id"], record["logged_in"]) == ("c1", "c1", True)
    assert record["session"] == {"id": "s2", "started_ts": T0 + 8 * MINUTE, "last_ts": T0 + 15 * MINUTE,
                                 "topics": {"products": 4, "billing": 4}}
    assert (record["sessions"], record["events_seen"]) == (2, 16 + 2 + 1)
    assert (record["first_seen_ts"], record["as_of_ts"], record["updated_ts"]) == \
        (T0, T0 + 15 * MINUTE, UPDATED)
    assert record["consent"] == {"service": True, "marketing": False}


def test_stage_and_open_case_are_those_of_the_stage_rules() -> None:
    profile = busy_customer()
    record = context_record(profile, UPDATED)
    assert (record["stage"], record["open_case"]) == (journey_stage(profile), open_case(profile))
    assert (record["stage"], record["open_case"]) == ("retention", "billing")
    apply_event(profile, contact("k3", "case_resolved", T0 + 16 * MINUTE, reason="billing"))
    assert context_record(profile, UPDATED)["open_case"] is None


def test_a_contact_only_profile_has_no_session_block() -> None:
    record = context_record(profile_of(contact("k1", "contact_started", T0)), UPDATED)
    assert record["session"] is None
    assert (record["sessions"], record["visitor_ids"], record["recent_pages"]) == (0, [], [])
    assert record["stage"] == "retention"
    assert roundtrip(record) == record


def test_a_window_session_has_no_session_id() -> None:
    record = context_record(profile_of(click("e1", ts=T0), person_id="v1"), UPDATED)
    assert record["session"] is not None
    assert record["session"]["id"] is None
    assert record["session"]["started_ts"] == record["session"]["last_ts"] == T0


def test_changing_the_record_does_not_change_the_profile() -> None:
    profile = busy_customer()
    before = profile.to_dict()
    record = context_record(profile, UPDATED)
    record["recent_pages"][0]["url"] = "/changed"
    record["recent_contacts"][0]["reason"] = "changed"
    record["consent"]["marketing"] = True
    record["session"]["topics"]["billing"] = 99
    assert profile.to_dict() == before
