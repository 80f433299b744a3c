"""JourneyProcessor.handle on 20,000 generated records, half of them hostile: nothing escapes,
every bad record is dead-lettered once with its code and a reason, every good one is applied."""

from __future__ import annotations

import time

from tests.fuzz.hostile import records
from tests.fuzz.processor_run import run_cases

SAMPLE = 20_000
SEED = 20_260_510


async def test_generated_records_are_applied_or_dead_lettered_and_nothing_escapes() -> None:
    started = time.perf_counter()
    report = await run_cases(records(SAMPLE, SEED))
    assert not report.problems, (f"{len(report.problems)} of {report.records} records wrong, "
                                 "e.g.:\n" + "\n".join(report.problems[:10]))
    assert report.good > SAMPLE * 0.4 and report.bad > SAMPLE * 0.4
    assert time.perf_counter() - started < 45
