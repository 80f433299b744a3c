"""What an event counts for in the rule analytics: sends, holdouts, feedback, and goal
conversions of the treated and the held-out group within the attribution window."""

from __future__ import annotations

from typing import Any

from orchestrator.core.analytics import (
    ATTRIBUTION_WINDOW_MS,
    GoalIndex,
    RuleTally,
    facts_of,
    newcombe_interval,
    rule_report,
)
from orchestrator.core.events import Event
from orchestrator.core.journey import Trigger, process_event
from orchestrator.core.profile import Profile
from orchestrator.core.rules import RuleSet, in_holdout
from tests.unit.factories import MINUTE, T0, click, feedback, page_view, self_service_rules

RULE = "self-service-login-prompt"


def rules(holdout_percent: float = 0, **fields: Any) -> RuleSet:
    return self_service_rules(login_prompt={"holdout_percent": holdout_percent, "goal": ["login"],
                                            **fields})


class Shell:
    """What the worker does per event: decide, then count the facts of applied events."""

    def __init__(self, rule_set: RuleSet) -> None:
        self.rule_set = rule_set
        self.goals = GoalIndex.of(rule_set)
        self.tally = RuleTally()
        self.profiles: dict[str, Profile] = {}
        self.actions: list[dict[str, Any]] = []

    def handle(self, person: str, event: Event) -> None:
        outcome = process_event(event, person, self.profiles.get(person), Trigger(event.ts, event.ts),
                                self.rule_set)
        if outcome.replay or outcome.erased or outcome.profile is None:
            return
        self.profiles[person] = outcome.profile
        self.actions += outcome.actions
        self.tally.add_all(facts_of(event, outcome.profile, outcome.actions, outcome.held_out,
                                    self.goals))

    def counts(self) -> dict[str, int]:
        return self.tally.counts().get((RULE, "login_prompt"), {})


def read_three_pages(shell: Shell, visitor: str, start: int = T0) -> None:
    for n, category in enumerate(["billing", "invoices", "moving"]):
        shell.handle(visitor, page_view(f"{visitor}-p{n}", f"/{category}", category,
                                        ts=start + n * MINUTE, visitor_id=visitor))


def log_in(shell: Shell, visitor: str, ts: int, n: int = 0) -> None:
    # The person stays keyed by the visitor here: attribution reads the profile, not the key.
    shell.handle(visitor, click(f"{visitor}-login{n}", "login", ts, visitor))


def test_a_prompt_followed_by_a_login_converts_once_for_the_treated_group() -> None:
    shell = Shell(rules())
    read_three_pages(shell, "v1")
    log_in(shell, "v1", T0 + 10 * MINUTE)
    log_in(shell, "v1", T0 + 20 * MINUTE, n=1)
    assert shell.counts()["sent"] == 1
    assert shell.counts()["goal_treated"] == 1, "the second login converts no decision again"
    assert shell.counts()["goal_held_out"] == 0


def test_a_held_out_decision_followed_by_a_login_converts_for_the_control_group() -> None:
    shell = Shell(rules(holdout_percent=100))
    read_three_pages(shell, "v1")
    log_in(shell, "v1", T0 + 10 * MINUTE)
    assert not shell.actions, "the control group gets nothing"
    assert (shell.counts()["held_out"], shell.counts()["goal_held_out"]) == (1, 1)
    assert shell.counts()["sent"] == shell.counts()["goal_treated"] == 0


def test_a_login_after_the_attribution_window_converts_nothing() -> None:
    shell = Shell(rules())
    read_three_pages(shell, "v1")
    log_in(shell, "v1", T0 + 2 * MINUTE + ATTRIBUTION_WINDOW_MS + 1)
    assert shell.counts()["sent"] == 1
    assert shell.counts()["goal_treated"] == 0


def test_a_login_before_the_prompt_is_no_conversion_of_it() -> None:
    shell = Shell(rules())
    log_in(shell, "v1", T0 - MINUTE)
    assert shell.counts() == {}


def test_feedback_counts_per_outcome_once_and_not_for_unknown_actions() -> None:
    shell = Shell(rules())
    read_three_pages(shell, "v1")
    [prompt] = shell.actions
    for outcome in ("shown", "clicked", "clicked"):  # the repeated one is a replay
        shell.handle("v1", feedback(prompt["action_id"], outcome, T0 + 5 * MINUTE))
    shell.handle("v1", feedback("not-an-action-of-ours", "converted", T0 + 6 * MINUTE))
    counts = shell.counts()
    assert (counts["shown"], counts["clicked"], counts["dismissed"], counts["converted"]) == (1, 1, 0, 0)


def test_an_event_that_is_none_of_these_allocates_nothing() -> None:
    shell = Shell(rules())
    shell.handle("v1", page_view("e1", "/products", "products", visitor_id="v1"))
    profile = shell.profiles["v1"]
    event = page_view("e2", "/offers", "offers", ts=T0 + 1, visitor_id="v1")
    assert facts_of(event, profile, [], [], shell.goals) is facts_of(event, profile, [], [], shell.goals)
    assert facts_of(event, profile, [], [], shell.goals) == ()


def test_a_population_with_a_known_effect_gives_its_counts_and_uplift() -> None:
    """400 visitors, half held out by the rule's hash; 60 % of the prompted and 30 % of the
    held-out log in (every 10th person in order, by index): the report has exactly those."""
    shell = Shell(rules(holdout_percent=50))
    treated = held = treated_in = held_in = 0
    for n in range(400):
        visitor = f"v-{n}"
        start = T0 + n * 10 * MINUTE
        read_three_pages(shell, visitor, start)
        in_control = in_holdout(visitor, RULE, 50)
        logs_in = n % 10 < (3 if in_control else 6)
        if logs_in:
            log_in(shell, visitor, start + 30 * MINUTE)
        held += in_control
        treated += not in_control
        held_in += in_control and logs_in
        treated_in += (not in_control) and logs_in
    assert 150 < held < 250
    [entry] = [e for e in rule_report(shell.tally.counts(), shell.rule_set) if e["rule"] == RULE]
    assert (entry["sent"], entry["held_out"]) == (treated, held)
    assert (entry["goal_treated"], entry["goal_held_out"]) == (treated_in, held_in)
    assert entry["treated_rate"] == treated_in / treated
    assert entry["held_out_rate"] == held_in / held
    assert entry["uplift"] == treated_in / treated - held_in / held
    assert (entry["uplift_low"], entry["uplift_high"]) == newcombe_interval(treated_in, treated,
                                                                            held_in, held)
    assert 0.1 < entry["uplift_low"] < 0.3 < entry["uplift_high"] < 0.45
    assert entry["goal"] == ["login"] and entry["holdout_percent"] == 50 and entry["live"]


def test_the_report_lists_every_rule_and_rules_no_longer_in_the_set() -> None:
    tally = RuleTally()
    tally.add(("retired-rule", "nudge", "sent"))
    report = rule_report(tally.counts(), rules())
    assert [(e["rule"], e["live"]) for e in report] == [
        (RULE, True), ("self-service-direct-link", True), ("retired-rule", False)]
    direct = report[1]
    assert direct["sent"] == 0 and direct["uplift"] is None and direct["treated_rate"] is None
    assert report[2]["sent"] == 1 and report[2]["goal"] is None
