"""The per-record step of the worker, independent of Faust.

:class:`JourneyProcessor` takes a raw record and the state stores (profiles by person id,
identity links by visitor id) and does the I/O the core asks for: dead-letter a bad record,
resolve the person, forward the record to the person's partition when it is not this one, save
or delete the profile, send the actions, mark the context changed. The Faust agent hands it
records; tests hand it dicts and a recording emitter.

Routing (see ``orchestrator.core.identity``): an input record is processed where it arrives
when its person id is its key (anonymous visitors, contact-centre records, feedback keyed by the
person); otherwise it is forwarded once, as an envelope on the person-events topic keyed by the
person id, and processed on arrival there. All topics have the same partitions and the same
partitioner, so a person's partition number is the same on every topic and one worker owns it.
Envelopes:

- ``{"kind": "event", "source", "key", "kafka_ts", "value"}``: an input record for its person;
- ``{"kind": "carry", ..., "visitor_id", "profile"}``: the first logged-in record of a visitor
  with the visitor's anonymous profile, merged into the customer's before the record is applied;
- ``{"kind": "unlink"}`` keyed by a visitor id: forget the visitor (the person was erased).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from typing import Any, Protocol

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
from orchestrator.core.identity import VisitorLink, resolve_click, resolve_keyed
from orchestrator.core.journey import Trigger, process_event
from orchestrator.core.profile import Profile, merge_profiles
from orchestrator.core.rules import RuleSet
from orchestrator.runtime.metrics import EngineMetrics
from orchestrator.runtime.scoring import WorkerScoring

log = logging.getLogger(__name__)

OnDelivered = Callable[[], None]


class Emitter(Protocol):
    """Where records go: Kafka in a worker, a list in a test.

    ``on_delivered`` is called once the record is acknowledged by the broker (readable).
    """

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   on_delivered: OnDelivered | None = None) -> None: ...


class ContextSink(Protocol):
    """Where changed and erased people are noted for the customer-context feed."""

    def changed(self, profile: Profile, kafka_ts: int) -> None: ...

    def erased(self, person_id: str, kafka_ts: int) -> None: ...


class _NoContext:
    def changed(self, profile: Profile, kafka_ts: int) -> None:
        pass

    def erased(self, person_id: str, kafka_ts: int) -> None:
        pass


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def observe_on_delivery(histogram: Any, clock_ms: Callable[[], int], since_ms: int) -> OnDelivered:
    """A delivery callback that observes, in seconds, the time from ``since_ms`` (a Kafka
    timestamp) to the broker's acknowledgement."""

    def delivered() -> None:
        histogram.observe(max(0.0, (clock_ms() - since_ms) / 1000))

    return delivered


