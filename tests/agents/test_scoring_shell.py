"""Intent scoring around the processor: scores in actions and profiles, labels from outcomes and
from the sweep of quiet people, checkpoints that a restarted worker continues from."""

from __future__ import annotations

from typing import Any

import orjson

from orchestrator.core.events import DecodeLimits
from orchestrator.core.profile import Profile
from orchestrator.core.profile.pending import entries
from orchestrator.core.scoring import IntentSpec
from orchestrator.runtime.metrics import EngineMetrics
from orchestrator.runtime.partitioning import partition_of
from orchestrator.runtime.processing import JourneyProcessor
from orchestrator.runtime.scoring import PartitionedModels, ScoringPolicy
from orchestrator.runtime.settings import load_rules, load_settings
from tests.agents.conftest import RecordingEmitter, handled

NOW = 1_800_000_000_000
MINUTE = 60_000
LOGIN = IntentSpec(name="login_propensity", outcome_event_types=("login",), horizon_s=1800,
                   only_anonymous=True, min_labels=0)
PURCHASE = IntentSpec(name="purchase_intent", outcome_event_types=("purchase",), horizon_s=3600,
                      min_labels=0)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Shell:
    def __init__(self, models: dict[str, bytes] | None = None, specs=(LOGIN, PURCHASE)) -> None:
        settings = load_settings()
        self.wall = Clock()
        self.models = models if models is not None else {}
        self.metrics = EngineMetrics()
        self.intent_models = PartitionedModels(
            tuple(specs), self.models, partitions=4,
            policy=ScoringPolicy(checkpoint_s=30, sweep_tick_s=5, sweep_period_s=5,
                                 idle_after_s=60, lateness_ms=0),
            wall=self.wall, on_labels=self.metrics.count_labels)
        self.emitter = RecordingEmitter()
        self.profiles: dict[str, bytes] = {}
        self.processor = JourneyProcessor(
            profiles=self.profiles, identity={}, emitter=self.emitter,
            rule_set=load_rules(settings.rules_dir), sources=settings.input_topics,
            dead_letter_topic="dead-letter", action_topic=settings.action_topic,
            limits=DecodeLimits(), metrics=self.metrics, clock_ms=lambda: NOW,
            intent_models=self.intent_models)
        self.offset = 0

    async def click(self, visitor: str, n: int, ts: int, kind: str = "page_view", **extra: Any) -> None:
        self.offset += 1
        record = {"event_id": f"{visitor}-{n}", "type": kind, "ts": ts, "visitor_id": visitor,
                  "session_id": f"s-{visitor}", **extra}
        await handled(self.processor, "clickstream", partition_of(visitor, 4), self.offset, ts,
                                    visitor.encode(), orjson.dumps(record))

    async def tick(self, partition: int) -> None:
        self.offset += 1
        await handled(self.processor, self.processor.person_events_topic, partition, self.offset, NOW,
                                    None, orjson.dumps({"kind": "tick"}))

    def profile(self, person: str) -> Profile:
        return Profile.from_dict(orjson.loads(self.profiles[person]))

    def model(self, partition: int, intent: str) -> Any:
        """The partition's model of ``intent`` (restored from its checkpoint on first use)."""
        return self.intent_models.for_partition(partition).scorer.intent_scorer.models[intent]

    def labels(self, intent: str) -> int:
        partition_models = [s.scorer.intent_scorer.models[intent] for s in self.intent_models.states.values()]
        return sum(m.n_labels for m in partition_models)


def billing(n: int) -> dict[str, Any]:
    return {"page": {"url": f"/billing/{n}", "category": "billing"}}


async def test_scores_and_model_versions_are_in_the_action_record_and_the_profile() -> None:
    shell = Shell()
    for n in range(3):
        await shell.click("v1", n, NOW - 10 * MINUTE + n * MINUTE, **billing(n))
    [prompt] = shell.emitter.on("actions.web")
    assert set(prompt["scores"]) == {"login_propensity", "purchase_intent"}
    assert all(0.0 <= p <= 1.0 for p in prompt["scores"].values())
    partition = partition_of("v1", 4)
    assert prompt["models"] == {"login_propensity": f"login_propensity@p{partition}.v0",
                                "purchase_intent": f"purchase_intent@p{partition}.v0"}
    profile = shell.profile("v1")
    assert profile.scores == prompt["scores"]
    assert {name for name, _, _ in entries(profile.pending)} == {"login_propensity", "purchase_intent"}


async def test_an_untrusted_model_scores_none_so_score_rules_do_not_fire() -> None:
    shell = Shell(specs=(LOGIN.model_copy(update={"min_labels": 10}),))
    await shell.click("v1", 0, NOW, **billing(0))
    assert shell.profile("v1").scores == {"login_propensity": None}


