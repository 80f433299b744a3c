"""Generated records through JourneyProcessor.handle, with the oracle of what each must do.

Shared by the agents test (a sample) and ``tests/fuzz/run_fuzz.py`` (the full run).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from orchestrator.runtime.metrics import EngineMetrics
from orchestrator.runtime.partitioning import partition_of
from orchestrator.runtime.processing import JourneyProcessor
from orchestrator.runtime.settings import load_rules, load_settings
from tests.agents.conftest import RecordingEmitter
from tests.fuzz.hostile import LIMITS, NOW, Case

PARTITIONS = 4


@dataclass
class FuzzReport:
    records: int = 0
    good: int = 0
    bad: int = 0
    problems: list[str] = field(default_factory=list)


class CountingMetrics(EngineMetrics):
    """The engine's metrics, plus a plain count of events applied (cheaper than a scrape)."""

    def __init__(self) -> None:
        super().__init__()
        self.applied = 0

    def count_event(self, source: str, event_type: str) -> None:
        self.applied += 1
        super().count_event(source, event_type)


def make_processor() -> tuple[JourneyProcessor, RecordingEmitter]:
    settings = load_settings()
    emitter = RecordingEmitter()
    processor = JourneyProcessor(
        profiles={}, identity={}, emitter=emitter, rule_set=load_rules(settings.rules_dir),
        sources=settings.input_topics, dead_letter_topic="dead-letter",
        action_topic=settings.action_topic, limits=LIMITS, metrics=CountingMetrics(),
        clock_ms=lambda: NOW)
    return processor, emitter


def _applied(processor: JourneyProcessor) -> int:
    return processor.metrics.applied  # type: ignore[attr-defined]


def _dropped_as_erased(processor: JourneyProcessor) -> int:
    """Records dropped on purpose as older than their person's erasure (such a record must
    not bring the person back)."""
    return int(sum(sample.value for metric in processor.metrics.erased_dropped.collect()
                   for sample in metric.samples if sample.name.endswith("_total")))


async def run_cases(cases: Iterable[Case], report: FuzzReport | None = None) -> FuzzReport:
    """Hand each case to a processor as its topic's record; forwarded records are handed back on
    the person-events topic, as the broker would. Checks, per record: nothing escapes
    ``handle``; a bad record gives exactly one dead letter, with its code and a reason; a good
    one is applied (counted as an accepted event) once, here or after its forward."""
    report = report or FuzzReport()
    processor, emitter = make_processor()
    topic_of = {source: topic for topic, source in processor.sources.items()}
    hop = processor.person_events_topic
    offset = 0
    for n, case in enumerate(cases):
        report.records += 1
        sent_before, applied_before = len(emitter.sent), _applied(processor)
        dropped_before = _dropped_as_erased(processor)
        topic = topic_of[case.source]
        partition = partition_of(case.key.decode(errors="replace"), PARTITIONS) if case.key else 0
        pending = [(topic, partition, case.key, case.value)]
        try:
            while pending:  # the record, then whatever it forwarded to person-events
                topic_now, partition_now, key, value = pending.pop(0)
                offset += 1
                mark = len(emitter.sent)
                await processor.handle(topic_now, partition_now, offset, NOW, key, value)
                for held in processor.held_partitions():
                    processor.flush(held)
                pending += [(hop, partition_of(k.decode(), PARTITIONS), k, v)
                            for t, k, v in _raw(emitter.sent[mark:], hop) if t == hop]
        except Exception as exc:
            report.problems.append(f"#{n} {case.bad or 'good'}: handle raised {exc!r}")
            continue
        letters = [value for t, _, value in emitter.sent[sent_before:] if t == "dead-letter"]
        applied = _applied(processor) - applied_before
        if not applied and _dropped_as_erased(processor) > dropped_before:
            applied = 1  # a login older than the visitor's erasure: dropped before it counts
        if case.bad is None:
            report.good += 1
            if letters or applied != 1:
                report.problems.append(
                    f"#{n} good {case.source}: applied {applied:g} times, dead letters "
                    f"{[(d['error'], d['reason']) for d in letters]}; value={case.value!r:.200}")
        else:
            report.bad += 1
            if (len(letters) != 1 or letters[0]["error"] not in case.codes
                    or not letters[0]["reason"].strip() or applied):
                report.problems.append(
                    f"#{n} bad ({case.bad}): applied {applied:g}, dead letters "
                    f"{[(d['error'], d['reason']) for d in letters]}, expected one of "
                    f"{sorted(case.codes)}")
    return report


def _raw(sent: list, hop: str) -> list[tuple[str, bytes, bytes]]:
    """The person-events records among ``sent`` as raw bytes again (the emitter keeps JSON)."""
    return [(topic, key, orjson.dumps(value)) for topic, key, value in sent
            if topic == hop and key is not None and value is not None]
