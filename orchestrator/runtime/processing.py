"""The per-record step of the worker, independent of Faust.

:class:`JourneyProcessor` takes a raw record and the person-state store and does the I/O the
core asks for: dead-letter a bad record, save or delete the profile, send the actions. The
Faust agent hands it records; tests hand it a dict and a recording emitter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from typing import Protocol

import orjson

from orchestrator.core.dead_letter import dead_letter_record
from orchestrator.core.events import (
    Accepted,
    ActionFeedbackEvent,
    DecodeLimits,
    Rejected,
    Source,
    decode_record,
)
from orchestrator.core.journey import Trigger, process_event
from orchestrator.core.profile import Profile
from orchestrator.core.self_service import SelfServicePolicy
from orchestrator.runtime.metrics import EngineMetrics

log = logging.getLogger(__name__)


class Emitter(Protocol):
    """Where records go: Kafka in a worker, a list in a test."""

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None: ...


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class JourneyProcessor:
    """Decode, decide and emit, one record at a time."""

    def __init__(
        self, *, profiles: MutableMapping[str, bytes], emitter: Emitter,
        policy: SelfServicePolicy, sources: dict[str, Source], dead_letter_topic: str,
        action_topic: Callable[[str], str], limits: DecodeLimits, metrics: EngineMetrics,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.profiles = profiles
        self.emitter = emitter
        self.policy = policy
        self.sources = sources
        self.dead_letter_topic = dead_letter_topic
        self.action_topic = action_topic
        self.limits = limits
        self.metrics = metrics
        self.clock_ms = clock_ms

    async def handle(self, topic: str, partition: int, offset: int, kafka_ts: int,
                     key: bytes | None, value: bytes | None) -> None:
        """Process one record. Never raises for bad input: such a record is dead-lettered."""
        started = time.perf_counter()
        source = self.sources[topic]
        now = self.clock_ms()
        decoded = decode_record(source, key, value, now, self.limits)
        if isinstance(decoded, Rejected):
            await self._dead_letter(topic, partition, offset, kafka_ts, key, value,
                                    decoded.code, decoded.reason, now)
            self.metrics.rejected.labels(source.value, decoded.code).inc()
            return
        try:
            await self._apply(decoded, kafka_ts, now)
        except Exception as exc:  # a bug must not stop the agent; the record is kept
            log.exception("failed to process %s[%d]@%d", topic, partition, offset)
            await self._dead_letter(topic, partition, offset, kafka_ts, key, value,
                                    "internal_error", f"{type(exc).__name__}: {exc}", now)
            self.metrics.rejected.labels(source.value, "internal_error").inc()
            return
        self.metrics.processing.observe(time.perf_counter() - started)

    async def _apply(self, accepted: Accepted, kafka_ts: int, now: int) -> None:
        person_id = accepted.key
        event = accepted.event
        event_type = "feedback" if isinstance(event, ActionFeedbackEvent) else event.type
        self.metrics.events.labels(accepted.source.value,
                                   self.metrics.event_type_label(event_type)).inc()
        stored = self.profiles.get(person_id)
        profile = Profile.from_dict(orjson.loads(stored)) if stored else None
        outcome = process_event(event, person_id, profile, Trigger(kafka_ts, now), self.policy)
        if outcome.replay:
            self.metrics.replayed.labels(accepted.source.value).inc()
            return
        # Actions go out before the profile is saved: if the worker dies in between, the
        # replayed trigger re-sends the same action_id (at-least-once) instead of losing it.
        key = person_id.encode()
        for action in outcome.actions:
            await self.emitter.send(self.action_topic(action["channel"]), key,
                                    orjson.dumps(action))
            self.metrics.actions.labels(action["channel"], action["action"], action["rule"]).inc()
            self.metrics.trigger_to_send.labels(action["channel"], action["action"]).observe(
                max(0.0, (self.clock_ms() - kafka_ts) / 1000))
        if outcome.profile is None:
            if stored is not None:
                del self.profiles[person_id]
            self.metrics.erasures.inc()
        else:
            self.profiles[person_id] = orjson.dumps(outcome.profile)

    async def _dead_letter(self, topic: str, partition: int, offset: int, kafka_ts: int,
                           key: bytes | None, value: bytes | None, code: str, reason: str,
                           now: int) -> None:
        record = dead_letter_record(topic=topic, partition=partition, offset=offset,
                                    kafka_ts=kafka_ts, key=key, value=value, code=code,
                                    reason=reason, rejected_ts=now)
        await self.emitter.send(self.dead_letter_topic, key, orjson.dumps(record))
