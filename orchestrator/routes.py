"""``orchestrator routes``: mine a file or a topic of contract records for the routes to each goal.

Input: JSON lines, each a bare contract record or an envelope ``{"topic", "key", "value"}`` (as
``orchestrator replay`` reads), or a Kafka topic read from its beginning (:func:`read_topic`).
Lines that are not JSON objects are counted and named (the first
few) on stderr, never silently dropped. Output: a readable report, or ``--json``: one object
per goal (:meth:`~orchestrator.core.routes.GoalRoutes.to_dict`), each pattern with the journey
entry ``condition`` it becomes (:func:`~orchestrator.core.routes.route_condition`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from orchestrator.core.routes import GoalRoutes, route_condition

SHOWN_BAD_LINES = 5


@dataclass
class ReadReport:
    """Lines read, and the numbers of those that were not records."""

    lines: int = 0
    bad: list[int] = field(default_factory=list)


def record_of(text: str | bytes) -> dict[str, Any] | None:
    """The record of one JSON text (bare or in an envelope), or None when it is none."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict) and "topic" in data and isinstance(data.get("value"), dict):
        data = data["value"]
    return data if isinstance(data, dict) else None


def read_lines(lines: Iterable[str | bytes], report: ReadReport) -> Iterator[dict[str, Any]]:
    """The records of JSON lines (bare or in an envelope); bad lines go to ``report``."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        report.lines += 1
        record = record_of(text)
        if record is None:
            report.bad.append(number)
        else:
            yield record


@dataclass
class TopicReport:
    """What :func:`read_topic` read: records, and why it stopped (``end``, ``max_records``,
    ``max_s``)."""

    records: int = 0
    stopped: str = "end"
    partitions: int = 0


async def read_topic(settings: Any, topic: str, *, max_records: int, max_s: float,
                     report: TopicReport, read: ReadReport) -> list[dict[str, Any]]:
    """The records of ``topic``, every partition from its beginning up to its end as it was
    when reading began, at most ``max_records`` records and ``max_s`` seconds (the newest
    records past a bound are not read). Values that are not JSON objects go to ``read.bad``
    (numbered in reading order)."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    from orchestrator.runtime.kafka_security import client_options

    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=100)
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        # A metadata request for the cluster's topics first (not one for the topic by name,
        # which a broker that creates topics on demand would answer by creating it).
        if topic not in await consumer.topics():
            raise LookupError(f"topic {topic!r} does not exist")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_s
        # Without a group, a subscription is every partition of the topic, once its metadata
        # is in.
        consumer.subscribe([topic])
        while not consumer.assignment():
            if loop.time() >= deadline:
                raise LookupError(f"no partitions of topic {topic!r} within {max_s:g} s")
            await asyncio.sleep(0.05)
        tps = sorted(consumer.assignment())
        report.partitions = len(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            if loop.time() >= deadline:
                report.stopped = "max_s"
                break
            batch = await consumer.getmany(*pending, timeout_ms=200, max_records=10_000)
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset >= ends[tp]:
                        break
                    if report.records >= max_records:
                        report.stopped = "max_records"
                        return records
                    report.records += 1
                    read.lines += 1
                    record = record_of(message.value or b"")
                    if record is None:
                        read.bad.append(read.lines)
                    else:
                        records.append(record)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return records
    finally:
        await consumer.stop()


def as_json(routes: dict[str, GoalRoutes]) -> bytes:
    """One JSON document: goal -> routes, each pattern with its entry condition."""
    out = {}
    for goal, found in routes.items():
        data = found.to_dict()
        for pattern in data["patterns"]:
            pattern["condition"] = route_condition(pattern["steps"])
        out[goal] = data
    return orjson.dumps(out, option=orjson.OPT_INDENT_2)


def as_text(routes: dict[str, GoalRoutes], top: int) -> str:
    """A readable report: per goal the conversion, top variants, edges and patterns, and the
    best pattern as a journey entry condition."""
    lines: list[str] = []
    for goal, found in routes.items():
        lines.append(f"== {goal}: {found.converted} of {found.cases} cases "
                     f"({found.conversion_rate:.1%})")
        if not found.converted:
            lines.append("   no case reached this goal")
            continue
        lines.append("   top routes (count, share, median time to the goal):")
        for v in found.variants:
            lines.append(f"   {v.count:>7} {v.share:>6.1%} {v.median_s:>8.1f} s  {' > '.join(v.route)}")
        lines.append("   directly follows (count, mean s, median s):")
        for e in found.edges[:top]:
            lines.append(f"   {e.count:>7} {e.mean_s:>8.1f} {e.median_s:>8.1f}  {e.source} -> {e.target}")
        if found.patterns:
            lines.append("   sub-sequences before the goal (cases, converted, rate, lift):")
            for p in found.patterns:
                lines.append(f"   {p.cases:>7} {p.converted:>7} {p.conversion_rate:>6.1%} "
                             f"{p.lift:>6.2f}x  {' > '.join(p.steps)}")
            best = max(found.patterns, key=lambda p: (p.conversion_rate, p.converted))
            lines.append(f"   as a journey entry (best rate, {' > '.join(best.steps)}):")
            condition = yaml.safe_dump({"entry": {"when": route_condition(best.steps)}},
                                       sort_keys=False, default_flow_style=None)
            lines += ["     " + line for line in condition.splitlines()]
    return "\n".join(lines)
