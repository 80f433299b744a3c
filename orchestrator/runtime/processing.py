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
    DecodeLimits,
    Rejected,
    Source,
    decode_record,
    event_type,
)
from orchestrator.core.journey import Trigger, process_event
from orchestrator.core.profile import Profile
from orchestrator.core.rules import RuleSet
from orchestrator.runtime.metrics import EngineMetrics

log = logging.getLogger(__name__)

OnDelivered = Callable[[], None]


class Emitter(Protocol):
    """Where records go: Kafka in a worker, a list in a test.

    ``on_delivered`` is called once the record is acknowledged by the broker (readable).
    """

    async def send(self, topic: str, key: bytes | None, value: bytes,
                   on_delivered: OnDelivered | None = None) -> None: ...


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class JourneyProcessor:
    """Decode, decide and emit, one record at a time."""

    def __init__(
        self, *, profiles: MutableMapping[str, bytes], emitter: Emitter,
        rule_set: RuleSet, sources: dict[str, Source], dead_letter_topic: str,
        action_topic: Callable[[str], str], limits: DecodeLimits, metrics: EngineMetrics,
        clock_ms: Callable[[], int] = wall_clock_ms, held_out_topic: str = "decisions-held-out",
    ) -> None:
        self.profiles = profiles
        self.emitter = emitter
        self.rule_set = rule_set
        self.sources = sources
        self.dead_letter_topic = dead_letter_topic
        self.action_topic = action_topic
        self.held_out_topic = held_out_topic
        self.limits = limits
        self.metrics = metrics
        self.clock_ms = clock_ms
        #: (topic, partition) -> offset of the last record handled; the lag gauge reads it.
        self.last_offsets: dict[tuple[str, int], int] = {}
        self._stage = metrics.stage_children

    async def handle(self, topic: str, partition: int, offset: int, kafka_ts: int,
                     key: bytes | None, value: bytes | None) -> None:
        """Process one record. Never raises for bad input: such a record is dead-lettered."""
        self.last_offsets[(topic, partition)] = offset
        source = self.sources[topic]
        started = time.perf_counter()
        now = self.clock_ms()
        decoded = decode_record(source, key, value, now, self.limits)
        self._stage["decode"].observe(time.perf_counter() - started)
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

    async def _apply(self, accepted: Accepted, kafka_ts: int, now: int) -> None:
        person_id = accepted.key
        event = accepted.event
        self.metrics.count_event(accepted.source.value, event_type(event))
        t0 = time.perf_counter()
        stored = self.profiles.get(person_id)
        profile = Profile.from_dict(orjson.loads(stored)) if stored else None
        t1 = time.perf_counter()
        outcome = process_event(event, person_id, profile, Trigger(kafka_ts, now), self.rule_set)
        t2 = time.perf_counter()
        self._stage["load"].observe(t1 - t0)
        self._stage["decide"].observe(t2 - t1)
        if outcome.replay:
            self.metrics.replayed.labels(accepted.source.value).inc()
            return
        for held in outcome.suppressed:
            self.metrics.suppressed.labels(held.action, held.cause).inc()
        # Actions go out before the profile is saved: if the worker dies in between, the
        # replayed trigger re-sends the same action_id (at-least-once) instead of losing it.
        key = person_id.encode()
        for action in outcome.actions:
            await self.emitter.send(self.action_topic(action["channel"]), key,
                                    orjson.dumps(action),
                                    self._delivery_timer(action["channel"], action["action"],
                                                         kafka_ts))
            self.metrics.count_action(action["channel"], action["action"], action["rule"])
        for record in outcome.held_out:  # the control group: decided, recorded, not sent
            await self.emitter.send(self.held_out_topic, key, orjson.dumps(record))
        t3 = time.perf_counter()
        if outcome.profile is None:
            if stored is not None:
                del self.profiles[person_id]
            self.metrics.erasures.inc()
        else:
            self.profiles[person_id] = orjson.dumps(outcome.profile)
        if outcome.actions:
            self._stage["emit"].observe(t3 - t2)
        self._stage["save"].observe(time.perf_counter() - t3)

    def _delivery_timer(self, channel: str, action: str, trigger_ts: int) -> OnDelivered:
        histogram = self.metrics.event_to_action.labels(channel, action)
        clock_ms = self.clock_ms

        def delivered() -> None:
            histogram.observe(max(0.0, (clock_ms() - trigger_ts) / 1000))

        return delivered

    async def _dead_letter(self, topic: str, partition: int, offset: int, kafka_ts: int,
                           key: bytes | None, value: bytes | None, code: str, reason: str,
                           now: int) -> None:
        record = dead_letter_record(topic=topic, partition=partition, offset=offset,
                                    kafka_ts=kafka_ts, key=key, value=value, code=code,
                                    reason=reason, rejected_ts=now)
        await self.emitter.send(self.dead_letter_topic, key, orjson.dumps(record))