class JourneyProcessor:
    """Decode, route, decide and emit, one record at a time."""

    def __init__(
        self, *, profiles: MutableMapping[str, bytes], emitter: Emitter,
        rule_set: RuleSet, sources: dict[str, Source], dead_letter_topic: str,
        action_topic: Callable[[str], str], limits: DecodeLimits, metrics: EngineMetrics,
        clock_ms: Callable[[], int] = wall_clock_ms, held_out_topic: str = "decisions-held-out",
        identity: MutableMapping[str, bytes] | None = None,
        person_events_topic: str = "person-events", context: ContextSink | None = None,
        scoring: WorkerScoring | None = None,
    ) -> None:
        self.profiles = profiles
        self.identity: MutableMapping[str, bytes] = identity if identity is not None else {}
        self.emitter = emitter
        self.rule_set = rule_set
        self.sources = sources
        self.dead_letter_topic = dead_letter_topic
        self.action_topic = action_topic
        self.held_out_topic = held_out_topic
        self.person_events_topic = person_events_topic
        self.limits = limits
        self.metrics = metrics
        self.clock_ms = clock_ms
        self.context: ContextSink = context or _NoContext()
        self.scoring = scoring
        #: (topic, partition) -> offset of the last record handled; the lag gauge reads it.
        self.last_offsets: dict[tuple[str, int], int] = {}
        self._stage = metrics.stage_children

    async def handle(self, topic: str, partition: int, offset: int, kafka_ts: int,
                     key: bytes | None, value: bytes | None) -> None:
        """Process one record. Never raises for bad input: such a record is dead-lettered."""
        self.last_offsets[(topic, partition)] = offset
        now = self.clock_ms()
        if topic == self.person_events_topic:
            try:
                await self._handle_envelope(partition, key, value, now)
            except Exception as exc:  # a bug must not stop the agent; the record is kept
                log.exception("failed to process %s[%d]@%d", topic, partition, offset)
                await self._dead_letter(topic, partition, offset, kafka_ts, key, value,
                                        "internal_error", f"{type(exc).__name__}: {exc}", now)
                self.metrics.rejected.labels("person-events", "internal_error").inc()
            return
        source = self.sources[topic]
        started = time.perf_counter()
        decoded = decode_record(source, key, value, now, self.limits)
        self._stage["decode"].observe(time.perf_counter() - started)
        if isinstance(decoded, Rejected):
            await self._dead_letter(topic, partition, offset, kafka_ts, key, value,
                                    decoded.code, decoded.reason, now)
            self.metrics.rejected.labels(source.value, decoded.code).inc()
            return
        try:
            await self._route(decoded, partition, kafka_ts, now, key, value)
        except Exception as exc:  # a bug must not stop the agent; the record is kept
            log.exception("failed to process %s[%d]@%d", topic, partition, offset)
            await self._dead_letter(topic, partition, offset, kafka_ts, key, value,
                                    "internal_error", f"{type(exc).__name__}: {exc}", now)
            self.metrics.rejected.labels(source.value, "internal_error").inc()

    # ------------------------------------------------------------ routing

    async def _route(self, accepted: Accepted, partition: int, kafka_ts: int, now: int,
                     key: bytes | None, value: bytes | None) -> None:
        """Find the record's person; process it here or forward it to the person's partition."""
        event = accepted.event
        record_key = accepted.key
        source = accepted.source
        person_id = record_key
        if source is Source.CLICKSTREAM:
            link = self._link(record_key)
            resolution = resolve_click(record_key, link, event)
            person_id = resolution.person_id
            if event.type == "erasure_requested":
                if link is not None:  # the visitor's own link goes here; the person's where it lives
                    del self.identity[record_key]
                    self.metrics.identity.labels("unlinked").inc()
                person_id = link.customer_id if link is not None else record_key
            elif resolution.link_changed and resolution.link is not None:
                self.identity[record_key] = orjson.dumps(resolution.link.to_dict())
                if resolution.carry_anonymous:
                    self.metrics.identity.labels("linked").inc()
                elif link is not None and resolution.link.customer_id != link.customer_id:
                    self.metrics.identity.labels("shared_device").inc()
            if resolution.carry_anonymous and event.type != "erasure_requested":
                await self._carry_anonymous(record_key, person_id, source, kafka_ts, key, value)
                return
        elif source is Source.ACTION_FEEDBACK:
            person_id = resolve_keyed(record_key, self._link(record_key))
        if person_id == record_key:
            await self._apply(person_id, accepted, partition, kafka_ts, now)
        else:
            await self._forward(person_id, {"kind": "event"}, source, kafka_ts, key, value)

    def _link(self, visitor_id: str) -> VisitorLink | None:
        stored = self.identity.get(visitor_id)
        return VisitorLink.from_dict(orjson.loads(stored)) if stored else None

    async def _carry_anonymous(self, visitor_id: str, customer_id: str, source: Source,
                               kafka_ts: int, key: bytes | None, value: bytes | None) -> None:
        """Hand the visitor's anonymous profile and this record to the customer's partition."""
        stored = self.profiles.get(visitor_id)
        envelope: dict[str, Any] = {"kind": "carry", "visitor_id": visitor_id,
                                    "profile": orjson.loads(stored) if stored else None}
        # Sent before the anonymous profile is deleted: a crash in between replays the record,
        # which carries the same profile again (the merge is applied once per visitor).
        await self._forward(customer_id, envelope, source, kafka_ts, key, value)
        if stored is not None:
            del self.profiles[visitor_id]
            self.context.erased(visitor_id, kafka_ts)  # the anonymous person is now the customer

    async def _forward(self, person_id: str, envelope: dict[str, Any], source: Source,
                       kafka_ts: int, key: bytes | None, value: bytes | None) -> None:
        envelope["source"] = source.value
        envelope["key"] = key.decode() if key is not None else None
        envelope["kafka_ts"] = kafka_ts
        envelope["value"] = value.decode() if value is not None else None
        await self.emitter.send(self.person_events_topic, person_id.encode(), orjson.dumps(envelope))
        self.metrics.rekeyed.inc()

    async def _handle_envelope(self, partition: int, key: bytes | None, value: bytes | None,
                               now: int) -> None:
        if value is None:
            raise ValueError("a person-events record needs a value")
        envelope = orjson.loads(value)
        kind = envelope["kind"]
        if kind == "tick":  # the worker's own clock for this partition: settle quiet people
            if self.scoring is not None:
                self.scoring.sweep(partition, self.profiles)
            return
        if key is None:
            raise ValueError(f"a person-events {kind!r} record needs a key")
        person_id = key.decode()
        if kind == "unlink":
            self._forget_visitor(person_id, envelope.get("kafka_ts", now))
            return
        source = Source(envelope["source"])
        raw_key = envelope["key"].encode() if envelope["key"] is not None else None
        decoded = decode_record(source, raw_key, envelope["value"].encode(), now, self.limits)
        if isinstance(decoded, Rejected):  # accepted once already, so only a version skew gets here
            raise ValueError(f"forwarded record no longer decodes: {decoded.reason}")
        carried = None
        if kind == "carry":
            carried = (envelope["visitor_id"],
                       Profile.from_dict(envelope["profile"]) if envelope["profile"] else None)
        await self._apply(person_id, decoded, partition, envelope["kafka_ts"], now, carried)

    def _forget_visitor(self, visitor_id: str, kafka_ts: int) -> None:
        if self.identity.get(visitor_id) is not None:
            del self.identity[visitor_id]
            self.metrics.identity.labels("unlinked").inc()
        if self.profiles.get(visitor_id) is not None:
            del self.profiles[visitor_id]
        self.context.erased(visitor_id, kafka_ts)

    # ------------------------------------------------------------ the person

    async def _apply(self, person_id: str, accepted: Accepted, partition: int, kafka_ts: int,
                     now: int, carried: tuple[str, Profile | None] | None = None) -> None:
        event = accepted.event
        self.metrics.count_event(accepted.source.value, event_type(event))
        t0 = time.perf_counter()
        stored = self.profiles.get(person_id)
        profile = Profile.from_dict(orjson.loads(stored)) if stored else None
        if carried is not None:
            profile = self._merge_carried(person_id, profile, *carried)
        t1 = time.perf_counter()
        scoring = self.scoring.scoring_for(partition) if self.scoring is not None else None
        outcome = process_event(event, person_id, profile, Trigger(kafka_ts, now), self.rule_set,
                                scoring=scoring)
        if self.scoring is not None:
            self.scoring.after_event(partition, event.ts)
        t2 = time.perf_counter()
        self._stage["load"].observe(t1 - t0)
        self._stage["decide"].observe(t2 - t1)
        if outcome.replay:
            self.metrics.replayed.labels(accepted.source.value).inc()
            if carried is not None and profile is not None:  # the merge itself is news
                self.profiles[person_id] = orjson.dumps(profile)
                self.context.changed(profile, kafka_ts)
            return
        for held in outcome.suppressed:
            self.metrics.suppressed.labels(held.action, held.cause).inc()
        # Actions go out before the profile is saved: if the worker dies in between, the
        # replayed trigger re-sends the same action_id (at-least-once) instead of losing it.
        key = person_id.encode()
        for action in outcome.actions:
            await self.emitter.send(self.action_topic(action["channel"]), key,
                                    orjson.dumps(action),
                                    observe_on_delivery(
                                        self.metrics.event_to_action.labels(action["channel"],
                                                                            action["action"]),
                                        self.clock_ms, kafka_ts))
            self.metrics.count_action(action["channel"], action["action"], action["rule"])
        for record in outcome.held_out:  # the control group: decided, recorded, not sent
            await self.emitter.send(self.held_out_topic, key, orjson.dumps(record))
        t3 = time.perf_counter()
        if outcome.profile is None:
            await self._erase(person_id, profile, kafka_ts)
        else:
            self.profiles[person_id] = orjson.dumps(outcome.profile)
            self.context.changed(outcome.profile, kafka_ts)
        if outcome.actions:
            self._stage["emit"].observe(t3 - t2)
        self._stage["save"].observe(time.perf_counter() - t3)

    def _merge_carried(self, person_id: str, profile: Profile | None, visitor_id: str,
                       anonymous: Profile | None) -> Profile:
        profile = profile or Profile(person_id=person_id)
        if visitor_id in profile.merged_from:
            return profile  # a redelivered carry: merged already
        if anonymous is not None:
            anonymous.person_id = person_id
            merge_profiles(profile, anonymous)
            self.metrics.identity.labels("merged").inc()
        profile.merged_from.append(visitor_id)
        return profile

    async def _erase(self, person_id: str, profile: Profile | None, kafka_ts: int) -> None:
        """Remove the person here, and their visitors' links where those live."""
        if self.profiles.get(person_id) is not None:
            del self.profiles[person_id]
        self.context.erased(person_id, kafka_ts)
        self.metrics.erasures.inc()
        visitors = set(profile.visitors) | set(profile.merged_from) if profile is not None else set()
        for visitor_id in sorted(visitors - {person_id}):
            await self.emitter.send(self.person_events_topic, visitor_id.encode(),
                                    orjson.dumps({"kind": "unlink", "kafka_ts": kafka_ts}))

    async def _dead_letter(self, topic: str, partition: int, offset: int, kafka_ts: int,
                           key: bytes | None, value: bytes | None, code: str, reason: str,
                           now: int) -> None:
        record = dead_letter_record(topic=topic, partition=partition, offset=offset,
                                    kafka_ts=kafka_ts, key=key, value=value, code=code,
                                    reason=reason, rejected_ts=now)
        await self.emitter.send(self.dead_letter_topic, key, orjson.dumps(record))
