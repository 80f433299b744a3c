"""One step of a journey: event and profile in, new profile and action records out."""

from __future__ import annotations

from orchestrator.core.actions import action_id_for
from orchestrator.core.journey import JourneyOutcome, Trigger, process_event
from orchestrator.core.profile import Profile
from orchestrator.core.scoring import IntentScorer, IntentSpec, ProfileScorer, StepResult

from .factories import SECOND, T0, click, contact, default_rules, feedback, page_view, self_service_rules

RULES = self_service_rules()


def trigger(ts: int) -> Trigger:
    return Trigger(record_kafka_ts=ts + 3, decided_ts=ts + 10)


def run(events: list, profile: Profile | None = None, person_id: str = "v1") -> list[JourneyOutcome]:
    outcomes = []
    for event in events:
        outcome = process_event(event, person_id, profile, trigger(event.ts), RULES)
        profile = outcome.profile
        outcomes.append(outcome)
    return outcomes


def three_billing_pages() -> list:
    return [page_view(f"e{i}", f"/billing/{i}", "billing", T0 + i * SECOND) for i in range(3)]


def test_first_event_creates_the_profile_for_the_person() -> None:
    (outcome,) = run([page_view("e1", "/", "home", T0)], person_id="v7")
    assert outcome.profile is not None
    assert outcome.profile.person_id == "v7"
    assert outcome.profile.events_seen == 1
    assert (outcome.actions, outcome.replay) == ([], False)


def test_third_self_service_page_yields_a_login_prompt_action_record() -> None:
    outcomes = run(three_billing_pages())
    assert [len(o.actions) for o in outcomes] == [0, 0, 1]
    (action,) = outcomes[-1].actions
    assert action["action"] == "login_prompt"
    assert action["action_id"] == action_id_for("e2", "web", "login_prompt")
    assert action["rule_set_version"] == "test-1"
    assert action["trigger_ts"] == T0 + 2 * SECOND + 3
    assert action["trigger_event_ts"] == T0 + 2 * SECOND
    assert action["decided_ts"] == T0 + 2 * SECOND + 10
    assert action["expires_ts"] == T0 + 2 * SECOND + 10 + 600_000


def test_sent_action_is_remembered_in_the_profile_for_cooldown_feedback_and_why() -> None:
    outcomes = run(three_billing_pages())
    profile = outcomes[-1].profile
    (action,) = outcomes[-1].actions
    assert profile.last_sent == {"login_prompt": T0 + 2 * SECOND}
    assert profile.recent_actions == [{"action_id": action["action_id"], "action": "login_prompt",
                                       "channel": "web", "ts": T0 + 2 * SECOND, "outcome": None,
                                       "rule": "self-service-login-prompt",
                                       "reason": "3 self-service pages read this session"}]


def test_feedback_on_a_sent_action_records_its_outcome_and_yields_no_action() -> None:
    outcomes = run(three_billing_pages())
    action_id = outcomes[-1].actions[0]["action_id"]
    (after,) = run([feedback(action_id, "clicked", T0 + 5 * SECOND)], outcomes[-1].profile)
    assert after.actions == []
    assert after.profile.recent_actions[0]["outcome"] == "clicked"


def test_erasure_request_on_the_web_returns_no_profile_and_no_actions() -> None:
    profile = run(three_billing_pages())[-1].profile
    outcome = process_event(click("x", "erasure_requested", T0 + 9 * SECOND), "v1", profile,
                            trigger(T0), RULES)
    assert outcome.profile is None
    assert (outcome.actions, outcome.replay) == ([], False)


def test_erasure_request_from_the_contact_centre_returns_no_profile() -> None:
    profile = Profile(person_id="c1", customer_id="c1")
    outcome = process_event(contact("x", "erasure_requested", T0, channel=None), "c1", profile,
                            trigger(T0), RULES)
    assert outcome.profile is None
    assert outcome.actions == []


def test_erasure_request_for_an_unknown_person_also_returns_no_profile() -> None:
    outcome = process_event(click("x", "erasure_requested", T0), "v1", None, trigger(T0), RULES)
    assert outcome.profile is None


def test_replayed_event_is_flagged_and_yields_no_action_again() -> None:
    events = three_billing_pages()
    outcomes = run(events)
    profile = outcomes[-1].profile
    before = profile.to_dict()
    replay = process_event(events[-1], "v1", profile, trigger(events[-1].ts), RULES)
    assert replay.replay is True
    assert replay.actions == []
    assert replay.profile is profile
    assert profile.to_dict() == before


