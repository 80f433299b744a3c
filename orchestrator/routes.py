"""``orchestrator routes``: mine a file of contract records for the routes to each goal.

Input: JSON lines, each a bare contract record or an envelope ``{"topic", "key", "value"}`` (as
``orchestrator replay`` reads). Lines that are not JSON objects are counted and named (the first
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


def read_lines(lines: Iterable[str | bytes], report: ReadReport) -> Iterator[dict[str, Any]]:
    """The records of JSON lines (bare or in an envelope); bad lines go to ``report``."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        report.lines += 1
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            report.bad.append(number)
            continue
        if isinstance(data, dict) and "topic" in data and isinstance(data.get("value"), dict):
            data = data["value"]
        if isinstance(data, dict):
            yield data
        else:
            report.bad.append(number)


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
