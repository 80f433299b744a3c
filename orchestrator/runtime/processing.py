"""The per-record step of the worker, independent of Faust.

:class:`JourneyProcessor` takes a raw record and carries out what the core decides for it:
dead-letter a bad record, route it to its person (``core.identity.route``), forward it to the
person's partition when that is not this one, apply it to the profile (``core.journey``), send
the actions, note the context change. State goes through typed stores
(``runtime.stores``) that hold changes until :meth:`JourneyProcessor.flush` writes one
partition's state; the Faust agent calls it and acknowledges records only after it. Tests hand
the processor dicts and a recording emitter.

Routing: an input record is processed where it arrives when its person id is its key (anonymous
visitors, contact-centre records, feedback keyed by the person); otherwise it is forwarded once,
as an envelope on the person-events topic keyed by the person id (``core.envelopes``), and
processed on arrival there. All topics have the same partitions and the same partitioner, so a
person's partition number is the same on every topic and one worker owns it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from orchestrator.core.dead_letter import dead_letter_record
from orchestrator.core.envelopes import (
    Carried,
    Envelope,
    EnvelopeError,
    Forwarded,
    Tick,
    Unlink,
    decode_envelope,
    encode_envelope,
)
from orchestrator.core.events import Accepted, DecodeLimits, Rejected, Source, decode_record, event_type
from orchestrator.core.identity import Route, carry_into, route, visitors_to_unlink
from orchestrator.core.journey import Trigger, process_event
from orchestrator.core.journeys import JourneyState
from orchestrator.core.profile import Profile, erased_before, erasure_marker, is_erasure_marker
from orchestrator.core.rules import RuleSet
from orchestrator.runtime.metrics import EngineMetrics
from orchestrator.runtime.scoring import PartitionedModels
from orchestrator.runtime.stores import LinkStore, PersonStore

if TYPE_CHECKING:
    from orchestrator.runtime.journeys import JourneyShell

log = logging.getLogger(__name__)

OnDelivered = Callable[[], None]
OnFailed = Callable[[BaseException], None]
#: How often a dead-letter record is sent before it is given up (and counted as lost).
DEAD_LETTER_ATTEMPTS = 3
#: The longest Kafka key a dead-letter record is sent with.
DEAD_LETTER_KEY_BYTES = 1024


class Emitter(Protocol):
    """Where records go: Kafka in a worker, a list in a test.

    ``on_delivered`` is called once the record is acknowledged by the broker (readable),
    ``on_failed`` with the error if the broker did not take it.
    """

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   on_delivered: OnDelivered | None = None,
                   on_failed: OnFailed | None = None) -> None: ...


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


class EventObserver(Protocol):
    """Told of every event applied to a person (analytics, route mining); must be cheap."""

    def applied(self, person_id: str, event: Any, profile: Profile | None,
                actions: list[dict[str, Any]], held_out: list[dict[str, Any]],
                rule_set: RuleSet) -> None: ...


class JourneyProcessor:
    """Decode, route, decide and emit, one record at a time; write state per partition."""

    def __init__(
        self, *, profiles: MutableMapping[str, bytes], emitter: Emitter,
        rule_set: RuleSet, sources: dict[str, Source], dead_letter_topic: str,
        action_topic: Callable[[str], str], limits: DecodeLimits, metrics: EngineMetrics,
        clock_ms: Callable[[], int] = wall_clock_ms, held_out_topic: str = "decisions-held-out",
        identity: MutableMapping[str, bytes] | None = None,
        person_events_topic: str = "person-events", context: ContextSink | None = None,
        intent_models: PartitionedModels | None = None,
        journeys: JourneyShell | None = None,
    ) -> None:
        self.people = PersonStore(profiles)
        self.links = LinkStore(identity if identity is not None else {})
        self.emitter = emitter
        self._retries: set[asyncio.Future[None]] = set()
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
        self.intent_models = intent_models
        #: Journey state, timers and analytics (runtime/journeys.py); None: journeys are off.
        self.journeys = journeys
        #: Told of each applied event (``runtime.analytics``); None: nobody.
        self.observer: EventObserver | None = None
        #: (topic, partition) -> offset of the last record handled; the lag gauge reads it.
        self.last_offsets: dict[tuple[str, int], int] = {}
        self._stage = metrics.stage_children
        self._envelope_handlers: dict[type, Callable[..., Awaitable[None]]] = {
            Forwarded: self._on_forwarded, Carried: self._on_carried,
            Unlink: self._on_unlink, Tick: self._on_tick,
        }
        # Per-action delivery histograms, looked up once per (channel, action).
        self._to_action: dict[tuple[str, str], Any] = {}
        # Input wait per topic: how long records waited before this worker started on them.
        self._input_wait = {topic: metrics.input_wait.labels(source.value)
                            for topic, source in sources.items()}
        self._input_wait[person_events_topic] = metrics.input_wait.labels("person-events")

    # ------------------------------------------------------------ entry points

    async def handle(self, topic: str, partition: int, offset: int, kafka_ts: int,
                     key: bytes | None, value: bytes | None) -> None:
        """Process one record. Never raises for bad input: such a record is dead-lettered."""
        self.last_offsets[(topic, partition)] = offset
        now = self.clock_ms()
        waited = self._input_wait.get(topic)
        if waited is not None:
            waited.observe(max(0, now - kafka_ts) / 1000)
        source_label = "person-events"
        try:
            if topic == self.person_events_topic:
                if await self._on_envelope(partition, key, value, now):
                    return  # a tick: it fired the partition's timers itself
            else:
                source = self.sources[topic]
                source_label = source.value
                started = time.perf_counter()
                decoded = decode_record(source, key, value, now, self.limits)
                self._stage["decode"].observe(time.perf_counter() - started)
                if isinstance(decoded, Rejected):
                    await self._dead_letter(topic, partition, offset, kafka_ts, key, value,
                                            decoded.code, decoded.reason, now)
                    self.metrics.count(self.metrics.rejected, source_label, decoded.code)
                    return
                await self._on_input(decoded, partition, kafka_ts, now, key, value)
        except Exception as exc:  # a bug must not stop the agent; the record is kept
            log.exception("failed to process %s[%d]@%d", topic, partition, offset)
            code = "bad_envelope" if isinstance(exc, EnvelopeError) else "internal_error"
            await self._dead_letter(topic, partition, offset, kafka_ts, key, value, code,
                                    f"{type(exc).__name__}: {exc}", now)
            self.metrics.count(self.metrics.rejected, source_label, code)
            return
        journeys = self.journeys
        if journeys is not None and journeys.fires_after_record(partition, now):
            try:
                await self._fire_timers(partition, now, journeys.firings_per_record)
            except Exception:  # the record itself was handled: it is not dead-lettered
                log.exception("failed to fire the timers of partition %d", partition)

    def flush(self, partition: int) -> int:
        """Write the state held for ``partition`` to the tables; return the keys written.

        Runs in the agent while a record of ``partition`` is in hand (see ``runtime.stores``)."""
        started = time.perf_counter()
        written = self.people.flush(partition) + self.links.flush(partition)
        if self.journeys is not None:
            written += self.journeys.flush(partition)
        if written:
            self._stage["save"].observe(time.perf_counter() - started)
        return written

    def held_keys(self, partition: int) -> int:
        """Keys of ``partition`` whose changes are held (what its flush would write)."""
        held = self.people.held_count(partition) + self.links.held_count(partition)
        if self.journeys is not None:
            held += self.journeys.store.held_count(partition)
        return held

    def held_partitions(self) -> set[int]:
        """Partitions with state not yet written to the tables."""
        held = {*self.people.held_partitions(), *self.links.held_partitions()}
        if self.journeys is not None:
            held.update(self.journeys.held_partitions())
        return held

    def discard(self, partitions: set[int]) -> None:
        """Forget held state of revoked partitions (their records are processed again)."""
        self.people.discard(partitions)
        self.links.discard(partitions)
        if self.journeys is not None:
            self.journeys.discard(partitions)

    # ------------------------------------------------------------ input records

    async def _on_input(self, accepted: Accepted, partition: int, kafka_ts: int, now: int,
                        key: bytes | None, value: bytes | None) -> None:
        """Find the record's person; process it here or forward it to the person's partition."""
        record_key = accepted.key
        needs_link = accepted.source is not Source.CONTACT_CENTRE
        link = self.links.get(record_key) if needs_link else None
        decided = route(accepted.source, record_key, accepted.event, link)
        if decided.carry:
            anonymous = self.people.get(record_key)
            journeys = self.journeys
            handing = journeys.state_of(record_key) if journeys is not None else None
            await self._carry(decided, record_key, partition, accepted.source, accepted.event.ts,
                              kafka_ts, key, value, handing)
            if journeys is not None and anonymous is not None:
                if self.people.get(record_key) is None:  # carried into the customer's profile
                    journeys.handed_over(record_key, partition, handing, accepted.event.ts)
                else:  # erased since: only the marker stays
                    journeys.erase(record_key, partition, accepted.event.ts)
        elif decided.here(record_key):
            self._store_link(decided, record_key, partition)
            await self._apply(decided.person_id, accepted, partition, kafka_ts, now)
        else:
            await self._forward(decided.person_id, Forwarded(accepted.source, key, kafka_ts, value or b""))
            self._store_link(decided, record_key, partition)

    def _store_link(self, decided: Route, visitor_id: str, partition: int) -> None:
        if decided.unlink:
            self.links.delete(visitor_id, partition)
        elif decided.link_write is not None:
            self.links.put(visitor_id, decided.link_write, partition)
        if decided.change is not None:
            self.metrics.count(self.metrics.identity, decided.change)

    async def _carry(self, decided: Route, visitor_id: str, partition: int, source: Source,
                     event_ts: int, kafka_ts: int, key: bytes | None, value: bytes | None,
                     journeys: JourneyState | None = None) -> None:
        """Hand the visitor's anonymous profile (and their ``journeys``) and this record to the
        customer's partition.

        The forward is sent first; the link and the removal of the anonymous profile are held
        after it, so a failed send changes nothing here, and a crash before the flush replays
        the record, which carries the same profile again (merged once per visitor). A visitor
        erased since (a marker under the visitor id) links again only with a record from after
        the erasure, and carries only what came after it."""
        anonymous = self.people.get(visitor_id)
        if anonymous is not None and anonymous.erased_ts:
            if erased_before(anonymous, event_ts, kafka_ts):  # an erased visitor's old login
                self.metrics.count(self.metrics.erased_dropped, source.value)
                return
            # Only what the visitor did since the erasure travels; the marker stays here.
            marker = erasure_marker(visitor_id, anonymous.erased_ts)
            carried = None if is_erasure_marker(anonymous) else anonymous
            if carried is not None:
                carried.erased_ts = 0
        else:
            marker, carried = None, anonymous
        await self._forward(decided.person_id, Carried(
            source, key, kafka_ts, value or b"", visitor_id,
            carried.to_dict() if carried is not None else None,
            journeys.to_dict() if carried is not None and journeys is not None else None))
        self._store_link(decided, visitor_id, partition)
        if marker is not None:
            self.people.put(visitor_id, marker, partition)
        elif anonymous is not None:
            self.people.delete(visitor_id, partition)
        if carried is not None:
            self.context.erased(visitor_id, kafka_ts)  # the anonymous person is now the customer

    async def _forward(self, person_id: str, envelope: Envelope) -> None:
        await self.emitter.send(self.person_events_topic, person_id.encode(), encode_envelope(envelope))
        self.metrics.rekeyed.inc()

    # ------------------------------------------------------------ person-events records

    async def _on_envelope(self, partition: int, key: bytes | None, value: bytes | None,
                           now: int) -> bool:
        """Handle a person-events record; whether it was a tick."""
        envelope = decode_envelope(value)
        if not isinstance(envelope, Tick) and key is None:
            raise EnvelopeError(f"a {type(envelope).__name__.lower()} envelope needs a key")
        await self._envelope_handlers[type(envelope)](envelope, partition, key, now)
        return type(envelope) is Tick

    async def _on_tick(self, tick: Tick, partition: int, key: bytes | None, now: int) -> None:
        # The worker's own clock for this partition: settle quiet people, fire due timers.
        if self.intent_models is not None and not tick.journeys:
            self.intent_models.sweep(partition, self.people)
        journeys = self.journeys
        if journeys is not None and journeys.running:
            journeys.tick_handled(partition)
            await self._fire_timers(partition, now, journeys.firings_per_tick)
            if not journeys.ticks_in_flight(partition) and journeys.more_due(partition, now):
                # More are due than one tick fires: the rest fire on a tick queued behind the
                # partition's waiting records, so that an ordinary event waits for a few
                # firings at most, not for the whole burst. Only when no other tick of the
                # partition is on the way: one chain of ticks per partition
                # (JourneyShell.tick_wanted).
                await journeys.send_tick_to(partition)

    async def _fire_timers(self, partition: int, now: int, limit: int) -> None:
        """Fire the timers of up to ``limit`` people the partition's clock has passed."""
        journeys = self.journeys
        assert journeys is not None
        until = journeys.clock(partition, now)
        for due_ts, person_id in journeys.due(partition, until, limit):
            profile = self.people.get(person_id)
            decided = journeys.fire(person_id, partition, profile, due_ts, until, self.rule_set, now)
            if decided is None or profile is None:
                continue
            await self._send_decided(person_id, decided.actions, decided.held_out, due_ts,
                                     journeys.analytics.timer_action_delay)
            self.people.put(person_id, profile, partition)  # its sends count for the caps
            self.context.changed(profile, now)

    async def _on_unlink(self, unlink: Unlink, partition: int, key: bytes | None, now: int) -> None:
        visitor_id = key.decode()  # type: ignore[union-attr]
        if self.links.get(visitor_id) is not None:
            self.links.delete(visitor_id, partition)
            self.metrics.count(self.metrics.identity, "unlinked")
        # The visitor's profile becomes a marker: an older record of the visitor (anonymous, or
        # its old login) must neither re-create it nor link it again.
        erased_ts = unlink.kafka_ts or now
        self.people.put(visitor_id, erasure_marker(visitor_id, erased_ts, self.people.get(visitor_id)),
                        partition)
        self.context.erased(visitor_id, erased_ts)
        if self.journeys is not None:
            self.journeys.erase(visitor_id, partition, erased_ts)

    async def _on_forwarded(self, forwarded: Forwarded, partition: int, key: bytes | None,
                            now: int) -> None:
        accepted = self._decode_forwarded(forwarded, now)
        await self._apply(key.decode(), accepted, partition, forwarded.kafka_ts, now)  # type: ignore[union-attr]

    async def _on_carried(self, carried: Carried, partition: int, key: bytes | None, now: int) -> None:
        accepted = self._decode_forwarded(carried, now)
        anonymous = Profile.from_dict(carried.profile) if carried.profile is not None else None
        journeys = JourneyState.from_dict(carried.journeys) if carried.journeys is not None else None
        await self._apply(key.decode(), accepted, partition, carried.kafka_ts, now,  # type: ignore[union-attr]
                          carried=(carried.visitor_id, anonymous), carried_journeys=journeys)

    def _decode_forwarded(self, forwarded: Forwarded | Carried, now: int) -> Accepted:
        decoded = decode_record(forwarded.source, forwarded.key, forwarded.value, now, self.limits)
        if isinstance(decoded, Rejected):  # accepted once already, so only a version skew gets here
            raise EnvelopeError(f"forwarded record no longer decodes: {decoded.reason}")
        return decoded

    # ------------------------------------------------------------ the person

    async def _apply(self, person_id: str, accepted: Accepted, partition: int, kafka_ts: int,
                     now: int, carried: tuple[str, Profile | None] | None = None,
                     carried_journeys: JourneyState | None = None) -> None:
        event = accepted.event
        profile = self.people.get(person_id)
        carried_changed = False
        if carried is not None and not erased_before(profile, event.ts, kafka_ts):
            profile, carried_changed = carry_into(profile, person_id, *carried)
            if carried_changed and carried[1] is not None:
                self.metrics.count(self.metrics.identity, "merged")
        t1 = time.perf_counter()
        models = self.intent_models
        scorer = models.scorer_for(partition) if models is not None else None
        journeys = self.journeys if self.journeys is not None and self.journeys.running else None
        person = fired = None
        if journeys is not None and carried_changed and carried_journeys is not None:
            # The visitor's journeys go on as the customer's, once (with the carry's merge).
            journeys.take_over(person_id, partition, carried_journeys, event.ts)
        if journeys is not None:  # the person's timers due by this event fire first
            person, fired = journeys.at_event(person_id, partition, profile, event.ts,
                                              self.rule_set, now)
            if fired is not None and profile is not None:
                await self._send_decided(person_id, fired.actions, fired.held_out, event.ts,
                                         journeys.analytics.timer_action_delay)
        outcome = process_event(event, person_id, profile, Trigger(kafka_ts, now), self.rule_set,
                                scorer, person)
        if journeys is not None and person is not None:
            if outcome.profile is None and not outcome.erased:
                journeys.erase(person_id, partition, event.ts)
            else:
                journeys.after_event(person, partition)
        if models is not None:
            models.after_event(partition, event.ts, outcome.settled)
        t2 = time.perf_counter()
        self._stage["decide"].observe(t2 - t1)
        self.metrics.count_event(accepted.source.value, event_type(event))
        if outcome.erased:  # from before the person's erasure: dropped, not dead-lettered
            self.metrics.count(self.metrics.erased_dropped, accepted.source.value)
            return
        if outcome.replay:
            self.metrics.count(self.metrics.replayed, accepted.source.value)
            if (carried_changed or fired) and profile is not None:  # the merge itself is news
                self.people.put(person_id, profile, partition)
                self.context.changed(profile, kafka_ts)
            return
        for held in outcome.suppressed:
            self.metrics.count(self.metrics.suppressed, held.action, held.cause)
        if self.observer is not None:
            self.observer.applied(person_id, event, outcome.profile, outcome.actions,
                                  outcome.held_out, self.rule_set)
        # Actions go out before the profile is written: if the worker dies in between, the
        # replayed trigger re-sends the same action_id (at-least-once) instead of losing it.
        await self._send_decided(person_id, outcome.actions, outcome.held_out, kafka_ts)
        if outcome.actions:
            self._stage["emit"].observe(time.perf_counter() - t2)
        if outcome.profile is None:
            await self._erase(person_id, profile, outcome.erasure, partition, kafka_ts)
        else:
            self.people.put(person_id, outcome.profile, partition)
            self.context.changed(outcome.profile, kafka_ts)

    async def _send_decided(self, person_id: str, actions: list[dict[str, Any]],
                            held_out: list[dict[str, Any]], since_ms: int,
                            histogram: Any = None) -> None:
        """Send actions (their delivery observed from ``since_ms`` on ``histogram``, default the
        action's event-to-action latency) and the records of held-out decisions."""
        key = person_id.encode()
        for action in actions:
            channel, name = action["channel"], action["action"]
            observed = histogram if histogram is not None else self._action_histogram(channel, name)
            await self.emitter.send(self.action_topic(channel), key, orjson.dumps(action),
                                    observe_on_delivery(observed, self.clock_ms, since_ms))
            self.metrics.count_action(channel, name, action["rule"])
        for record in held_out:  # the control group: decided, recorded, not sent
            await self.emitter.send(self.held_out_topic, key, orjson.dumps(record))

    def _action_histogram(self, channel: str, action: str) -> Any:
        histogram = self._to_action.get((channel, action))
        if histogram is None:
            histogram = self._to_action[(channel, action)] = \
                self.metrics.event_to_action.labels(channel, action)
        return histogram

    async def _erase(self, person_id: str, profile: Profile | None, marker: Profile | None,
                     partition: int, kafka_ts: int) -> None:
        """Remove the person here (keeping the erasure marker), and their visitors' links where
        those live."""
        if marker is not None:
            self.people.put(person_id, marker, partition)
        else:
            self.people.delete(person_id, partition)
        self.context.erased(person_id, kafka_ts)
        self.metrics.erasures.inc()
        for visitor_id in visitors_to_unlink(person_id, profile):
            await self.emitter.send(self.person_events_topic, visitor_id.encode(),
                                    encode_envelope(Unlink(kafka_ts)))

    async def _dead_letter(self, topic: str, partition: int, offset: int, kafka_ts: int,
                           key: bytes | None, value: bytes | None, code: str, reason: str,
                           now: int) -> None:
        record = dead_letter_record(topic=topic, partition=partition, offset=offset,
                                    kafka_ts=kafka_ts, key=key, value=value, code=code,
                                    reason=reason, rejected_ts=now)
        # The record holds the key (bounded, with its size and sha256); the Kafka key is cut so
        # that a huge key cannot make the dead letter itself too large to send.
        await self._send_dead_letter(key[:DEAD_LETTER_KEY_BYTES] if key else key,
                                     orjson.dumps(record), (topic, partition, offset), 1)

    async def _send_dead_letter(self, key: bytes | None, value: bytes, source: tuple[str, int, int],
                                attempt: int) -> None:
        """Send a dead-letter record; one the broker refuses is sent again, up to
        :data:`DEAD_LETTER_ATTEMPTS` times, then counted as lost and logged with where its
        source record is. Never raises: a dead letter must not stop the agent."""

        def failed(exc: BaseException) -> None:
            if attempt < DEAD_LETTER_ATTEMPTS:
                self.metrics.dead_letter_retries.inc()
                retry = asyncio.ensure_future(
                    self._send_dead_letter(key, value, source, attempt + 1))
                self._retries.add(retry)  # held until done: a task nobody holds may vanish
                retry.add_done_callback(self._retries.discard)
            else:
                self.metrics.dead_letters_lost.inc()
                log.error("dead letter for %s[%d]@%d lost after %d attempts: %r",
                          *source, attempt, exc)

        try:
            await self.emitter.send(self.dead_letter_topic, key, value, None, failed)
        except Exception as exc:  # refused before it was sent (e.g. the producer's limits)
            failed(exc)
