"""The Faust application: topics, the person table, the journey agent and the HTTP views.

``build_app`` wires everything from a :class:`Settings`; nothing connects at import. The agent
is a loop that hands each record to :class:`JourneyProcessor`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import faust
from faust.web import Request, Response, View

from orchestrator.core.access import Scope
from orchestrator.core.envelopes import TICK
from orchestrator.core.journeys import JourneySet
from orchestrator.core.rules import RuleSet
from orchestrator.runtime import faust_consumer
from orchestrator.runtime.analytics import RouteFeed, WorkerAnalytics, add_analytics_views
from orchestrator.runtime.console import add_console
from orchestrator.runtime.context_feed import ContextPublisher
from orchestrator.runtime.context_view import add_context_view
from orchestrator.runtime.faust_internals import (
    committed_offsets,
    partition_dbs,
    record_in_hand,
    set_fetch_limits,
)
from orchestrator.runtime.faust_monitor import LightMonitor
from orchestrator.runtime.fetch_pacing import FetchLimits, FetchPacing
from orchestrator.runtime.journeys import JourneyShell, add_journeys, empty_journey_set
from orchestrator.runtime.kafka_security import faust_credentials
from orchestrator.runtime.metrics import EngineMetrics, PartitionLag, RuntimeCollector
from orchestrator.runtime.processing import Emitter, JourneyProcessor, OnDelivered, OnFailed, wall_clock_ms
from orchestrator.runtime.rules_feed import RuleSetState, follow
from orchestrator.runtime.scoring import ModelQualityCollector, PartitionedModels
from orchestrator.runtime.settings import Settings, load_intent_specs
from orchestrator.runtime.web_guard import refusal
from orchestrator.runtime.web_security import WebSecurity, load_web_security

log = logging.getLogger(__name__)


class OrchestratorApp(faust.App):
    """Faust's app, with a cheaper way to the producer once it runs.

    Faust reaches the producer through ``maybe_start_producer`` for every record it publishes
    (every table changelog write); that goes through mode's ``stampede`` wrapper, which yields
    to the event loop three times per call. Under load the producer buffer that carries
    changelog writes then drains at a fraction of the rate the agent fills it, and past 100
    buffered records Faust stops feeding the stream (``ProducerBuffer.wait_until_ebb``): the
    agent stalls with an idle CPU. A started producer is returned at once here.
    """

    async def maybe_start_producer(self) -> Any:
        producer = self.producer
        if not self.in_transaction and producer.started:
            return producer
        return await super().maybe_start_producer()

    #: Called by the consumer at each fetch rewind (runtime/faust_consumer.py).
    on_fetch_rewind: Callable[[Any, int, int], None] | None = None
    #: Called by the consumer with each fetch's records, by topic partition.
    on_fetched: Callable[[Mapping[Any, Any]], None] | None = None

    def _new_transport(self) -> Any:
        # The consumer hands fetched records to the streams without four tasks per record
        # (runtime/faust_consumer.py); Faust has no setting for its consumer class.
        return faust_consumer.Transport(self.conf.broker_consumer, self)


class KafkaEmitter:
    """Sends raw bytes straight to the app's producer (no Faust channel, no buffer per record).

    Faust's commit flushes this producer before it commits offsets, so a record sent here is
    acknowledged by the broker before the offset of the record that caused it is committed.
    """

    def __init__(self, app: faust.App, metrics: EngineMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # topic -> the callback of records nobody waits for: one per topic, not one per record.
        self._unobserved: dict[str, Callable[[Any], None]] = {}

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   on_delivered: OnDelivered | None = None,
                   on_failed: OnFailed | None = None) -> None:
        future = await self.app.producer.send(topic, key, value, None, None, None)
        if on_delivered is None and on_failed is None:
            callback = self._unobserved.get(topic)
            if callback is None:
                callback = self._unobserved[topic] = self._delivered(topic, None, None)
        else:
            callback = self._delivered(topic, on_delivered, on_failed)
        future.add_done_callback(callback)

    def _delivered(self, topic: str, on_delivered: OnDelivered | None,
                   on_failed: OnFailed | None) -> Callable[[Any], None]:
        def callback(future: Any) -> None:
            if future.cancelled():
                if on_failed is not None:
                    on_failed(asyncio.CancelledError())
                return
            error = future.exception()
            if error is not None:
                self.metrics.send_failures.labels(topic).inc()
                log.warning("record to %s was not accepted: %r", topic, error)
                if on_failed is not None:
                    on_failed(error)
            elif on_delivered is not None:
                on_delivered()

        return callback


@dataclass
class _JourneyState:
    #: The journey agent's stream, once it runs (records are acknowledged through it).
    stream: Any = None
    #: The partition of the record the agent is processing now, if any.
    busy: int | None = None


class HeldRecords:
    """Records handled but not yet acknowledged, per partition, until their state is written.

    A partition's state is written (and its records acknowledged) when it has ``max_records``
    records held, or its oldest has been held ``max_age_s``; a quiet partition is written by a
    task once it is overdue. Actions do not wait for this: they are sent as soon as they are
    decided.
    """

    def __init__(self, max_records: int, max_age_s: float) -> None:
        self.max_records = max_records
        self.max_age_s = max_age_s
        self._records: dict[int, list[Any]] = {}
        self._since: dict[int, float] = {}

    def add(self, partition: int, record: Any, now: float) -> bool:
        """Hold ``record``; True when the partition is due to be written."""
        held = self._records.get(partition)
        if held is None:
            held = self._records[partition] = []
            self._since[partition] = now
        held.append(record)
        return len(held) >= self.max_records or now - self._since[partition] >= self.max_age_s

    def release(self, partition: int) -> list[Any]:
        self._since.pop(partition, None)
        return self._records.pop(partition, [])

    def last(self, partition: int) -> Any:
        """The newest record held for ``partition``, or None when nothing is held for it."""
        held = self._records.get(partition)
        return held[-1] if held else None

    def overdue(self, now: float) -> list[int]:
        return [p for p, since in self._since.items() if now - since >= self.max_age_s]

    def discard(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.release(partition)


@dataclass
class Engine:
    """The wired application, with handles that tests and the CLI need."""

    app: faust.App
    processor: JourneyProcessor
    metrics: EngineMetrics
    profiles: Any
    agent: Any
    identity: Any
    context: ContextPublisher
    models: Any
    intent_models: PartitionedModels | None
    #: Journey state, timers and analytics; None when journeys are off.
    journeys: JourneyShell | None = None
    analytics: WorkerAnalytics | None = None


def build_app(settings: Settings, rule_set: RuleSet, emitter: Emitter | None = None,
              rules: tuple[RuleSetState, int] | None = None,
              security: WebSecurity | None = None,
              journeys: JourneySet | None = None) -> Engine:
    """Wire the app. ``emitter`` replaces Kafka as the destination of actions (tests);
    ``rules`` (the state read from the rules topic and the offset to follow it from) makes the
    worker follow the rules topic; ``security`` is the HTTP security checked at the worker's
    start (default: built from ``settings``); ``journeys`` the journeys to run (default: those
    of ``rules``; none when ``settings.journeys`` is off)."""
    security = security or load_web_security(settings)
    store = "rocksdb://" if settings.store == "rocksdb" else "memory://"
    app = OrchestratorApp(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_server_list],
        broker_credentials=faust_credentials(settings),
        store=store,
        datadir=str(settings.worker_data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=True,
        web_bind=settings.web_host,
        # What the other workers are told to reach this one at (forwarded /context requests).
        web_host=security.advertised_host,
        web_port=settings.web_port,
        canonical_url=security.canonical_url(settings.web_port),
        web_ssl_context=security.server_ssl,
        # Faust's own pages: /table/{name}/{key} would serve any profile to anyone, /router
        # the cluster's addresses.
        web_tables_enabled=False,
        web_router_enabled=False,
        # Records of one person must be processed in order: one agent instance per worker.
        agent_supervisor="mode.OneForOneSupervisor",
        producer_linger=settings.producer_linger_ms / 1000,
        # A profile is 1-4 KB: Faust's 16 KB batches would make the producer wait for the
        # broker every few changelog records of a partition.
        producer_max_batch_size=settings.producer_batch_bytes,
        # After a crash, the dead worker's partitions stall until its session expires; Faust's
        # default of 60 s is a minute without actions for those people.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        table_cleanup_interval=30.0,
        # Faust's default sensor keeps latency deques and averages on every record; the
        # worker's Prometheus metrics replace it (runtime/faust_monitor.py).
        Monitor=LightMonitor,
    )
    table_options = {"driver": "rocksdict"} if settings.store == "rocksdb" else None
    profiles = app.Table(
        "profiles", partitions=settings.partitions, key_type=str, value_type=bytes,
        options=table_options,
        help="person id -> profile (orjson)")
    identity = app.Table(
        "identity", partitions=settings.partitions, key_type=str, value_type=bytes,
        options=table_options,
        help="visitor id -> the customer it is linked to (orjson)")
    models = app.Table(
        "models", partitions=settings.partitions, key_type=str, value_type=bytes,
        options=table_options,
        help="<partition>/<intent> -> checkpoint of that partition's intent model")
    metrics = EngineMetrics(rule_set_version=rule_set.version)
    app.on_fetch_rewind = lambda tp, start, to: metrics.fetch_rewinds.labels(tp.topic).inc()
    intent_models = None
    if settings.scoring:
        intent_models = PartitionedModels(load_intent_specs(settings.intents_file), models,
                                          settings.partitions, settings.scoring_policy,
                                          on_labels=metrics.count_labels)
        metrics.registry.register(ModelQualityCollector(intent_models))
    sink = emitter or KafkaEmitter(app, metrics)
    context = ContextPublisher(
        emitter=sink, topic=settings.topic_customer_context, metrics=metrics, clock_ms=wall_clock_ms,
        model_versions=intent_models.versions_for if intent_models is not None
        else lambda person_id: {})
    processor = JourneyProcessor(
        profiles=profiles, emitter=sink, rule_set=rule_set,
        sources=settings.input_topics, dead_letter_topic=settings.topic_dead_letter,
        action_topic=settings.action_topic, limits=settings.decode_limits, metrics=metrics,
        held_out_topic=settings.topic_held_out, identity=identity,
        person_events_topic=settings.person_events_topic, context=context,
        intent_models=intent_models)
    journey_shell = None
    if settings.journeys:
        given = journeys or (rules[0].journeys if rules else None)
        journey_shell = add_journeys(app, settings, processor, metrics.registry,
                                     given or empty_journey_set(rule_set), table_options, security)
    # The person-events topic is read by the same agent as the inputs: one worker owns partition
    # N of every topic (same partition count), so a person's records meet on one profile.
    inputs = app.topic(*settings.input_topics, settings.person_events_topic,
                       key_serializer="raw", value_serializer="raw",
                       partitions=settings.partitions)

    held = HeldRecords(settings.state_flush_records, settings.state_flush_ms / 1000)
    # A flush writes its keys while every record waits (~60 µs a key): bounded, so that a burst
    # of changed people (a wave of new visitors, timers firing) is written in slices.
    flush_keys = settings.state_flush_keys
    journey_state = _JourneyState()

    async def write_partition(stream: Any, partition: int) -> None:
        written = processor.flush(partition)
        if written:
            metrics.state_flushes.observe(written)
        for record in held.release(partition):
            await stream.ack(record)

    async def journey(stream: faust.StreamT) -> None:
        # Acknowledged by hand, as Stream.take does, once the state the records changed is
        # written: the offsets Faust commits never run ahead of the table writes.
        stream.enable_acks = False
        journey_state.stream = stream
        clock = time.monotonic
        async for event in stream.events():
            message = event.message
            partition = message.partition
            journey_state.busy = partition
            await processor.handle(message.topic, partition, message.offset,
                                   int(message.timestamp * 1000), event.key, event.value)
            journey_state.busy = None
            if held.add(partition, event, clock()) \
                    or processor.held_keys(partition) >= flush_keys:
                await write_partition(stream, partition)

    async def write_quiet_partitions() -> None:
        # A plain task, not a Faust timer: it must keep running while the app stops, so that
        # Faust's wait for unacknowledged records (stream_wait_empty) ends with all state written.
        interval = settings.state_flush_ms / 1000
        while True:
            await asyncio.sleep(interval)
            stream = journey_state.stream
            if stream is None:
                continue
            for partition in held.overdue(time.monotonic()):
                last = held.last(partition)  # None: the agent wrote it meanwhile
                if last is None or partition == journey_state.busy:  # or is in the middle of one
                    continue
                try:
                    with record_in_hand(last):
                        await write_partition(stream, partition)
                except Exception:  # logged; the records stay unacknowledged (not committed)
                    log.exception("writing the held state of partition %d failed", partition)

    app.task(write_quiet_partitions)

    async def freeze_startup_objects() -> None:
        # Everything built to start the worker (modules, Faust, the rule set, the models) lives
        # as long as the process; a full collection scanned those ~150,000 objects every few
        # seconds under load, an 80-100 ms pause of every record in flight. Frozen once the
        # worker is ready, they are never scanned again (docs/hot-path.md, "Garbage collection").
        while not is_ready(app):
            await asyncio.sleep(0.5)
        gc.collect()
        gc.freeze()

    app.task(freeze_startup_objects)

    agent = app.agent(inputs, name="journey")(journey)

    @app.task
    async def publish_context() -> None:
        await context.run_every(settings.context_flush_ms / 1000, lambda: bool(app.should_stop))

    if intent_models is not None:
        _schedule_label_sweeps(app, settings, intent_models)

    _pace_fetches(app, settings)

    @app.on_partitions_revoked.connect
    async def forget_held_state(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        partitions = {tp.partition for tp in revoked}
        processor.discard(partitions)
        held.discard(partitions)
    rules_state = rules[0] if rules else RuleSetState(rule_set, "given", 0)
    if rules is not None:
        _follow_rules(app, settings, rules_state, rules[1], processor, metrics, journey_shell)
    metrics.registry.register(RuntimeCollector(
        ready=lambda: is_ready(app),
        lags=lambda: _input_lags(app, settings, processor),
        table_keys=lambda: {"profiles": _estimate_keys(profiles), "identity": _estimate_keys(identity),
                            **({"journeys": _estimate_keys(journey_shell.store.table)}
                               if journey_shell is not None else {})}))
    _add_views(app, metrics, rules_state, security)
    lookup = add_context_view(app, people=processor.people, links=processor.links, metrics=metrics,
                              partitions=settings.partitions, model_versions=context.model_versions,
                              security=security)
    add_console(app, lookup=lookup, publisher=context, metrics=metrics, security=security)
    analytics = WorkerAnalytics(metrics.registry, RouteFeed(
        window_s=settings.routes_window_s, max_cases=settings.routes_max_cases), wall_clock_ms)
    processor.observer = analytics
    add_analytics_views(app, analytics=analytics, rule_set=lambda: processor.rule_set,
                        partitions=lambda: _input_partitions(app, settings),
                        worker=security.canonical_url(settings.web_port), security=security)
    return Engine(app=app, processor=processor, metrics=metrics, profiles=profiles, agent=agent,
                  identity=identity, context=context, models=models,
                  intent_models=intent_models, journeys=journey_shell,
                  analytics=analytics)


def _pace_fetches(app: OrchestratorApp, settings: Settings) -> None:
    """Prompt fetches at light load, batched ones from ``consumer_batch_from_rate`` records per
    second of the agent's topics, with a shorter wait from ``consumer_busy_from_rate``
    (runtime/fetch_pacing.py): the limits are set on the consumer's fetcher when
    partitions are assigned and whenever the pacing changes its answer after a fetch."""
    pacing = FetchPacing(
        prompt=FetchLimits(settings.consumer_fetch_max_wait_ms, settings.consumer_fetch_min_bytes),
        batched=FetchLimits(settings.consumer_batch_fetch_max_wait_ms,
                            settings.consumer_batch_fetch_min_bytes),
        batch_from_rate=settings.consumer_batch_from_rate,
        busy=FetchLimits(settings.consumer_busy_fetch_max_wait_ms,
                         settings.consumer_batch_fetch_min_bytes),
        busy_from_rate=settings.consumer_busy_from_rate)
    # Records the agent reads: the inputs and the person-events hops (every logged-in visitor's
    # record is fetched twice), not the tables' changelogs.
    agent_topics = frozenset((*settings.input_topics, settings.person_events_topic))
    applied: list[FetchLimits | None] = [None]
    clock = time.monotonic

    def apply(limits: FetchLimits) -> None:
        if limits != applied[0] and set_fetch_limits(app, *limits):
            applied[0] = limits

    def on_fetched(records: Mapping[Any, Any]) -> None:
        count = 0
        for tp, fetched in records.items():
            if tp.topic in agent_topics:
                count += len(fetched)
        apply(pacing.after_fetch(count, clock()))

    app.on_fetched = on_fetched

    @app.on_partitions_assigned.connect
    async def set_fetch_wait(app: faust.App, assigned: Any, **kwargs: Any) -> None:
        applied[0] = None  # a new assignment may come with a new fetcher
        apply(pacing.after_fetch(0, clock()))


def _schedule_label_sweeps(app: faust.App, settings: Settings,
                           intent_models: PartitionedModels) -> None:
    """Tick each assigned person-events partition so that its sweep runs in the agent."""
    topic = settings.person_events_topic

    @app.timer(interval=settings.label_sweep_tick_s)
    async def tick_label_sweeps() -> None:
        if not is_ready(app):
            return
        for tp in app.consumer.assignment():
            if tp.topic == topic:
                await app.producer.send(topic, None, TICK, tp.partition, None, None)

    @app.on_partitions_revoked.connect
    async def forget_models(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        intent_models.revoke({tp.partition for tp in revoked if tp.topic == topic})


def is_ready(app: faust.App) -> bool:
    """Ready = started, not rebalancing, and the assigned table partitions recovered."""
    # ``completed`` is set once the first recovery is done and never cleared; a later
    # rebalance shows up as ``rebalancing`` and then ``in_recovery``.
    recovered = app.tables.recovery.completed.is_set()
    return bool(app.started) and not app.rebalancing and not app.in_recovery and recovered


def _input_lags(app: faust.App, settings: Settings,
                processor: JourneyProcessor) -> Iterator[PartitionLag]:
    """Lag of each assigned input partition: highwater minus the next offset to process."""
    if not app.started or app.consumer is None:
        return
    inputs = {*settings.input_topics, settings.person_events_topic}
    committed = committed_offsets(app.consumer)
    for tp in sorted(app.consumer.assignment()):
        if tp.topic not in inputs:
            continue
        try:
            highwater = app.consumer.highwater(tp)
        except Exception:  # not fetched yet
            highwater = 0
        last = processor.last_offsets.get((tp.topic, tp.partition))
        # Nothing handled yet: the worker resumes at the committed offset, or at the start.
        position = last + 1 if last is not None else (committed.get(tp) or 0)
        yield PartitionLag(tp.topic, tp.partition, max(0, (highwater or 0) - position))


def _input_partitions(app: faust.App, settings: Settings) -> list[int]:
    """The input partitions this worker owns now (the same numbers on every input topic)."""
    if not app.started or app.consumer is None:
        return []
    return sorted({tp.partition for tp in app.consumer.assignment()
                   if tp.topic == settings.topic_clickstream})


def _estimate_keys(table: Any) -> int:
    """Keys stored for this worker's partitions; RocksDB's own estimate, no full scan."""
    dbs = partition_dbs(table)
    if dbs is None:
        return len(table)  # the in-memory store: a dict's length
    total = 0
    for db in list(dbs.values()):
        try:
            total += int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
        except Exception:  # a DB closed under us during a rebalance
            continue
    return total


def _follow_rules(app: faust.App, settings: Settings, state: RuleSetState, offset: int,
                  processor: JourneyProcessor, metrics: EngineMetrics,
                  journeys: JourneyShell | None = None) -> None:
    def swap(rule_set: RuleSet) -> None:
        # One assignment on the event loop: the agent picks it up at its next record.
        processor.rule_set = rule_set
        if journeys is not None:  # the journeys published with the rules (read their lookups)
            journeys.journeys = state.journeys or empty_journey_set(rule_set)
        metrics.rule_set.info({"version": rule_set.version})

    async def follow_rules_topic() -> None:
        await follow(settings, state, offset, swap,
                     on_result=lambda result: metrics.rule_set_updates.labels(result).inc())

    app.task(follow_rules_topic)


def _add_views(app: faust.App, metrics: EngineMetrics, rules_state: RuleSetState,
               security: WebSecurity) -> None:
    # /health, /ready and /metrics are open (probes and Prometheus; no personal data in them);
    # /rules is the operators' (README, "HTTP security").
    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok", "app_id": app.conf.id})

    @app.page("/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ready = is_ready(app)
            return self.json({"ready": ready}, status=200 if ready else 503)

    @app.page("/rules")
    class Rules(View):
        async def get(self, request: Request) -> Response:
            refused = refusal(self, security.tokens, request, Scope.OPERATIONS)
            if refused is not None:
                return refused
            return self.json(rules_state.as_json())

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(metrics.exposition(),
                              content_type="text/plain; version=0.0.4")
