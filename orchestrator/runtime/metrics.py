"""Prometheus metrics of one worker, in a registry of its own (tests build several).

Per-event metrics are fed by the processor with label children cached, so the hot path does
a dict lookup and an add per metric. Values that describe state rather than events (lag, table
size, readiness) are computed when Prometheus scrapes, by :class:`RuntimeCollector`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator import __version__

# 1 ms .. 2 s: the sub-second promise is judged at the top end, the floor at the bottom.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
                   0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
STAGE_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                 0.01, 0.025, 0.1)
STAGES = ("decode", "decide", "emit", "save")


class EngineMetrics:
    """The counters and histograms the journey processor feeds."""

    def __init__(self, registry: CollectorRegistry | None = None,
                 rule_set_version: str = "none") -> None:
        disable_created_metrics()  # *_created series only add noise to every scrape
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("orchestrator_events", "Accepted input events",
                              ["source", "type"], registry=r)
        self.rejected = Counter("orchestrator_rejected_records",
                                "Records sent to the dead-letter topic", ["source", "error"],
                                registry=r)
        self.replayed = Counter("orchestrator_replayed_events",
                                "Events recognised as already applied and skipped", ["source"],
                                registry=r)
        self.actions = Counter("orchestrator_actions", "Actions sent",
                               ["channel", "action", "rule"], registry=r)
        self.suppressed = Counter("orchestrator_decisions_suppressed",
                                  "Actions that fitted but were held back", ["action", "cause"],
                                  registry=r)
        self.erasures = Counter("orchestrator_erasures", "Profiles erased on request",
                                registry=r)
        self.erased_dropped = Counter(
            "orchestrator_erased_records_dropped",
            "Records from before their person's erasure, dropped (not applied, not dead-lettered)",
            ["source"], registry=r)
        self.context_retries = Counter(
            "orchestrator_context_retries",
            "Customer-context records (and tombstones) the broker did not take, due again at "
            "the next flush", registry=r)
        self.dead_letter_retries = Counter(
            "orchestrator_dead_letter_retries",
            "Dead-letter records sent again after the broker did not take them", registry=r)
        self.fetch_rewinds = Counter(
            "orchestrator_fetch_rewinds",
            "Jumps in an input partition's offsets that hid records never handed to the agent: "
            "the partition was fetched again from the first missing offset instead of "
            "committing past them", ["topic"], registry=r)
        self.dead_letters_lost = Counter(
            "orchestrator_dead_letters_lost",
            "Dead-letter records given up after every attempt failed (logged with the source "
            "topic, partition and offset, where the record can be read again)", registry=r)
        self.event_to_action = Histogram(
            "orchestrator_event_to_action_seconds",
            "From the trigger record's Kafka timestamp to the action acknowledged on its topic",
            ["channel", "action"], buckets=LATENCY_BUCKETS, registry=r)
        self.input_wait = Histogram(
            "orchestrator_input_wait_seconds",
            "From a record's Kafka timestamp to the worker starting on it (the broker, the fetch, "
            "the hand-over and the agent's queue); by the record's topic: clickstream, "
            "contact-centre, action-feedback, or person-events (forwarded records and ticks)",
            ["source"], buckets=LATENCY_BUCKETS, registry=r)
        self.identity = Counter(
            "orchestrator_identity_changes",
            "Visitor links: linked (first login of a visitor), shared_device (another customer "
            "logged in on a linked visitor), merged (an anonymous profile carried into a customer's), "
            "unlinked (erasure)", ["change"], registry=r)
        self.rekeyed = Counter("orchestrator_rekeyed_events",
                               "Records forwarded to their person's partition (logged-in visitors)",
                               registry=r)
        self.context_published = Counter("orchestrator_context_records",
                                         "Customer-context records published, by kind",
                                         ["kind"], registry=r)
        self.event_to_context = Histogram(
            "orchestrator_event_to_context_seconds",
            "From the Kafka timestamp of the oldest change not yet published to the person's "
            "context record acknowledged on the customer-context topic",
            buckets=LATENCY_BUCKETS, registry=r)
        self.context_requests = Counter("orchestrator_context_requests",
                                        "GET /context/{id} answers, by how they were answered",
                                        ["result"], registry=r)
        self.labels_settled = Counter(
            "orchestrator_model_labels_settled",
            "Delayed labels settled and learned, by intent, label and how they were settled "
            "(outcome_or_next_event: at the person's own event; horizon_sweep: the quiet-people sweep)",
            ["intent", "label", "how"], registry=r)
        self.stage = Histogram("orchestrator_stage_seconds",
                               "Time spent per record in each processing stage", ["stage"],
                               buckets=STAGE_BUCKETS, registry=r)
        self.stage_children = {name: self.stage.labels(name) for name in STAGES}
        self._children: dict[tuple, Counter] = {}
        Info("orchestrator_build", "Engine version", registry=r).info({"version": __version__})
        self.rule_set = Info("orchestrator_rule_set", "The rule set in force", registry=r)
        self.rule_set.info({"version": rule_set_version})
        self.send_failures = Counter("orchestrator_send_failures",
                                     "Records the broker did not accept (after the producer's retries)",
                                     ["topic"], registry=r)
        self.state_flushes = Histogram(
            "orchestrator_state_flush_keys", "Keys written to the tables per flush of a partition's state",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000), registry=r)
        self.rule_set_updates = Counter("orchestrator_rule_set_updates",
                                        "Rule sets received on the rules topic, by result",
                                        ["result"], registry=r)
        ProcessCollector(registry=r)

    def count(self, metric: Counter, *labels: str) -> None:
        """Add one to ``metric``'s child with ``labels`` (cached: see :meth:`_child`)."""
        self._child(metric, *labels).inc()

    def count_event(self, source: str, event_type: str) -> None:
        self._child(self.events, source, event_type).inc()

    def count_action(self, channel: str, action: str, rule: str) -> None:
        self._child(self.actions, channel, action, rule).inc()

    def count_labels(self, settled: Iterable[Any], how: str) -> None:
        for label in settled:
            self._child(self.labels_settled, label.intent, "positive" if label.label else "negative",
                        how).inc()

    def _child(self, metric: Counter, *labels: str) -> Counter:
        """The labelled child, from a plain dict after its first use (``labels()`` takes a lock
        and builds a key every call)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    lag: int


class RuntimeCollector(Collector):
    """State read at scrape time: readiness, assignment, lag per partition, table sizes."""

    def __init__(self, ready: Callable[[], bool], lags: Callable[[], Iterable[PartitionLag]],
                 table_keys: Callable[[], dict[str, int]]) -> None:
        self.ready = ready
        self.lags = lags
        self.table_keys = table_keys

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("orchestrator_ready",
                                "1 when the worker's partitions are assigned and recovered",
                                value=1 if self.ready() else 0)
        lags = list(self.lags())
        yield GaugeMetricFamily("orchestrator_assigned_partitions",
                                "Input partitions assigned to this worker", value=len(lags))
        lag = GaugeMetricFamily("orchestrator_consumer_lag",
                                "Records behind the end of each assigned input partition",
                                labels=["topic", "partition"])
        for item in lags:
            lag.add_metric([item.topic, str(item.partition)], item.lag)
        yield lag
        keys = GaugeMetricFamily("orchestrator_table_keys",
                                 "Keys in each table's partitions on this worker: RocksDB's own "
                                 "estimate, which counts overwrites until they are compacted",
                                 labels=["table"])
        for table, count in self.table_keys().items():
            keys.add_metric([table], count)
        yield keys
