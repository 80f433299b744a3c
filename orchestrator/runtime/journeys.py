"""Journeys in the worker: state per person in a table, timers per partition, analytics.

:class:`JourneyShell` is what :class:`~orchestrator.runtime.processing.JourneyProcessor` calls on
the event path and on a partition's tick; it carries out what the pure core decides
(``orchestrator.core.journeys``), as ``JourneyRunner.feed`` does in the tests:

- **State**: a person's :class:`JourneyState` lives in the ``journeys`` table (changelog-backed)
  behind a :class:`JourneyStore`, held per partition and written by the same per-partition flush
  as the profiles, so records are acknowledged only after the journey state they changed.
- **Event path**: the person's timers due by the event's ``ts`` fire first, on the profile as it
  was before the event (:meth:`JourneyShell.at_event`); the journeys then advance on the applied
  event inside ``process_event``, their requests arbitrated together with the rules.
- **Timers**: a heap per partition of (due time, person), built from the table the first time
  the partition is touched after it was assigned (a restart or a rebalance loses no timer) and
  dropped when it is revoked. After each record of a partition, one of the people whose timers
  the partition's clock has passed fires (:meth:`JourneyShell.fires_after_record`): under
  traffic that is where timers fire, and no tick is needed. A partition with a timer due that
  its records have not fired (a quiet one, or a burst) gets a tick, which fires a bounded
  number of people (:meth:`JourneyShell.due`, :meth:`JourneyShell.fire`); when more are due,
  a follow-up tick goes to the back of the partition, behind the records waiting, so a burst
  of timers is interleaved with ordinary records instead of holding them up. One chain of ticks
  per partition (:meth:`JourneyShell.tick_wanted`); while a tick is on its way the partition's
  records fire nothing. An entry is only a hint: firing goes by the person's stored state, so a
  stale, cancelled or duplicate entry does nothing.
- **The clock**: the partition's event time (the newest ``ts`` applied there), advanced to the
  worker's wall clock while the partition's input topics are caught up (no lag). So live, a
  quiet person's timer fires within a tick of its due time; catching up after a stop, timers
  fire in event time, never before events from before their due time are read.
- **Analytics**: the machine's facts become Prometheus series and the figures of
  ``GET /journeys`` (:class:`JourneyAnalytics`).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson
from faust.types import TP as _TopicPartition
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.core.journeys import (
    Fact,
    JourneyActions,
    JourneyOutcome,
    JourneySet,
    JourneyState,
    PersonJourneys,
    arbitrate_requests,
    fire_due,
    hand_over,
    leave_all,
    take_over,
)
from orchestrator.core.profile import Profile
from orchestrator.core.rules import RuleSet
from orchestrator.runtime.scoring import partition_keys
from orchestrator.runtime.stores import TableStore

#: A tick not back in the agent after this long is taken as lost (see JourneyShell.tick_wanted).
TICK_LOST_AFTER_S = 5.0
#: Seconds between two steps of a journey: a minute to a fortnight of waits, and the instant ones.
STEP_INTERVAL_BUCKETS = (0.001, 0.1, 1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 86_400,
                         2 * 86_400, 7 * 86_400, 14 * 86_400, 30 * 86_400)
#: Seconds from a timer's due time to its firing, and to its action being acknowledged.
LATENESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0, 60.0)


# ---------------------------------------------------------------------- state


def encode_journey_state(state: JourneyState) -> bytes:
    """A person's journey state as the ``journeys`` table stores it: ``[active, past]`` in
    compact JSON (about 90 bytes for one active journey and its past entry)."""
    return orjson.dumps([state.active, state.past])


def decode_journey_state(stored: bytes) -> JourneyState:
    active, past = orjson.loads(stored)
    return JourneyState(active=active, past=past)


class JourneyStore(TableStore[JourneyState]):
    """Journey states by person id (table ``journeys``), held until the partition's flush."""

    def __init__(self, table: MutableMapping[str, bytes]) -> None:
        super().__init__(table, encode_journey_state, decode_journey_state)


