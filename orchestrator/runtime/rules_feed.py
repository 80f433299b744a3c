"""Rule sets travel through a compacted topic; every worker follows it.

``publish`` validates a rule directory (and the journeys in its ``journeys/``) and writes both
as one record (key ``rule-set``) to the rules topic, so that rules and journeys, which share the
rules' lookups, are swapped together. A worker reads the topic to its end before it starts (so
it begins with the latest published set, or with ``rules/`` when nothing was ever published) and
then follows it: each new
record is validated and, if good, swapped in between two events; a bad one is logged, counted
and shown at ``/rules``, and the last good set stays live.

A record on the topic may come from any tool, so it is validated off the event loop (in a
thread) and within :data:`VALIDATION_TIMEOUT_S`; whatever is wrong with it (not JSON, an
invalid set, a check that fails or takes too long) refuses that record, never the worker: a
worker starts with the newest good set on the topic, or with ``rules/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from orchestrator.core.journeys import JourneySet, load_journey_directory, load_journey_set
from orchestrator.core.rules import RuleSet, RuleSetError, load_rule_directory, load_rule_set
from orchestrator.runtime.kafka_security import client_options
from orchestrator.runtime.processing import wall_clock_ms
from orchestrator.runtime.settings import Settings
from orchestrator.runtime.topics import ensure_action_topics

log = logging.getLogger(__name__)

RULE_SET_KEY = b"rule-set"
#: How long validating one published set may take. The limits of a rule set
#: (orchestrator.core.rules.limits) keep the worst case under a second on a small machine.
VALIDATION_TIMEOUT_S = 10.0


def rule_channels(rule_set: RuleSet, journeys: JourneySet | None = None) -> set[str]:
    """The channels a rule set (and a journey set's send steps) can send to."""
    channels = {rule.channel for rule in rule_set.rules}
    for journey in journeys.journeys if journeys is not None else ():
        channels.update(step.rule.channel for step in journey.steps if step.rule is not None)
    return channels


@dataclass(frozen=True, slots=True)
class Published:
    """A validated record of the rules topic: the rule set, and the journeys published with it
    (None: the record has no journeys)."""

    rule_set: RuleSet
    journeys: JourneySet | None


def encode_rule_set(rule_set: RuleSet, published_ts: int,
                    journeys: JourneySet | None = None) -> bytes:
    record: dict[str, Any] = {"version": rule_set.version, "published_ts": published_ts,
                              "documents": dict(rule_set.documents)}
    if journeys is not None:
        record["journeys"] = {"version": journeys.version, "documents": dict(journeys.documents)}
    return orjson.dumps(record)


def load_directories(rules_dir: Path, journeys_dir: Path | None) -> Published:
    """The rule set of ``rules_dir`` and the journeys of ``journeys_dir`` (None, or a directory
    that does not exist: no journeys); raises RuleSetError naming every problem."""
    rule_set = load_rule_directory(rules_dir)
    if journeys_dir is None or not journeys_dir.exists():
        return Published(rule_set, None)
    return Published(rule_set, load_journey_directory(journeys_dir, rule_set.lookups))


def decode_published(value: bytes) -> Published:
    """Parse and validate a rules-topic record with its journeys; raises RuleSetError (or
    ValueError) if either is bad."""
    rule_set = decode_rule_set(value)
    record = orjson.loads(value)
    journeys = record.get("journeys") if isinstance(record, dict) else None
    if journeys is None:
        return Published(rule_set, None)
    documents = journeys.get("documents") if isinstance(journeys, dict) else None
    if not isinstance(documents, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in documents.items()):
        raise ValueError("not a rule-set record: 'journeys.documents' must map file names to "
                         "YAML text")
    return Published(rule_set, load_journey_set(documents, rule_set.lookups))


def decode_rule_set(value: bytes) -> RuleSet:
    """Parse and validate a rules-topic record; raises RuleSetError (or ValueError) if bad."""
    try:
        record = orjson.loads(value)
        documents = record["documents"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a rule-set record: {exc}") from None
    if not isinstance(documents, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in documents.items()):
        raise ValueError("not a rule-set record: 'documents' must map file names to YAML text")
    return load_rule_set(documents)


async def publish(settings: Settings, directory: Path) -> RuleSet:
    """Validate ``directory`` (and its ``journeys/``) and publish it; raises RuleSetError
    without publishing if bad."""
    loaded = load_directories(directory, directory / "journeys")
    await publish_rule_set(settings, loaded.rule_set, loaded.journeys)
    return loaded.rule_set


async def publish_rule_set(settings: Settings, rule_set: RuleSet,
                           journeys: JourneySet | None = None) -> None:
    """Publish a validated rule set (and journey set) as the one record of the rules topic."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic_rules, key=RULE_SET_KEY,
                                     value=encode_rule_set(rule_set, wall_clock_ms(), journeys))
    finally:
        await producer.stop()


@dataclass
class RuleSetState:
    """What a worker runs with, where it came from, and the last set it refused."""

    rule_set: RuleSet
    source: str
    applied_ts: int
    last_rejected: dict[str, Any] | None = None
    #: The journeys published with the rules (None: none).
    journeys: JourneySet | None = None

    def as_json(self) -> dict[str, Any]:
        journeys = self.journeys
        return {"version": self.rule_set.version, "source": self.source,
                "applied_ts": self.applied_ts, "rules": self.rule_set.describe(),
                "journeys": None if journeys is None else {
                    "version": journeys.version, "journeys": journeys.describe()},
                "last_rejected": self.last_rejected}


async def read_latest(settings: Settings, fallback_dir: Path,
                      fallback_journeys: Path | None = None) -> tuple[RuleSetState, int]:
    """Read the rules topic to its end: the latest valid set wins, else ``fallback_dir`` (and
    the journeys of ``fallback_journeys``).

    Returns the state and the offset to follow from.
    """
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(settings.topic_rules, 0)
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        state: RuleSetState | None = None
        rejected: dict[str, Any] | None = None
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, []):
                published = await validate_record(record)
                if isinstance(published, dict):
                    rejected = published
                    log.error("rule set at %s@%d rejected:\n%s", settings.topic_rules,
                              record.offset, "\n".join(published["errors"]))
                    continue
                if published is None:
                    continue
                state = RuleSetState(published.rule_set,
                                     f"topic {settings.topic_rules}@{record.offset}",
                                     wall_clock_ms(), journeys=published.journeys)
        if state is None:
            loaded = load_directories(fallback_dir, fallback_journeys)
            state = RuleSetState(loaded.rule_set, f"directory {fallback_dir}", wall_clock_ms(),
                                 journeys=loaded.journeys)
        state.last_rejected = rejected
        return state, end
    finally:
        await consumer.stop()


async def follow(settings: Settings, state: RuleSetState, from_offset: int,
                 apply: Callable[[RuleSet], None],
                 on_result: Callable[[str], None] | None = None) -> None:
    """Apply every later record of the rules topic, forever (cancel to stop). ``state.journeys``
    is set to the record's journeys before ``apply`` is called with its rule set."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=500)
    await consumer.start()
    tp = TopicPartition(settings.topic_rules, 0)
    try:
        consumer.assign([tp])
        consumer.seek(tp, from_offset)
        while True:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, []):
                published = await validate_record(record)
                rule_set: RuleSet | dict[str, Any] | None = (
                    published.rule_set if isinstance(published, Published) else published)
                if isinstance(rule_set, RuleSet):
                    try:
                        await ensure_action_topics(settings, rule_channels(
                            rule_set, published.journeys if isinstance(published, Published) else None))
                    except Exception as exc:  # the set cannot go live without its topics
                        log.exception("creating the action topics of rule set %s failed",
                                      rule_set.version)
                        rule_set = _rejection(record.offset, f"its action topics could not be "
                                                             f"created: {exc}")
                if isinstance(rule_set, dict):
                    state.last_rejected = rule_set
                    log.error("rule set at %s@%d rejected; keeping %s:\n%s",
                              settings.topic_rules, record.offset, state.rule_set.version,
                              "\n".join(rule_set["errors"]))
                    if on_result:
                        on_result("rejected")
                    continue
                if rule_set is None:
                    continue
                assert isinstance(published, Published)
                state.journeys = published.journeys
                apply(rule_set)
                state.rule_set = rule_set
                state.source = f"topic {settings.topic_rules}@{record.offset}"
                state.applied_ts = wall_clock_ms()
                log.info("rule set %s applied (%d rules)", rule_set.version,
                         len(rule_set.rules))
                if on_result:
                    on_result("applied")
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def validate_record(record: Any, timeout_s: float = VALIDATION_TIMEOUT_S
                          ) -> Published | dict[str, Any] | None:
    """The record's rule set and journeys; a rejection (offset, errors) if either is bad; None
    if not one.

    Validation runs in a thread, so the event loop goes on serving; one that takes longer than
    ``timeout_s`` is a rejection (the thread is left to finish, its result unused). Never raises
    for anything in the record.
    """
    if record.key != RULE_SET_KEY or record.value is None:
        return None
    try:
        return await asyncio.wait_for(asyncio.to_thread(decode_published, record.value), timeout_s)
    except (RuleSetError, ValueError) as exc:
        return _rejection(record.offset, exc)
    except TimeoutError:
        return _rejection(record.offset, f"validation took more than {timeout_s:g} s")
    except Exception as exc:  # a defect of the checks must not stop the worker either
        log.exception("validating the rule set at offset %d failed", record.offset)
        return _rejection(record.offset, f"validation failed: {type(exc).__name__}: {exc}")


def _rejection(offset: int, problem: Exception | str) -> dict[str, Any]:
    errors = [str(e) for e in getattr(problem, "errors", [])] or [str(problem)]
    return {"offset": offset, "rejected_ts": wall_clock_ms(), "errors": errors}




