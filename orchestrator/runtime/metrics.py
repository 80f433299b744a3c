"""Prometheus metrics of one worker, in a registry of its own (tests build several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from orchestrator.core.events import CLICKSTREAM_TYPES, CONTACT_CENTRE_TYPES, PRIVACY_TYPES

# 1 ms .. 2 s: the sub-second promise is judged at the top end, the floor at the bottom.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
PROCESSING_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)
_KNOWN_TYPES = CLICKSTREAM_TYPES | CONTACT_CENTRE_TYPES | PRIVACY_TYPES | {"feedback"}


class EngineMetrics:
    """The counters and histograms the journey processor feeds."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("orchestrator_events_total", "Accepted input events",
                              ["source", "type"], registry=r)
        self.rejected = Counter("orchestrator_rejected_records_total",
                                "Records sent to the dead-letter topic", ["source", "error"],
                                registry=r)
        self.replayed = Counter("orchestrator_replayed_events_total",
                                "Events recognised as already applied and skipped", ["source"],
                                registry=r)
        self.actions = Counter("orchestrator_actions_total", "Actions sent",
                               ["channel", "action", "rule"], registry=r)
        self.erasures = Counter("orchestrator_erasures_total", "Profiles erased on request",
                                registry=r)
        self.trigger_to_send = Histogram(
            "orchestrator_trigger_to_send_seconds",
            "From the trigger record's Kafka timestamp to the action handed to the producer",
            ["channel", "action"], buckets=LATENCY_BUCKETS, registry=r)
        self.processing = Histogram("orchestrator_event_processing_seconds",
                                    "Time to decode, decide and emit one record",
                                    buckets=PROCESSING_BUCKETS, registry=r)
        self.ready = Gauge("orchestrator_ready",
                           "1 when the worker's partitions are assigned and recovered", registry=r)

    def event_type_label(self, event_type: str) -> str:
        """Unknown clickstream types are accepted, but counted as 'other' to bound cardinality."""
        return event_type if event_type in _KNOWN_TYPES else "other"

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