async def test_an_outcome_within_the_horizon_is_a_positive_label_learned_when_the_horizon_ends(
) -> None:
    shell = Shell()
    await shell.click("v1", 0, NOW - 20 * MINUTE, **billing(0))
    await shell.click("v1", 1, NOW - 10 * MINUTE, kind="login", customer_id="c1")
    # The login hops to the customer's partition; the visitor's snapshot went with the profile.
    hop = shell.processor.person_events_topic
    [(_, key, carry)] = [s for s in shell.emitter.sent if s[0] == hop]
    await handled(shell.processor, hop, partition_of("c1", 4), 99, NOW, key, orjson.dumps(carry))
    assert shell.labels("login_propensity") == 0  # decided positive, learned at its horizon
    sent = len(shell.emitter.sent)
    await shell.click("v1", 2, NOW + 15 * MINUTE, customer_id="c1", **billing(2))
    [(_, key, later)] = [s for s in shell.emitter.sent[sent:] if s[0] == hop]
    await handled(shell.processor, hop, partition_of("c1", 4), 100, NOW, key, orjson.dumps(later))
    assert shell.labels("login_propensity") == 1
    assert shell.metrics.registry.get_sample_value(
        "orchestrator_model_labels_settled_total",
        {"intent": "login_propensity", "label": "positive", "how": "outcome_or_next_event"}) == 1


async def test_the_sweep_settles_quiet_people_negative_once_event_time_passes_the_horizon() -> None:
    shell = Shell()
    partition = partition_of("quiet", 4)
    await shell.click("quiet", 0, NOW - 3 * 3600_000, **billing(0))
    other = next(f"busy-{n}" for n in range(100) if partition_of(f"busy-{n}", 4) == partition)
    await shell.tick(partition)
    assert shell.labels("login_propensity") == 0  # the horizon has not passed in event time
    await shell.click(other, 0, NOW, **billing(0))  # event time moves on in this partition
    shell.wall.t += 10
    await shell.tick(partition)
    assert shell.labels("login_propensity") == 1
    assert shell.labels("purchase_intent") == 1
    assert shell.profile("quiet").pending == {}


async def test_an_idle_partition_lets_event_time_follow_the_wall_clock() -> None:
    shell = Shell()
    partition = partition_of("quiet", 4)
    await shell.click("quiet", 0, NOW, **billing(0))
    await shell.tick(partition)
    shell.wall.t += 120  # idle: no records for two minutes
    await shell.tick(partition)
    assert shell.labels("login_propensity") == 0  # 2 minutes of a 30-minute horizon
    shell.wall.t += 30 * 60
    await shell.tick(partition)
    assert shell.labels("login_propensity") == 1


async def test_a_restarted_worker_continues_from_the_checkpoint_not_from_zero() -> None:
    shell = Shell()
    partition = partition_of("quiet", 4)
    await shell.click("quiet", 0, NOW - 3 * 3600_000, **billing(0))
    other = next(f"busy-{n}" for n in range(100) if partition_of(f"busy-{n}", 4) == partition)
    await shell.click(other, 0, NOW, **billing(0))
    shell.wall.t += 10
    await shell.tick(partition)
    assert shell.labels("login_propensity") == 1
    assert shell.models == {}  # not due yet: 30 s since the last checkpoint
    shell.wall.t += 31
    await shell.tick(partition)
    assert set(shell.models) == {f"{partition}/login_propensity", f"{partition}/purchase_intent"}

    restarted = Shell(models=dict(shell.models))
    assert restarted.model(partition, "login_propensity").n_labels == 1
    assert restarted.intent_models.versions_for("quiet")["login_propensity"] == \
        f"login_propensity@p{partition}.v1"


async def test_a_checkpoint_of_other_features_is_refused_and_the_model_starts_over() -> None:
    shell = Shell(models={"0/login_propensity": b"not a checkpoint"})
    assert shell.model(0, "login_propensity").n_labels == 0


async def test_a_rebalance_forgets_only_the_revoked_partitions_which_come_back_from_their_checkpoint(
        ) -> None:
    shell = Shell(models={})
    kept = shell.intent_models.for_partition(0)
    shell.model(0, "login_propensity").n_labels = 7
    shell.model(1, "login_propensity").n_labels = 9
    shell.models["1/login_propensity"] = shell.model(1, "login_propensity").to_bytes()
    shell.model(1, "login_propensity").n_labels = 12  # learned after the checkpoint
    shell.intent_models.revoke({1})
    assert shell.intent_models.for_partition(0) is kept
    assert shell.model(1, "login_propensity").n_labels == 9
