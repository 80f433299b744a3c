"""Loading journeys: checked like rules, every problem named by file, journey, step and field."""

from __future__ import annotations

import json
import textwrap

import pytest

from orchestrator.core.journeys import load_journey_directory, load_journey_set
from orchestrator.core.journeys.model import journey_file_json_schema
from orchestrator.core.rules import RuleSetError
from orchestrator.core.rules.limits import MAX_FILE_BYTES

from .factories import RULES_DIR, default_rules

GOOD = """
journeys:
  - id: cart
    description: remind about the cart
    entry: {event: [add_to_cart]}
    steps:
      - {id: pause, wait_s: 3600}
      - {id: remind, send: {channel: web, action: cart_reminder, payload: {url: /cart}}}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        load_journey_set({"journeys/j.yaml": textwrap.dedent(text)}, default_rules().lookups)
    return [str(e) for e in caught.value.errors]


def test_the_shipped_journeys_load_with_the_rule_sets_lookups() -> None:
    journeys = load_journey_directory(RULES_DIR / "journeys", default_rules().lookups)
    assert [j.id for j in journeys.journeys] == [
        "abandoned-cart", "anonymous-to-identified", "best-contact-channel", "churn-reaction"]
    assert journeys.version == "2026-11-26.1"


def test_a_wrong_value_in_a_step_names_file_journey_step_and_field() -> None:
    assert problems(GOOD.replace("wait_s: 3600", "wait_s: 0")) == [
        "journeys/j.yaml: journey 'cart': step 'pause': wait_s: must be at least 1, got 0"]


def test_conditions_are_the_rule_language_with_its_checks() -> None:
    text = GOOD.replace("entry: {event: [add_to_cart]}",
                        "entry: {event: [add_to_cart], when: {score: churn_risk, gte: 2}}")
    assert problems(text) == [
        "journeys/j.yaml: journey 'cart': entry.when.gte: must be at most 1, got 2"]
    text = GOOD.replace("entry: {event: [add_to_cart]}",
                        "entry: {event: [add_to_cart]}\n    goal: {field: event.tpye, eq: purchase}")
    assert problems(text) == ["journeys/j.yaml: journey 'cart': goal.field: unknown field "
                              "'event.tpye' (did you mean event.type?)"]


def test_payload_templates_are_checked_in_send_steps() -> None:
    text = GOOD.replace("payload: {url: /cart}", "payload: {url: '{lookup.nope[event.type]}'}")
    [problem] = problems(text)
    assert problem.startswith("journeys/j.yaml: journey 'cart': step 'remind': send.payload.url: ")
    assert "unknown lookup 'nope'" in problem


def test_a_target_must_be_a_later_step_so_journeys_never_loop() -> None:
    text = GOOD.replace("{id: pause, wait_s: 3600}", "{id: pause, wait_s: 3600, next: pause}")
    assert problems(text) == [
        "journeys/j.yaml: journey 'cart': step 'pause': next: 'pause' is this step or an earlier "
        "one (journeys do not loop); expected one of remind, exit"]
    assert "no such step" in problems(GOOD.replace("wait_s: 3600}", "wait_s: 3600, next: later}"))[0]


def test_a_step_is_exactly_one_kind() -> None:
    text = GOOD.replace("{id: pause, wait_s: 3600}", "{id: pause, wait_s: 3600, split: {holdout_percent: 5}}")
    [problem] = problems(text)
    assert "step 'pause'" in problem and "exactly one of send, wait_s, wait_for, branch, split" in problem


def test_unknown_keys_get_a_did_you_mean() -> None:
    [problem] = problems(GOOD.replace("wait_s: 3600", "wait_s: 3600, nxt: remind"))
    assert problem == "journeys/j.yaml: journey 'cart': step 'pause': nxt: unknown key (did you mean 'next'?)"


def test_ids_are_unique_across_files_and_steps_within_a_journey() -> None:
    with pytest.raises(RuleSetError) as caught:
        load_journey_set({"journeys/a.yaml": GOOD, "journeys/b.yaml": GOOD})
    assert [str(e) for e in caught.value.errors] == [
        "journeys/b.yaml: journey 'cart': id: the id is already used by a journey in journeys/a.yaml"]
    [problem] = problems(GOOD.replace("id: remind", "id: pause"))
    assert "two steps are called 'pause'" in problem


def test_duplicate_keys_and_yaml_limits_are_the_rule_loaders() -> None:
    [problem] = problems(GOOD.replace("wait_s: 3600}", "wait_s: 3600, wait_s: 60}"))
    assert "duplicate key" in problem and "step 'pause'" in problem
    with pytest.raises(RuleSetError) as caught:
        load_journey_set({"journeys/big.yaml": "#" * (MAX_FILE_BYTES + 1)})
    assert "at most 262144" in str(caught.value)
    assert "not valid YAML" in problems("journeys: [\n")[0]


def test_the_json_schema_file_is_current() -> None:
    written = json.loads((RULES_DIR / "journeys" / "schema.json").read_text())
    assert written == journey_file_json_schema()


def test_a_journeys_goal_is_described_as_a_person_reads_it() -> None:
    from orchestrator.core.journeys.loader import describe_condition

    assert describe_condition({"field": "event.type", "in": ["login", "signup"]}) == \
        "event.type in login, signup"
    assert describe_condition({"any": [{"field": "event.type", "eq": "login"},
                                       {"all": [{"field": "a", "gte": 3},
                                                {"field": "b", "exists": False}]}]}) == \
        "event.type = login or (a ≥ 3 and b is missing)"
    # what has no plain form is shown as written
    assert describe_condition({"count": {"event_type": "page_view"}, "gte": 3}) == \
        '{"count":{"event_type":"page_view"},"gte":3}'
