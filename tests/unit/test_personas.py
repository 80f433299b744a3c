"""The simulator: seeded personas that speak the input contract, interleaved by TrafficPlan."""

from __future__ import annotations

import random
from collections.abc import Iterator

import orjson
import pytest

from orchestrator.core.events import Accepted, Rejected, Source, decode_record
from orchestrator.core.journey import Trigger, process_event
from orchestrator.simulate.personas import PERSONAS, Person, Step, new_journey
from orchestrator.simulate.traffic import MALFORMED_SAMPLES, TrafficPlan

from .factories import SECOND, T0, default_rules

SEEDS = range(12)


def journey_steps(seed: int, persona: str | None = None, journeys: int = 1) -> list[tuple[str, list[Step]]]:
    rng = random.Random(seed)
    result = []
    for _ in range(journeys):
        name, steps = new_journey(rng, persona)
        result.append((name, list(steps)))
    return result


def stamped(steps: list[Step], start: int = T0) -> Iterator[tuple[Step, bytes, int]]:
    """Each step as the traffic runner sends it: the value with a ts, the think time elapsed."""
    ts = start
    for step in steps:
        yield step, orjson.dumps(dict(step.value, ts=ts)), ts
        ts += int(step.think_s * 1000)


def decoded(step: Step, raw: bytes, now_ms: int) -> Accepted | Rejected:
    return decode_record(step.source, step.key.encode(), raw, now_ms=now_ms)


def test_same_seed_gives_the_same_journeys() -> None:
    assert journey_steps(7, journeys=20) == journey_steps(7, journeys=20)


def test_different_seeds_give_different_journeys() -> None:
    assert journey_steps(1, journeys=5) != journey_steps(2, journeys=5)


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_named_persona_is_the_one_that_runs(persona: str) -> None:
    (name, steps), = journey_steps(3, persona)
    assert name == persona
    assert steps


def test_persona_weights_sum_to_one() -> None:
    assert sum(weight for _, weight in PERSONAS.values()) == pytest.approx(1.0)


def test_prospects_never_carry_a_customer_id() -> None:
    for seed in SEEDS:
        (_, steps), = journey_steps(seed, "prospect")
        assert all("customer_id" not in step.value for step in steps)
        assert all(step.source is Source.CLICKSTREAM for step in steps)


def test_each_journey_is_one_person_keyed_as_the_contract_says() -> None:
    for seed in SEEDS:
        for name, steps in journey_steps(seed, journeys=10):
            visitors = {s.value["visitor_id"] for s in steps if s.source is Source.CLICKSTREAM}
            customers = {s.value["customer_id"] for s in steps if "customer_id" in s.value}
            assert len(visitors) <= 1, name
            assert len(customers) <= 1, name
            for step in steps:
                expected = "visitor_id" if step.source is Source.CLICKSTREAM else "customer_id"
                assert step.key == step.value[expected]


@pytest.mark.parametrize("persona", [None, *sorted(PERSONAS)])
def test_every_step_of_every_persona_decodes_as_accepted_once_stamped(persona: str | None) -> None:
    for seed in SEEDS:
        for name, steps in journey_steps(seed, persona, journeys=5):
            for step, raw, ts in stamped(steps):
                result = decoded(step, raw, now_ms=ts)
                assert isinstance(result, Accepted), (name, step, result)
                assert result.key == step.key
                assert result.event.ts == ts


def test_event_ids_are_unique_within_a_run() -> None:
    ids = [step.value["event_id"] for seed in SEEDS for _, steps in journey_steps(seed, journeys=10)
           for step in steps]
    assert len(ids) == len(set(ids))


def test_think_times_are_positive() -> None:
    assert all(step.think_s > 0 for seed in SEEDS for _, steps in journey_steps(seed, journeys=10)
               for step in steps)


def test_person_adds_the_customer_id_only_when_logged_in() -> None:
    person = Person(rng=random.Random(0), visitor_id="v-1", customer_id="c-1", session_id="s-1")
    anonymous = person.page("/billing", "billing")
    logged_in = person.page("/billing", "billing", logged_in=True)
    assert "customer_id" not in anonymous.value
    assert logged_in.value["customer_id"] == "c-1"
    assert anonymous.value["event_id"] != logged_in.value["event_id"]


def test_anonymous_billing_persona_earns_exactly_one_login_prompt_from_the_shipped_rules() -> None:
    rule_set = default_rules()
    for seed in SEEDS:
        (_, steps), = journey_steps(seed, "anonymous-billing")
        profile = None
        actions = []
        for step, raw, ts in stamped(steps):
            event = decoded(step, raw, now_ms=ts).event
            outcome = process_event(event, step.key, profile,
                                    Trigger(record_kafka_ts=ts, decided_ts=ts), rule_set)
            profile = outcome.profile
            actions += [a["action"] for a in outcome.actions]
        logged_in = any(step.value["type"] == "login" for step in steps)
        assert actions == (["login_prompt", "direct_link"] if logged_in else ["login_prompt"])


# ---------------------------------------------------------------- TrafficPlan

def plan_run(seed: int, steps: int = 60, persona: str | None = None) -> list[tuple[str, Step]]:
    plan = TrafficPlan(seed, think_scale=1.0, persona=persona)
    return [plan.next_step(now=i * 0.25) for i in range(steps)]


def test_traffic_plan_with_the_same_seed_gives_the_same_records() -> None:
    assert plan_run(11) == plan_run(11)


def test_traffic_plan_interleaves_several_people() -> None:
    visitors = {step.value.get("visitor_id") or step.value.get("customer_id") for _, step in plan_run(5)}
    assert len(visitors) > 3


def test_traffic_plan_keeps_each_persons_steps_in_journey_order() -> None:
    per_person: dict[str, list[int]] = {}
    for _, step in plan_run(5, steps=200):
        person, counter, _ = step.value["event_id"].rsplit("-", 2)
        per_person.setdefault(person, []).append(int(counter))
    assert per_person
    assert all(counters == sorted(counters) for counters in per_person.values())


def test_traffic_plan_can_be_limited_to_one_persona() -> None:
    assert {name for name, _ in plan_run(5, persona="prospect")} == {"prospect"}


def test_every_traffic_plan_record_decodes_as_accepted_once_stamped() -> None:
    for seed in range(4):
        for i, (name, step) in enumerate(plan_run(seed, steps=100)):
            ts = T0 + i * SECOND
            result = decoded(step, orjson.dumps(dict(step.value, ts=ts)), now_ms=ts)
            assert isinstance(result, Accepted), (name, step, result)


@pytest.mark.parametrize(("sample", "code"), list(zip(
    MALFORMED_SAMPLES, ["not_json", "schema", "timestamp", "not_object"], strict=True)))
def test_malformed_samples_are_really_rejected(sample: bytes, code: str) -> None:
    result = decode_record(Source.CLICKSTREAM, b"v-bad", sample, now_ms=T0)
    assert isinstance(result, Rejected)
    assert result.code == code