@dataclass
class TimerIndex:
    """Per partition, a heap of (due time, person id): when to look at whom."""

    heaps: dict[int, list[tuple[int, str]]] = field(default_factory=dict)

    def built(self, partition: int) -> bool:
        return partition in self.heaps

    def build(self, partition: int, entries: Iterable[tuple[int, str]]) -> None:
        heap = list(entries)
        heapq.heapify(heap)
        self.heaps[partition] = heap

    def add(self, partition: int, due_ts: int, person_id: str) -> None:
        heapq.heappush(self.heaps.setdefault(partition, []), (due_ts, person_id))

    def pending(self, partition: int) -> int:
        return len(self.heaps.get(partition, ()))

    def next_due(self, partition: int) -> int | None:
        heap = self.heaps.get(partition)
        return heap[0][0] if heap else None

    def discard(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self.heaps.pop(partition, None)


# ---------------------------------------------------------------------- analytics


@dataclass
class _StepFigures:
    reached: int = 0
    total_from_previous_ms: int = 0


@dataclass
class _JourneyFigures:
    entered: int = 0
    converted: int = 0
    exited: dict[str, int] = field(default_factory=dict)
    steps: dict[str, _StepFigures] = field(default_factory=dict)


class JourneyAnalytics:
    """Counts of the machine's facts, per journey and step, as Prometheus series and as the
    figures of ``GET /journeys``. Counts are this worker's since it started (facts of the
    partitions it owned at the time); ``active`` is the people in each journey now, in the
    partitions it owns now."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.entered = Counter("orchestrator_journey_entered", "People who entered a journey",
                               ["journey"], registry=r)
        self.steps = Counter("orchestrator_journey_steps", "Journey steps reached",
                             ["journey", "step"], registry=r)
        self.converted = Counter("orchestrator_journey_converted",
                                 "People who reached a journey's goal", ["journey"], registry=r)
        self.exited = Counter("orchestrator_journey_exited", "People who left a journey",
                              ["journey", "reason"], registry=r)
        self.step_interval = Histogram(
            "orchestrator_journey_step_interval_seconds",
            "Event time from a journey's previous step (or the entry) to the step reached",
            ["journey"], buckets=STEP_INTERVAL_BUCKETS, registry=r)
        self.timer_lateness = Histogram(
            "orchestrator_journey_timer_lateness_seconds",
            "Wall clock from a timer's due time to its firing", buckets=LATENESS_BUCKETS,
            registry=r)
        self.timer_action_delay = Histogram(
            "orchestrator_journey_timer_action_seconds",
            "Wall clock from a timer's due time to its action being acknowledged by the broker",
            buckets=LATENESS_BUCKETS, registry=r)
        self.timers_fired = Counter("orchestrator_journey_timers_fired",
                                    "Journey timers fired (each step id once per firing)",
                                    registry=r)
        self._figures: dict[str, _JourneyFigures] = {}
        #: partition -> journey -> people active in it (built with the partition's timer index).
        self.active: dict[int, dict[str, int]] = {}
        # Labelled children by (metric, labels): ``labels()`` takes a lock and builds a key.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def count(self, partition: int, facts: Iterable[Fact]) -> None:
        active = self.active.setdefault(partition, {})
        for fact in facts:
            figures = self._figures.get(fact.journey)
            if figures is None:
                figures = self._figures[fact.journey] = _JourneyFigures()
            kind = fact.kind
            if kind == "reached":
                step = figures.steps.get(fact.step or "")
                if step is None:
                    step = figures.steps[fact.step or ""] = _StepFigures()
                step.reached += 1
                step.total_from_previous_ms += fact.since_previous_ms
                self._child(self.steps, fact.journey, fact.step or "").inc()
                self._child(self.step_interval, fact.journey).observe(fact.since_previous_ms / 1000)
            elif kind == "entered":
                figures.entered += 1
                active[fact.journey] = active.get(fact.journey, 0) + 1
                self._child(self.entered, fact.journey).inc()
            elif kind == "converted":
                figures.converted += 1
                self._child(self.converted, fact.journey).inc()
            elif kind == "exited":
                reason = fact.reason or "completed"
                figures.exited[reason] = figures.exited.get(reason, 0) + 1
                active[fact.journey] = max(0, active.get(fact.journey, 0) - 1)
                self._child(self.exited, fact.journey, reason).inc()
            elif kind == "handed_over":  # the person goes on as the customer, elsewhere
                active[fact.journey] = max(0, active.get(fact.journey, 0) - 1)
            elif kind == "taken_over":
                active[fact.journey] = active.get(fact.journey, 0) + 1

    def as_json(self, journeys: JourneySet, partitions: list[int], worker: str) -> dict[str, Any]:
        """The body of ``GET /journeys`` (a contract: a page elsewhere reads it)."""
        out = []
        for journey in journeys.journeys:
            figures = self._figures.get(journey.id) or _JourneyFigures()
            steps = []
            for step in journey.steps:
                seen = figures.steps.get(step.id) or _StepFigures()
                mean = (seen.total_from_previous_ms / seen.reached / 1000) if seen.reached else None
                steps.append({"id": step.id, "kind": step.kind, "reached": seen.reached,
                              "mean_s_from_previous": mean})
            active = sum(self.active.get(p, {}).get(journey.id, 0) for p in partitions)
            out.append({"id": journey.id, "goal": journey.goal_text, "entered": figures.entered,
                        "active": active, "converted": figures.converted,
                        "exited": dict(figures.exited), "steps": steps})
        return {"journeys": out, "partitions": sorted(partitions), "worker": worker}


class JourneyCollector(Collector):
    """People active per journey in this worker's partitions, read at scrape time."""

    def __init__(self, analytics: JourneyAnalytics, partitions: Callable[[], Iterable[int]]) -> None:
        self.analytics = analytics
        self.partitions = partitions

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("orchestrator_journey_active",
                                  "People in a journey now (this worker's partitions)",
                                  labels=["journey"])
        totals: dict[str, int] = {}
        for partition in self.partitions():
            for journey_id, count in self.analytics.active.get(partition, {}).items():
                totals[journey_id] = totals.get(journey_id, 0) + count
        for journey_id, count in sorted(totals.items()):
            gauge.add_metric([journey_id], count)
        yield gauge


# ---------------------------------------------------------------------- the shell


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _TicksInFlight:
    """A partition's ticks sent and not yet handled, and when the last one was sent."""

    count: int = 0
    last_sent: float = 0.0


class JourneyShell:
    """Journey state, timers and analytics of the partitions this worker owns.

    ``caught_up(partition)`` says whether the partition's inputs have no lag (the clock may then
    run with the wall clock); ``journeys`` is swapped whole on a reload.
    """

    def __init__(self, journeys: JourneySet, table: MutableMapping[str, bytes], partitions: int,
                 registry: CollectorRegistry, *, clock_ms: Callable[[], int] = wall_ms,
                 caught_up: Callable[[int], bool] = lambda partition: True,
                 firings_per_tick: int = 8, firings_per_record: int = 1) -> None:
        self.journeys = journeys
        #: At most this many people's timers fire per tick of a partition (see :meth:`due`).
        self.firings_per_tick = firings_per_tick
        #: At most this many after each record of a partition (0: timers fire on ticks only).
        self.firings_per_record = firings_per_record
        #: partition -> its ticks sent and not yet handled: one chain of ticks per partition
        #: (see :meth:`tick_wanted`).
        self._in_flight: dict[int, _TicksInFlight] = {}
        #: Sends a tick to a partition (set by :func:`add_journeys`; None: no follow-up ticks).
        self.send_tick: Callable[[int], Awaitable[None]] | None = None
        self.store = JourneyStore(table)
        self.partitions = partitions
        self.clock_ms = clock_ms
        self.caught_up = caught_up
        self.timers = TimerIndex()
        self.analytics = JourneyAnalytics(registry)
        #: partition -> the newest event ts applied there (its event-time clock).
        self.watermarks: dict[int, int] = {}

    @property
    def running(self) -> bool:
        """Whether there are journeys to run (with none, events and ticks skip the shell)."""
        return bool(self.journeys.journeys)

    # ------------------------------------------------------------ partitions

    def ensure(self, partition: int) -> None:
        """Build the partition's timer index and active counts from the table, once after it
        was assigned. Runs in the agent, before anything of the partition is changed."""
        if self.timers.built(partition):
            return
        entries: list[tuple[int, str]] = []
        active: dict[str, int] = {}
        for person_id in partition_keys(self.store.table, partition, self.partitions):
            state = self.store.get(person_id)
            if state is None:
                continue
            due = state.next_due()
            if due is not None:
                entries.append((due, person_id))
            for journey_id in state.active:
                active[journey_id] = active.get(journey_id, 0) + 1
        self.timers.build(partition, entries)
        self.analytics.active[partition] = active

    def flush(self, partition: int) -> int:
        return self.store.flush(partition)

    def held_partitions(self) -> list[int]:
        return self.store.held_partitions()

    def discard(self, partitions: set[int]) -> None:
        """Forget revoked partitions: held changes, timers, counts (the new owner rebuilds them)."""
        self.store.discard(partitions)
        self.timers.discard(partitions)
        for partition in partitions:
            self.analytics.active.pop(partition, None)
            self.watermarks.pop(partition, None)
            self._in_flight.pop(partition, None)  # its ticks in flight may go to the new owner

    # ------------------------------------------------------------ ticks in flight

    async def send_tick_to(self, partition: int) -> None:
        """Send a tick to the partition through :attr:`send_tick`, counted as in flight until
        the agent handles it (:meth:`tick_handled`)."""
        if self.send_tick is None:
            return
        ticks = self._in_flight.get(partition)
        if ticks is None:
            ticks = self._in_flight[partition] = _TicksInFlight()
        ticks.count += 1
        ticks.last_sent = time.monotonic()
        await self.send_tick(partition)

    def tick_handled(self, partition: int) -> None:
        """A tick of the partition reached the agent."""
        ticks = self._in_flight.get(partition)
        if ticks is not None and ticks.count > 0:
            ticks.count -= 1

    def ticks_in_flight(self, partition: int) -> int:
        ticks = self._in_flight.get(partition)
        return ticks.count if ticks is not None else 0

    def tick_wanted(self, partition: int, now_ms: int) -> bool:
        """Whether to send the partition a tick now: it would do something
        (:meth:`needs_tick`) and none of its ticks is on the way. One chain of ticks per
        partition: a tick sent while another is in flight would start a second chain of
        follow-ups, and under a burst of due timers the chains multiplied -- every periodic tick
        one more -- until firings crowded out the partition's records. A tick in flight for
        longer than :data:`TICK_LOST_AFTER_S` is taken as lost (its partition moved and came
        back) and no longer holds the partition's ticks back."""
        ticks = self._in_flight.get(partition)
        if ticks is not None and ticks.count > 0:
            if time.monotonic() - ticks.last_sent < TICK_LOST_AFTER_S:
                return False
            ticks.count = 0
        return self.needs_tick(partition, now_ms)

    def owned(self) -> list[int]:
        return sorted(self.timers.heaps)

    # ------------------------------------------------------------ the event path

    def at_event(self, person_id: str, partition: int, profile: Profile | None, event_ts: int,
                 rule_set: RuleSet, now_ms: int) -> tuple[PersonJourneys, JourneyActions | None]:
        """Before ``process_event``: fire the person's timers due by the event (on the profile
        before the event), advance the partition's clock; the person's journeys for the event,
        and the arbitrated actions of the timers that fired (None: none fired)."""
        self.ensure(partition)
        if event_ts > self.watermarks.get(partition, 0):
            self.watermarks[partition] = event_ts
        state = self.store.get(person_id)
        fired = None
        if state is not None and profile is not None:
            due = state.next_due()
            if due is not None and due <= event_ts:
                outcome = fire_due(self.journeys, state, person_id, profile, event_ts)
                fired = self._arbitrate(outcome, profile, rule_set, now_ms, due)
                self._keep(person_id, partition, outcome, state)
                state = outcome.state
        return PersonJourneys(self.journeys, person_id, state), fired

    def after_event(self, person: PersonJourneys, partition: int) -> None:
        """After ``process_event``: keep what the journeys did on the event (if they saw it)."""
        if person.outcome is not None:
            self._keep(person.person_id, partition, person.outcome, person.state)

    def erase(self, person_id: str, partition: int, ts: int, reason: str = "erased") -> None:
        """The person leaves every journey and their journey state is deleted."""
        self.ensure(partition)
        state = self.store.get(person_id)
        if state is None:
            return
        outcome = leave_all(self.journeys, state, person_id, ts, reason)
        self.analytics.count(partition, outcome.facts)
        self.store.delete(person_id, partition)

    def state_of(self, person_id: str) -> JourneyState | None:
        """The person's journey state (held or stored), None when they were never in one."""
        return self.store.get(person_id)

    def handed_over(self, person_id: str, partition: int, state: JourneyState | None,
                    ts: int) -> None:
        """A visitor's journey ``state`` went to the customer they logged in as, with their
        anonymous profile (the carry was sent): it is no longer the visitor's."""
        self.ensure(partition)
        outcome = hand_over(state, ts)
        self.analytics.count(partition, outcome.facts)
        if state is not None:
            self.store.delete(person_id, partition)

    def take_over(self, person_id: str, partition: int, carried: JourneyState, ts: int) -> None:
        """The customer takes over the journeys a visitor of theirs handed over at login (before
        the identifying event is decided: a wait for the login ends on it, its goal converts)."""
        self.ensure(partition)
        state = self.store.get(person_id)
        self._keep(person_id, partition, take_over(self.journeys, state, person_id, carried, ts),
                   state)

    # ------------------------------------------------------------ the tick

    def clock(self, partition: int, now_ms: int) -> int:
        """The partition's clock: its event time, or the wall clock while its inputs are caught
        up (whichever is later)."""
        watermark = self.watermarks.get(partition, 0)
        return max(watermark, now_ms) if self.caught_up(partition) else watermark

    def due(self, partition: int, until: int, limit: int | None = None) -> list[tuple[int, str]]:
        """(due time, person) of the partition's timers due by ``until`` (its :meth:`clock`),
        oldest first, at most ``limit`` (default :attr:`firings_per_tick`) people; a person is
        named once (their :meth:`fire` fires all that is due). What is left stays in the index:
        :meth:`more_due` says so."""
        self.ensure(partition)
        seen: set[str] = set()
        out = []
        if limit is None:
            limit = self.firings_per_tick
        heap = self.timers.heaps.get(partition)
        while heap and heap[0][0] <= until:
            if heap[0][1] not in seen:
                if len(out) == limit:
                    break  # the rest fire on the next tick, after the records waiting now
                seen.add(heap[0][1])
                out.append(heap[0])
            heapq.heappop(heap)
        return out

    def needs_tick(self, partition: int, now_ms: int) -> bool:
        """Whether a tick of the partition would do anything: its timer index is not built yet
        (the tick builds it), or a timer is due by its clock. Quiet partitions are not ticked:
        a tick is a record produced and fetched again."""
        return not self.timers.built(partition) or self.more_due(partition, now_ms)

    def fires_after_record(self, partition: int, now_ms: int) -> bool:
        """Whether timers of the partition should fire after the record just handled there (up
        to :attr:`firings_per_record` people). Under traffic a partition's records come every
        few milliseconds, so its timers fire within one of them instead of waiting for a tick,
        and no tick (a record produced and fetched again) is needed. Not while a tick of the
        partition is on its way: then a burst is being fired by the chain of ticks, paced by
        their round trips, and records firing as well would add firings at the rate records
        come, more than the worker can do beside them (in a burst of 1,000 due/s the ordinary
        p99 rose 2.6 and 9 times: ``docs/journeys.md``, "Bursts"). Cheap when nothing is due:
        a look at the top of the partition's heap (:meth:`more_due`)."""
        return (self.firings_per_record > 0 and bool(self.journeys.journeys)
                and not self.ticks_in_flight(partition) and self.more_due(partition, now_ms))

    def more_due(self, partition: int, now_ms: int) -> bool:
        """Whether timers the partition's clock has passed are still waiting to fire (none
        while its index is not built). The clock's lag check only when a timer is due by the
        wall clock or the event time: the clock is never later than both."""
        due = self.timers.next_due(partition)
        if due is None or (due > now_ms and due > self.watermarks.get(partition, 0)):
            return False
        return due <= self.clock(partition, now_ms)

    def fire(self, person_id: str, partition: int, profile: Profile | None, due_ts: int,
             until_ts: int, rule_set: RuleSet, now_ms: int) -> JourneyActions | None:
        """Fire the person's timers due by ``until_ts``; the arbitrated actions (None: nothing
        was due -- a stale index entry). A person with no profile left (a visitor carried into a
        customer, or erased) leaves their journeys instead."""
        state = self.store.get(person_id)
        if state is None:
            return None
        due = state.next_due()
        if due is None or due > until_ts:
            if due is not None:
                self.timers.add(partition, due, person_id)  # moved later: look again then
            return None
        if profile is None:
            self.erase(person_id, partition, due, "merged")
            return None
        self.analytics.timer_lateness.observe(max(0, now_ms - due) / 1000)
        outcome = fire_due(self.journeys, state, person_id, profile, until_ts)
        actions = self._arbitrate(outcome, profile, rule_set, now_ms, due)
        self._keep(person_id, partition, outcome, state)
        return actions

    # ------------------------------------------------------------ internals

    def _arbitrate(self, outcome: JourneyOutcome, profile: Profile, rule_set: RuleSet,
                   now_ms: int, due_ts: int) -> JourneyActions:
        self.analytics.timers_fired.inc(len(outcome.fired))
        if not outcome.requests:
            return JourneyActions()
        # A timer's action record: trigger_ts is the due time (its lateness is measured from it).
        return arbitrate_requests(outcome.requests, profile, version=self.journeys.version,
                                  lookups=rule_set.lookups, now_ms=now_ms, kafka_ts=due_ts)

    def _keep(self, person_id: str, partition: int, outcome: JourneyOutcome,
              before: JourneyState | None) -> None:
        self.analytics.count(partition, outcome.facts)
        state = outcome.state
        if state is None:
            if before is not None:
                self.store.delete(person_id, partition)
            return
        if not state.active and not state.past:
            return  # never in a journey: nothing to keep
        if outcome.facts or outcome.fired or before is None:
            self.store.put(person_id, state, partition)
        for timer in outcome.timers:
            self.timers.add(partition, timer.due_ts, person_id)


# ---------------------------------------------------------------------- wiring


def empty_journey_set(rule_set: RuleSet) -> JourneySet:
    """No journeys (a reload may bring some)."""
    return JourneySet(version="none", journeys=(), documents=MappingProxyType({}),
                      lookups=rule_set.lookups)


def add_journeys(app: Any, settings: Any, processor: Any, registry: CollectorRegistry,
                 journeys: JourneySet, table_options: dict[str, Any] | None,
                 security: Any) -> JourneyShell:
    """Wire journeys into the worker: the ``journeys`` table, the shell the processor calls, a
    tick per assigned person-events partition every ``journey_tick_ms`` (the partitions' ticks
    spread evenly over that time), the active-people
    gauge and ``GET /journeys`` (operators, as ``/rules``)."""
    from faust.web import Request, Response, View

    from orchestrator.core.access import Scope
    from orchestrator.core.envelopes import JOURNEY_TICK
    from orchestrator.runtime.faust_internals import committed_offsets
    from orchestrator.runtime.web_guard import refusal

    table = app.Table("journeys", partitions=settings.partitions, key_type=str, value_type=bytes,
                      options=table_options, help="person id -> journey state (orjson)")
    person_events = settings.person_events_topic
    inputs = tuple(settings.input_topics)

    def caught_up(partition: int) -> bool:
        # No lag on the partition's input topics: nothing older is waiting to be read, so the
        # clock may run with the wall clock. (person-events is left out: the ticks are on it.)
        consumer = app.consumer
        if consumer is None:
            return False
        committed = None
        for topic in inputs:
            tp = _TopicPartition(topic, partition)
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # not fetched yet
                highwater = None
            if not highwater:
                continue
            last = processor.last_offsets.get((topic, partition))
            if last is None:
                if committed is None:
                    committed = committed_offsets(consumer)
                position = committed.get(tp) or 0
            else:
                position = last + 1
            if position < highwater:
                return False
        return True

    shell = JourneyShell(journeys, table, settings.partitions, registry, caught_up=caught_up,
                         firings_per_tick=settings.journey_firings_per_tick,
                         firings_per_record=settings.journey_firings_per_record)
    processor.journeys = shell

    async def send_tick(partition: int) -> None:
        await app.producer.send(person_events, None, JOURNEY_TICK, partition, None, None)

    shell.send_tick = send_tick

    def assigned() -> list[int]:
        consumer = app.consumer
        if consumer is None or not app.started:
            return []
        return sorted(tp.partition for tp in consumer.assignment() if tp.topic == person_events)

    registry.register(JourneyCollector(shell.analytics, assigned))

    turn = iter(range(0))
    owned: set[int] = set()

    @app.timer(interval=settings.journey_tick_ms / 1000 / settings.partitions)
    async def tick_journey_timers() -> None:
        # Through the partition itself, so that timers fire in the agent (table writes) and in
        # order with the partition's records. One partition per turn, round the partitions once
        # per journey_tick_ms: the partitions' firings are spread over the tick instead of all
        # falling in one burst that ordinary records of every partition wait behind. A partition
        # with nothing due is not ticked (an idle worker sends no ticks).
        nonlocal turn, owned
        if not shell.journeys.journeys or app.rebalancing or not app.started:
            return
        partition = next(turn, None)
        if partition is None:
            turn = iter(range(settings.partitions))
            owned = set(assigned())
            partition = next(turn)
        if partition in owned and shell.tick_wanted(partition, shell.clock_ms()):
            await shell.send_tick_to(partition)

    @app.page("/journeys")
    class Journeys(View):
        async def get(self, request: Request) -> Response:
            refused = refusal(self, security.tokens, request, Scope.OPERATIONS)
            if refused is not None:
                return refused
            return self.json(shell.analytics.as_json(shell.journeys, assigned(),
                                                     str(app.conf.canonical_url)))

    return shell
