"""Intent models in the worker: one set per partition, checkpointed with the partition's state.

Each partition of the person topics has its own :class:`IntentScorer`, learning from the people
of that partition. Its checkpoint lives in the ``models`` table under ``<partition>/<intent>``,
written while a record of that partition is processed, so it goes to that partition's
changelog: when the partition moves to another worker (a rebalance) or the worker restarts,
the models come back with the profiles, from the last checkpoint — never from zero. A
checkpoint is written every ``model_checkpoint_s`` seconds when something was learned, and
every ``model_checkpoint_labels`` labels (about 5 KB per intent); learning since the last
checkpoint is lost when a worker dies, which costs a few seconds of labels, not the model.

Event time: each partition keeps a watermark, the newest event time it has seen. People who go
quiet are settled by a sweep: every ``label_sweep_tick_s`` the worker sends itself a tick on
each of its partitions of the person-events topic (so the sweep runs in the agent, in order
with the partition's records), and each tick visits the next slice of the partition's people,
so that all of them are visited once per ``label_sweep_period_s``; snapshots whose horizon lies
before the watermark (less ``label_lateness_s``, the time allowed for late outcomes) become
labels: positive when their outcome was seen, otherwise negative. When a partition receives
no records for ``label_idle_after_s`` of wall-clock time, its watermark advances with the wall
clock: a replay at full speed settles on event time alone, and a quiet input still settles its
quiet people.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.core.scoring import (
    CheckpointError,
    IntentScorer,
    IntentSpec,
    ProfileScorer,
    SettledLabel,
    settle_expired,
)
from orchestrator.runtime.faust_internals import partition_dbs
from orchestrator.runtime.partitioning import partition_of
from orchestrator.runtime.stores import PersonStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScoringPolicy:
    checkpoint_s: float = 30.0
    checkpoint_labels: int = 1000
    sweep_tick_s: float = 5.0
    sweep_period_s: float = 600.0
    idle_after_s: float = 60.0
    lateness_ms: int = 60_000


class PartitionScorer(ProfileScorer):
    """The event scorer of one partition: its models, with versions naming the partition."""

    __slots__ = ("partition",)

    def __init__(self, scorer: IntentScorer, partition: int) -> None:
        super().__init__(scorer)
        self.partition = partition

    def versions(self) -> dict[str, str]:
        return {name: f"{name}@p{self.partition}.v{model.n_labels}"
                for name, model in self.intent_scorer.models.items()}


@dataclass
class PartitionState:
    scorer: PartitionScorer
    last_record_wall: float
    last_tick_wall: float
    last_checkpoint_wall: float
    watermark: int = 0
    labels_since_checkpoint: int = 0
    sweep_keys: list[str] = field(default_factory=list)
    sweep_started_wall: float = -math.inf


class PartitionedModels:
    """The intent models of one worker, one set per partition, with their checkpoints,
    event-time watermarks and label sweep."""

    def __init__(self, specs: tuple[IntentSpec, ...], models: MutableMapping[str, bytes],
                 partitions: int, policy: ScoringPolicy = ScoringPolicy(),
                 wall: Callable[[], float] = time.monotonic,
                 on_labels: Callable[[Sequence[SettledLabel], str], None] | None = None) -> None:
        self.specs = specs
        self.models = models
        self.partitions = partitions
        self.policy = policy
        self.wall = wall
        self.on_labels = on_labels or (lambda labels, how: None)
        self.states: dict[int, PartitionState] = {}

    # ------------------------------------------------------------ per event

    def for_partition(self, partition: int) -> PartitionState:
        """The partition's state, its models restored from their checkpoint on first use."""
        state = self.states.get(partition)
        if state is None:
            scorer = IntentScorer(self.specs)
            checkpoints = {spec.name: data for spec in self.specs
                           if (data := self.models.get(f"{partition}/{spec.name}"))}
            try:
                scorer.restore(checkpoints)
            except CheckpointError as exc:  # e.g. the features changed: start over, say so
                log.warning("partition %d: model checkpoint not restored (%s); starting from zero",
                            partition, exc)
                scorer = IntentScorer(self.specs)
            if checkpoints:
                log.info("partition %d: models restored (%s)", partition,
                         ", ".join(f"{n} {m.n_labels} labels" for n, m in scorer.models.items()))
            now = self.wall()
            state = PartitionState(PartitionScorer(scorer, partition), now, now, now)
            self.states[partition] = state
        return state

    def scorer_for(self, partition: int) -> PartitionScorer:
        """The event scorer of ``partition`` (its models restored on first use)."""
        return self.for_partition(partition).scorer

    def after_event(self, partition: int, event_ts: int, settled: Sequence[SettledLabel]) -> None:
        """Book the event's time and the labels it settled (``JourneyOutcome.settled``);
        checkpoint when due (in the agent)."""
        state = self.for_partition(partition)
        state.watermark = max(state.watermark, event_ts)
        state.last_record_wall = self.wall()
        if settled:
            state.labels_since_checkpoint += len(settled)
            self.on_labels(settled, "outcome_or_next_event")
        self._maybe_checkpoint(partition, state)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget the models of partitions taken away (a rebalance): they are restored from their
        checkpoint wherever they land, here again included."""
        for partition in partitions:
            self.states.pop(partition, None)

    # ------------------------------------------------------------ the sweep

    def sweep(self, partition: int, people: PersonStore) -> int:
        """One tick of the partition's sweep: settle the next slice of its people against the
        watermark; return how many labels were settled. Runs in the agent (table writes)."""
        state = self.for_partition(partition)
        now = self.wall()
        if now - state.last_record_wall >= self.policy.idle_after_s and state.watermark:
            state.watermark += int((now - state.last_tick_wall) * 1000)
        state.last_tick_wall = now
        if not state.sweep_keys:
            if now - state.sweep_started_wall < self.policy.sweep_period_s:
                self._maybe_checkpoint(partition, state)
                return 0
            state.sweep_keys = partition_keys(people.table, partition, self.partitions)
            log.debug("partition %d: label sweep pass over %d people", partition, len(state.sweep_keys))
            state.sweep_keys.reverse()  # popped from the end
            state.sweep_started_wall = now
        ticks = max(1.0, self.policy.sweep_period_s / self.policy.sweep_tick_s)
        budget = max(100, math.ceil(len(state.sweep_keys) / ticks))
        watermark = state.watermark - self.policy.lateness_ms
        settled_total = 0
        keys = state.sweep_keys
        for _ in range(min(budget, len(keys))):
            key = keys.pop()
            profile = people.get(key)
            if profile is None or not profile.pending:
                continue
            settled = settle_expired(profile.pending, self.specs, watermark)
            if settled:
                state.scorer.intent_scorer.learn(settled)
                people.put(key, profile, partition)
                settled_total += len(settled)
                self.on_labels(settled, "horizon_sweep")
        state.labels_since_checkpoint += settled_total
        self._maybe_checkpoint(partition, state)
        return settled_total

    def _maybe_checkpoint(self, partition: int, state: PartitionState) -> None:
        now = self.wall()
        learned = state.labels_since_checkpoint
        due = learned >= self.policy.checkpoint_labels or (
            learned > 0 and now - state.last_checkpoint_wall >= self.policy.checkpoint_s)
        if not due:
            return
        for name, data in state.scorer.intent_scorer.checkpoint().items():
            self.models[f"{partition}/{name}"] = data
        state.labels_since_checkpoint = 0
        state.last_checkpoint_wall = now

    # ------------------------------------------------------------ metrics

    def versions_for(self, person_id: str) -> dict[str, str]:
        """Model versions of the partition that scores ``person_id`` (empty: not loaded here)."""
        state = self.states.get(partition_of(person_id, self.partitions))
        return state.scorer.versions() if state is not None else {}

    def quality(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for partition, state in sorted(self.states.items()):
            for quality in state.scorer.intent_scorer.quality().values():
                yield partition, quality


def partition_keys(table: Any, partition: int, partitions: int) -> list[str]:
    """The keys of one partition of a table: read from that partition's RocksDB alone when the
    table has one per partition (a Faust RocksDB store), so a sweep pass does not list the whole
    worker's keys; otherwise (the in-memory store) the table's keys filtered by partition."""
    dbs = partition_dbs(table)
    if dbs is None:
        return [key for key in list(table.keys()) if partition_of(key, partitions) == partition]
    db = dbs.get(partition)
    if db is None:
        return []
    # Stored keys are in the table's own key serialisation, and the store keeps its changelog
    # offset under one key of its own in each partition's DB.
    offset_key = table.data.offset_key
    loads_key = table.app.serializers.loads_key
    return [loads_key(table.key_type, key, serializer=table.key_serializer)
            for key in db.keys() if key != offset_key]  # noqa: SIM118 (an Rdict is no dict)


class ModelQualityCollector(Collector):
    """Progressive quality of each partition's intent models, read at scrape time."""

    def __init__(self, models: PartitionedModels) -> None:
        self.models = models

    def collect(self) -> Iterator[Metric]:
        labels = ["intent", "partition"]
        families = {
            "n_labels": GaugeMetricFamily("orchestrator_model_labels",
                                          "Labels the intent model has learned from", labels=labels),
            "roc_auc": GaugeMetricFamily("orchestrator_model_roc_auc",
                                         "Progressive ROC AUC (each label predicted before it is learned)",
                                         labels=labels),
            "log_loss": GaugeMetricFamily("orchestrator_model_log_loss", "Progressive log loss",
                                          labels=labels),
            "positive_rate": GaugeMetricFamily("orchestrator_model_positive_rate",
                                               "Share of labels that were positive", labels=labels),
            "trusted": GaugeMetricFamily("orchestrator_model_trusted",
                                         "1 when the model's scores are used (enough labels)",
                                         labels=labels),
        }
        for partition, quality in self.models.quality():
            key = [quality["intent"], str(partition)]
            for name, family in families.items():
                value = quality[name]
                if value is not None:
                    family.add_metric(key, float(value))
        yield from families.values()