def test_contact_centre_event_yields_no_actions_but_is_remembered() -> None:
    (outcome,) = run([contact("k1", "contact_started", T0, reason="billing", sentiment=-0.3)],
                     person_id="c1")
    assert outcome.actions == []
    assert outcome.replay is False
    assert outcome.profile.recent_contacts == [{"ts": T0, "type": "contact_started", "channel": "phone",
                                                "reason": "billing", "sentiment": -0.3}]
    assert outcome.profile.customer_id == "c1"


def test_logged_in_customer_journey_yields_a_direct_link_with_the_customer_id() -> None:
    outcomes = run([click("e0", "login", T0, session_id="s1", customer_id="c1"),
                    page_view("e1", "/help/moving", "moving", T0 + SECOND, customer_id="c1")])
    assert outcomes[0].actions == []
    (action,) = outcomes[1].actions
    assert (action["action"], action["customer_id"], action["visitor_id"]) == ("direct_link", "c1", "v1")
    assert action["payload"] == {"url": "/account/moving", "title": "Moving home", "topic": "moving"}


def test_cooldown_suppression_is_part_of_the_outcome() -> None:
    outcomes = run([*three_billing_pages(), page_view("e9", "/billing/9", "billing", T0 + 9 * SECOND)])
    assert outcomes[-1].actions == []
    assert [(s.action, s.cause) for s in outcomes[-1].suppressed] == [("login_prompt", "cooldown")]


def test_held_out_decision_is_recorded_in_the_profile_but_not_among_the_actions() -> None:
    rules = self_service_rules(login_prompt={"holdout_percent": 100})
    profile = None
    for event in three_billing_pages():
        outcome = process_event(event, "v1", profile, trigger(event.ts), rules)
        profile = outcome.profile
    assert outcome.actions == []
    (held,) = outcome.held_out
    assert held["holdout"] is True
    assert held["action"] == "login_prompt"
    assert held["action_id"] == action_id_for("e2", "web", "login_prompt")
    assert [(s.action, s.cause) for s in outcome.suppressed] == [("login_prompt", "holdout")]
    assert profile.last_sent == {"login_prompt": T0 + 2 * SECOND}
    assert profile.recent_actions[-1]["holdout"] is True


class FixedScorer:
    """An EventScorer that serves the same scores at every event and settles nothing."""

    def __init__(self, scores: dict[str, float | None]) -> None:
        self.scores = scores

    def score(self, profile: Profile, event: object, late: bool) -> StepResult:
        return StepResult(dict(self.scores), [], [], [])

    def versions(self) -> dict[str, str]:
        return {name: f"{name}.v1" for name in self.scores}

    def labels(self) -> dict[str, int]:
        return dict.fromkeys(self.scores, 1)


def test_the_scorers_scores_are_on_the_outcome_and_the_action_record() -> None:
    profile = None
    scores = {"churn_risk": 0.1, "contact_need": None}
    for event in three_billing_pages():
        outcome = process_event(event, "v1", profile, trigger(event.ts), RULES, FixedScorer(scores))
        profile = outcome.profile
    assert outcome.scores == scores
    assert outcome.actions[0]["scores"] == scores
    assert outcome.actions[0]["models"] == {"churn_risk": "churn_risk.v1", "contact_need": "contact_need.v1"}
    without = run(three_billing_pages())[-1]
    assert without.actions[0]["scores"] == {} and without.scores == {} and without.settled == ()


def test_the_labels_an_event_settles_are_on_its_outcome() -> None:
    spec = IntentSpec(name="login_propensity", outcome_event_types=("login",), horizon_s=1800,
                      min_labels=0)
    scorer = ProfileScorer(IntentScorer((spec,)))
    profile = None
    for event in [page_view("e1", "/billing/1", "billing", T0),
                  click("e2", "login", T0 + 60 * SECOND, customer_id="c1"),
                  page_view("e3", "/billing/2", "billing", T0 + 31 * 60 * SECOND)]:
        outcome = process_event(event, "v1", profile, trigger(event.ts), RULES, scorer)
        profile = outcome.profile
    (label,) = outcome.settled  # the login decided it; it is learned once its horizon is over
    assert (label.intent, label.label, label.snapshot_ts) == ("login_propensity", True, T0)


def test_contact_centre_event_can_trigger_a_contact_centre_action() -> None:
    outcome = process_event(contact("k1", "cancellation_requested", T0, reason="price"), "c1", None,
                            trigger(T0), default_rules())
    (alert,) = outcome.actions
    assert (alert["channel"], alert["action"], alert["person_id"]) == ("contact-centre", "churn_alert", "c1")
    assert alert["rule_set_version"] == default_rules().version
