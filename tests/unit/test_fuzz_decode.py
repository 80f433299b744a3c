"""decode_record on 20,000 generated records, half of them hostile: it never raises, accepts
every good record and refuses every bad one with the code of what is wrong and a reason."""

from __future__ import annotations

import time
from collections import Counter

from orchestrator.core.events import Accepted, Rejected, decode_record
from tests.fuzz.hostile import LIMITS, NOW, Case, records

SAMPLE = 20_000
SEED = 20_260_509


def verdict_problem(case: Case) -> str | None:
    """What is wrong with decode_record's answer for ``case`` (None: it is right)."""
    try:
        decoded = decode_record(case.source, case.key, case.value, NOW, LIMITS)
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"
    if case.bad is None:
        if not isinstance(decoded, Accepted):
            return f"good record refused: {decoded.code}: {decoded.reason}"
        return None
    if not isinstance(decoded, Rejected):
        return "bad record accepted"
    if decoded.code not in case.codes:
        return f"refused as {decoded.code!r} ({decoded.reason}), expected one of {sorted(case.codes)}"
    if not decoded.reason.strip():
        return "refused without a reason"
    return None


def test_generated_records_get_the_verdict_of_the_contract() -> None:
    started = time.perf_counter()
    problems: list[str] = []
    kinds: Counter[str] = Counter()
    for n, case in enumerate(records(SAMPLE, SEED)):
        kinds["good" if case.bad is None else case.bad.split(" ")[0]] += 1
        problem = verdict_problem(case)
        if problem is not None:
            problems.append(f"#{n} {case.source} {case.bad or 'good'}: {problem}; "
                            f"key={case.key!r:.60} value={case.value!r:.200}")
    assert not problems, f"{len(problems)} wrong verdicts, e.g.:\n" + "\n".join(problems[:10])
    assert kinds["good"] > SAMPLE * 0.4 and len(kinds) > 10  # both halves, every breaker
    assert time.perf_counter() - started < 30
