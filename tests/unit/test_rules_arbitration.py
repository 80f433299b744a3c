"""Arbitration: candidates, suppression causes, caps, consent, holdout, validity and the winner."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.events import Event
from orchestrator.core.profile import Consent, Profile, Register, apply_event, record_sent
from orchestrator.core.rules import Arbitration, Decision, RuleSet, Suppressed, decide, in_holdout
from orchestrator.core.rules.model import iso_ms

from .factories import MINUTE, SECOND, T0, click, contact, page_view, rule, rule_set

DAY = 24 * 3600 * SECOND
VIEW = page_view("e1", "/billing/faq", "billing", T0)


def arbitrate(rules: RuleSet, event: Event = VIEW, profile: Profile | None = None,
              scores: dict[str, float | None] | None = None, now_ms: int | None = None) -> Arbitration:
    profile = profile or Profile(person_id="v1")
    apply_event(profile, event)
    return decide(rules, event, profile, scores or {}, event.ts if now_ms is None else now_ms)


def chosen_rules(arbitration: Arbitration) -> list[str]:
    return [d.rule for d in arbitration.chosen]


class Person:
    """Events one after another, sends recorded as the journey step records them."""

    def __init__(self, rules: RuleSet, person_id: str = "v1") -> None:
        self.rules = rules
        self.profile = Profile(person_id=person_id)
        self.n = 0

    def event(self, event: Event, scores: dict | None = None) -> Arbitration:
        assert apply_event(self.profile, event)
        result = decide(self.rules, event, self.profile, scores or {}, event.ts)
        for decision in [*result.chosen, *result.held_out]:
            record_sent(self.profile, {"action_id": f"a{event.ts}", "action": decision.action,
                                       "channel": decision.channel}, decision.cap_key, event.ts,
                        holdout=decision.holdout)
        return result

    def view(self, ts: int, category: str = "billing", url: str = "/x") -> Arbitration:
        self.n += 1
        return self.event(page_view(f"p{self.n}", url, category, ts))

    def causes(self, result: Arbitration) -> list[str]:
        return [s.cause for s in result.suppressed]


# ---------------------------------------------------------------- the decision

def test_a_firing_rule_becomes_a_decision_with_its_fields() -> None:
    rules = rule_set(rule(id="r", action="nudge", channel="email", payload={"topic": "{event.page.category}"},
                          value=2, weight=1.5, consent="service", expires_after_s=60))
    [decision] = arbitrate(rules).chosen
    assert decision == Decision(action="nudge", channel="email", rule="r", payload={"topic": "billing"},
                                cap_key="nudge:billing", expires_after_ms=60_000,
                                consent_category="service", score=3.0, holdout=False)


def test_rule_whose_condition_is_false_is_not_a_candidate() -> None:
    rules = rule_set(rule(when={"field": "event.page.category", "eq": "moving"}))
    assert arbitrate(rules) == Arbitration([], [], [])


def test_rule_with_a_missing_template_value_does_not_fire_and_is_not_suppressed() -> None:
    rules = rule_set(rule(payload={"reason": "{event.reason}"}))
    assert arbitrate(rules) == Arbitration([], [], [])
    with_default = rule_set(rule(payload={"reason": "{event.reason|default:none}"}))
    assert arbitrate(with_default).chosen[0].payload == {"reason": "none"}


# ---------------------------------------------------------------- arbitration order

def test_highest_value_times_propensity_times_weight_wins_the_channel() -> None:
    rules = rule_set(
        rule(id="a", action="a", value=3),                                  # 3
        rule(id="b", action="b", value=10, propensity="buy"),               # 10 x 0.4 = 4
        rule(id="c", action="c", value=2, weight=1.9),                      # 3.8
    )
    result = arbitrate(rules, scores={"buy": 0.4})
    assert [(d.rule, d.score) for d in result.chosen] == [("b", pytest.approx(4.0))]
    assert result.suppressed == [Suppressed("a", "lost", "a", "web"), Suppressed("c", "lost", "c", "web")]
    assert chosen_rules(arbitrate(rules, scores={"buy": 0.2})) == ["c"]


def test_ties_go_to_the_higher_priority_then_to_the_lower_rule_id() -> None:
    rules = rule_set(rule(id="b", action="b", priority=1), rule(id="a", action="a"),
                     rule(id="c", action="c", priority=1))
    assert chosen_rules(arbitrate(rules)) == ["b"]
    same = rule_set(rule(id="zeta", action="z"), rule(id="alpha", action="a"))
    assert chosen_rules(arbitrate(same)) == ["alpha"]


def test_one_action_per_channel_and_each_channel_decides_alone() -> None:
    rules = rule_set(rule(id="w1", action="a"), rule(id="w2", action="b", value=2),
                     rule(id="e1", action="c", channel="email"),
                     rule(id="cc", action="d", channel="contact-centre", value=0.1))
    result = arbitrate(rules)
    assert [(d.channel, d.rule) for d in result.chosen] == [
        ("contact-centre", "cc"), ("email", "e1"), ("web", "w2")]


def test_missing_or_untrusted_propensity_score_keeps_the_rule_out() -> None:
    rules = rule_set(rule(id="p", action="p", propensity="contact_need", value=100), rule(id="q", action="q"))
    assert chosen_rules(arbitrate(rules)) == ["q"]
    assert chosen_rules(arbitrate(rules, scores={"contact_need": None})) == ["q"]
    assert chosen_rules(arbitrate(rules, scores={"contact_need": float("nan")})) == ["q"]
    assert chosen_rules(arbitrate(rules, scores={"contact_need": 0.5})) == ["p"]


def test_a_candidate_worth_nothing_is_not_sent() -> None:
    assert arbitrate(rule_set(rule(weight=0))).chosen == []
    assert arbitrate(rule_set(rule(value=0))).chosen == []
    assert arbitrate(rule_set(rule(propensity="x")), scores={"x": 0.0}).chosen == []


# ---------------------------------------------------------------- validity windows

@pytest.mark.parametrize(("now", "fires"), [
    ("2026-11-30T23:59:59.999Z", False), ("2026-12-01T00:00:00Z", True),
    ("2026-12-24T12:00:00Z", True), ("2026-12-31T23:59:59.999Z", True),
    ("2027-01-01T00:00:00Z", False)])
def test_validity_window_is_judged_at_decision_time(now: str, fires: bool) -> None:
    rules = rule_set(rule(valid_from="2026-12-01T00:00:00Z", valid_until="2027-01-01T00:00:00Z"))
    assert bool(arbitrate(rules, now_ms=iso_ms(now)).chosen) is fires


def test_open_ended_windows() -> None:
    starts = rule_set(rule(valid_from="2026-12-01T00:00:00Z"))
    ends = rule_set(rule(valid_until="2026-12-01T00:00:00Z"))
    assert arbitrate(starts, now_ms=iso_ms("2030-01-01T00:00:00Z")).chosen
    assert not arbitrate(ends, now_ms=iso_ms("2026-12-01T00:00:00Z")).chosen
    assert arbitrate(ends, now_ms=iso_ms("2026-11-01T00:00:00Z")).chosen


# ---------------------------------------------------------------- consent

def test_consent_is_checked_per_category() -> None:
    service = rule_set(rule(id="s", action="s", consent="service"))
    marketing = rule_set(rule(id="m", action="m", consent="marketing"))
    assert arbitrate(service).chosen and not arbitrate(marketing).chosen
    assert arbitrate(marketing).suppressed == [Suppressed("m", "consent", "m", "web")]
    opted_in = Profile(person_id="v1", consent=Register(0, 0, Consent(service=False, marketing=True)))
    assert arbitrate(marketing, profile=opted_in).chosen
    assert arbitrate(service, profile=opted_in).suppressed == [Suppressed("s", "consent", "s", "web")]


def test_a_suppressed_rule_leaves_the_channel_to_the_next_best() -> None:
    rules = rule_set(rule(id="big", action="big", value=9, consent="marketing"),
                     rule(id="small", action="small"))
    result = arbitrate(rules)
    assert chosen_rules(result) == ["small"]
    assert result.suppressed == [Suppressed("big", "consent", "big", "web")]


# ---------------------------------------------------------------- caps

def test_cooldown_runs_on_event_time() -> None:
    person = Person(rule_set(rule(caps={"cooldown_s": 60})))
    assert person.view(T0).chosen
    assert person.causes(person.view(T0 + 60 * SECOND - 1)) == ["cooldown"]
    assert person.view(T0 + 60 * SECOND).chosen


def test_cap_per_action_and_topic_is_the_default() -> None:
    person = Person(rule_set(rule(caps={"cooldown_s": 600})))
    assert person.view(T0, "billing").chosen[0].cap_key == "nudge:billing"
    assert person.view(T0 + SECOND, "moving").chosen
    assert person.causes(person.view(T0 + 2 * SECOND, "billing")) == ["cooldown"]


def test_cap_per_action_is_shared_by_rules_of_that_action() -> None:
    rules = rule_set(rule(id="a", action="nudge", caps={"cooldown_s": 600, "per": "action"},
                          when={"field": "event.page.category", "eq": "billing"}),
                     rule(id="b", action="nudge", caps={"cooldown_s": 600, "per": "action"},
                          when={"field": "event.page.category", "eq": "moving"}))
    person = Person(rules)
    assert person.view(T0, "billing").chosen[0].cap_key == "nudge"
    assert person.causes(person.view(T0 + SECOND, "moving")) == ["cooldown"]


def test_cap_per_rule() -> None:
    rules = rule_set(rule(id="a", action="nudge", caps={"cooldown_s": 600, "per": "rule"},
                          when={"field": "event.page.category", "eq": "billing"}),
                     rule(id="b", action="nudge", caps={"cooldown_s": 600, "per": "rule"},
                          when={"field": "event.page.category", "eq": "moving"}))
    person = Person(rules)
    assert person.view(T0, "billing").chosen[0].cap_key == "rule:a"
    assert person.view(T0 + SECOND, "moving").chosen[0].cap_key == "rule:b"
    assert person.causes(person.view(T0 + 2 * SECOND, "billing")) == ["cooldown"]


def test_contact_reason_is_the_topic_of_a_contact_centre_event() -> None:
    rules = rule_set(rule(channel="contact-centre", when={"field": "event.type", "eq": "contact_started"}))
    result = arbitrate(rules, contact("k1", "contact_started", T0, reason="billing"), Profile(person_id="c1"))
    assert result.chosen[0].cap_key == "nudge:billing"


def test_max_per_day_counts_sends_in_any_24_hours() -> None:
    person = Person(rule_set(rule(caps={"max_per_day": 2})))
    assert person.view(T0).chosen and person.view(T0 + MINUTE).chosen
    assert person.causes(person.view(T0 + 2 * MINUTE)) == ["cap"]
    assert person.causes(person.view(T0 + DAY - 1)) == ["cap"]
    assert person.view(T0 + DAY).chosen  # the first send left the window
    assert person.causes(person.view(T0 + DAY + SECOND)) == ["cap"]


def test_max_per_week_counts_sends_in_any_7_days() -> None:
    person = Person(rule_set(rule(caps={"max_per_week": 3})))
    for day in range(3):
        assert person.view(T0 + day * DAY).chosen
    for day in range(3, 7):
        assert person.causes(person.view(T0 + day * DAY)) == ["cap"]
    assert person.view(T0 + 7 * DAY).chosen


def test_caps_combine_and_cooldown_is_checked_first() -> None:
    person = Person(rule_set(rule(caps={"cooldown_s": 3600, "max_per_day": 1})))
    assert person.view(T0).chosen
    assert person.causes(person.view(T0 + MINUTE)) == ["cooldown"]
    assert person.causes(person.view(T0 + 2 * 3600 * SECOND)) == ["cap"]


def test_stop_after_an_event_type_the_person_did_ever() -> None:
    rules = rule_set(rule(caps={"stop_after": ["purchase", "callback_requested"]}))
    person = Person(rules)
    assert person.view(T0).chosen
    person.event(click("buy", "purchase", T0 + SECOND, session_id="s1"))
    assert person.causes(person.view(T0 + 10 * DAY)) == ["stopped"]
    caller = Person(rule_set(rule(channel="contact-centre", caps={"stop_after": ["callback_requested"]},
                                  when={"field": "event.type", "eq": "contact_started"})), "c1")
    assert caller.event(contact("k1", "contact_started", T0)).chosen
    caller.event(contact("k2", "callback_requested", T0 + SECOND))
    assert caller.causes(caller.event(contact("k3", "contact_started", T0 + 2 * SECOND))) == ["stopped"]


def test_stop_is_checked_before_consent() -> None:
    rules = rule_set(rule(consent="marketing", caps={"stop_after": ["page_view"]}))
    assert [s.cause for s in arbitrate(rules).suppressed] == ["stopped"]


def test_already_there_compares_page_paths() -> None:
    rules = rule_set(rule(already_there="lookup.pages[event.page.category]"),
                     lookups={"pages": {"billing": "https://example.com/billing/faq/"}})
    assert [s.cause for s in arbitrate(rules).suppressed] == ["already_there"]
    elsewhere = page_view("e2", "/billing", "billing", T0)
    assert arbitrate(rules, elsewhere).chosen
    no_entry = page_view("e3", "/billing/faq", "moving", T0)
    assert arbitrate(rules, no_entry).chosen


# ---------------------------------------------------------------- holdout

def test_holdout_is_a_stable_function_of_person_and_rule() -> None:
    ids = [f"v-{i}" for i in range(200)]
    first = [in_holdout(p, "rule-a", 30) for p in ids]
    assert first == [in_holdout(p, "rule-a", 30) for p in ids]
    assert first != [in_holdout(p, "rule-b", 30) for p in ids]


@pytest.mark.parametrize("percent", [1, 10, 25, 50, 90])
def test_holdout_puts_about_the_right_share_of_people_in_the_control_group(percent: float) -> None:
    n = 20_000
    share = sum(in_holdout(f"person-{i}", "r", percent) for i in range(n)) / n * 100
    assert abs(share - percent) < 1.0


def test_holdout_groups_grow_with_the_percentage() -> None:
    ids = [f"p{i}" for i in range(2000)]
    at_10 = {p for p in ids if in_holdout(p, "r", 10)}
    at_20 = {p for p in ids if in_holdout(p, "r", 20)}
    assert at_10 < at_20


def test_held_out_winner_is_decided_and_recorded_but_nothing_goes_to_that_channel() -> None:
    rules = rule_set(rule(id="a", action="a", value=2, holdout_percent=100),
                     rule(id="b", action="b"),
                     rule(id="e", action="e", channel="email"))
    result = arbitrate(rules)
    assert chosen_rules(result) == ["e"]
    assert [(d.rule, d.holdout) for d in result.held_out] == [("a", True)]
    assert result.suppressed == [Suppressed("a", "holdout", "a", "web"), Suppressed("b", "lost", "b", "web")]


def test_control_group_is_paced_like_everyone_else() -> None:
    person = Person(rule_set(rule(holdout_percent=100, caps={"cooldown_s": 60})))
    assert person.view(T0).held_out
    assert person.causes(person.view(T0 + SECOND)) == ["cooldown"]
    assert person.profile.recent_actions[-1]["holdout"] is True


def test_holdout_zero_and_winners_outside_the_group_are_sent() -> None:
    rules = rule_set(rule(holdout_percent=50))
    outcomes = {pid: arbitrate(rules, profile=Profile(person_id=pid)) for pid in
                (f"v{i}" for i in range(40))}
    for pid, result in outcomes.items():
        assert bool(result.held_out) is in_holdout(pid, "r", 50)
        assert bool(result.chosen) is not in_holdout(pid, "r", 50)


# ---------------------------------------------------------------- properties

CHANNELS = ["web", "email", "contact-centre"]
RULE_DOCS = st.builds(
    lambda i, channel, value, weight, priority, propensity, holdout, category: rule(
        id=f"r{i:02d}", action=f"a{i % 4}", channel=channel, value=value, weight=weight,
        priority=priority, holdout_percent=holdout,
        **({"propensity": propensity} if propensity else {}),
        **({"when": {"field": "event.page.category", "eq": category}} if category else {})),
    st.integers(0, 99), st.sampled_from(CHANNELS), st.sampled_from([0, 0.5, 1, 2, 3]),
    st.sampled_from([0.5, 1, 2]), st.integers(-1, 2), st.sampled_from([None, "buy", "churn"]),
    st.sampled_from([0, 0, 50, 100]), st.sampled_from([None, "billing", "moving"]))
SCORES = st.fixed_dictionaries({}, optional={"buy": st.one_of(st.none(), st.floats(0, 1)),
                                             "churn": st.one_of(st.none(), st.floats(0, 1))})


def unique_ids(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({d["id"]: d for d in docs}.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(RULE_DOCS, min_size=1, max_size=12).map(unique_ids), SCORES,
       st.sampled_from(["billing", "moving", "products"]), st.integers(0, 2**32))
def test_arbitration_is_deterministic_whatever_the_rule_order(
        docs: list[dict[str, Any]], scores: dict[str, float | None], category: str, seed: int) -> None:
    event = page_view("e1", f"/{category}", category, T0)
    rules = rule_set(*docs)
    shuffled = list(docs)
    random.Random(seed).shuffle(shuffled)
    first = arbitrate(rules, event, scores=scores)
    assert arbitrate(rules, event, scores=scores) == first
    assert arbitrate(rule_set(*shuffled), event, scores=scores) == first


@settings(max_examples=60, deadline=None)
@given(st.lists(RULE_DOCS, min_size=1, max_size=12).map(unique_ids), SCORES,
       st.sampled_from(["billing", "moving", "products"]))
def test_never_two_actions_on_one_channel_for_one_trigger(
        docs: list[dict[str, Any]], scores: dict[str, float | None], category: str) -> None:
    result = arbitrate(rule_set(*docs), page_view("e1", f"/{category}", category, T0), scores=scores)
    decided = [d.channel for d in [*result.chosen, *result.held_out]]
    assert len(decided) == len(set(decided))
    for decision in result.chosen:  # the winner is at least as good as every candidate it beat
        lost = [s.rule for s in result.suppressed if s.cause == "lost" and s.channel == decision.channel]
        by_id = {d["id"]: d for d in docs}
        for rule_id in lost:
            doc = by_id[rule_id]
            p = 1.0 if "propensity" not in doc else scores[doc["propensity"]]
            assert doc["value"] * p * doc["weight"] <= decision.score + 1e-12
