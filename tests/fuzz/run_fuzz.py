"""The full fuzz run: generated records through decode_record and JourneyProcessor.handle.

The suite runs a sample (tests/unit/test_fuzz_decode.py, tests/agents/test_fuzz_processor.py);
this runs as many as asked, in slices so that memory stays flat::

    PYTHONPATH=$PWD .venv/bin/python tests/fuzz/run_fuzz.py --records 200000 [--seed N]

Prints what was checked and every wrong verdict (up to 20); exits 1 when there is one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.hostile import records
from tests.fuzz.processor_run import FuzzReport, run_cases
from tests.unit.test_fuzz_decode import verdict_problem

SLICE = 20_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="records per check")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="default: the clock")
    args = parser.parse_args()
    started = time.perf_counter()
    decode_problems = [f"#{n} {case.bad or 'good'}: {problem}"
                       for n, case in enumerate(records(args.records, args.seed))
                       if (problem := verdict_problem(case)) is not None]
    decode_s = time.perf_counter() - started
    print(f"decode_record: {args.records} records (seed {args.seed}) in {decode_s:.1f} s, "
          f"{len(decode_problems)} wrong")
    report = FuzzReport()
    cases = records(args.records, args.seed + 1)
    started = time.perf_counter()
    while chunk := list(islice(cases, SLICE)):  # a fresh processor per slice: bounded tables
        asyncio.run(run_cases(chunk, report))
    print(f"JourneyProcessor.handle: {report.records} records ({report.good} good, {report.bad} bad, "
          f"seed {args.seed + 1}) in {time.perf_counter() - started:.1f} s, "
          f"{len(report.problems)} wrong")
    for problem in (decode_problems + report.problems)[:20]:
        print("  " + problem)
    return 1 if decode_problems or report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
