"""A mined route as a journey entry condition, in the condition language rules already speak.

The language has counts per session and time window but no order, so a route becomes what it
holds: its last activity is the event (a page of that category, or that event type), and each
activity of the route is counted -- pages by category in the session, other events in the last
``within_s`` seconds. The condition matches everyone on the route, and also those who did the
same things in another order: a superset, on purpose (a visitor reading pricing then products is
as far on as one reading products then pricing).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from orchestrator.core.events import EVENT_TYPES


def _type_and_detail(label: str) -> tuple[str, str | None]:
    if label == "page":
        return "page_view", None
    if label.startswith("page:"):
        return "page_view", label.removeprefix("page:")
    kind, _, detail = label.partition(":")
    return kind, detail or None


def route_condition(steps: tuple[str, ...] | list[str], within_s: int = 1800) -> dict[str, Any]:
    """The entry condition of a route's activities (see the module docstring).

    >>> condition = route_condition(("page:pricing", "page:products"))
    >>> condition["all"][:2]
    [{'field': 'event.type', 'eq': 'page_view'}, {'field': 'event.page.category', 'eq': 'products'}]
    >>> condition["all"][2]
    {'count': {'event_type': 'page_view', 'category_in': ['pricing'], 'session': True}, 'gte': 1}
    """
    if not steps:
        raise ValueError("a route needs at least one activity")
    last_type, last_detail = _type_and_detail(steps[-1])
    if last_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {last_type!r} in the route")
    parts: list[dict[str, Any]] = [{"field": "event.type", "eq": last_type}]
    if last_detail is not None:
        field = "event.page.category" if last_type == "page_view" else "event.channel"
        parts.append({"field": field, "eq": last_detail})
    counts: Counter[tuple[str, str | None]] = Counter(_type_and_detail(s) for s in steps)
    for (kind, detail), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        if kind not in EVENT_TYPES:
            raise ValueError(f"unknown event type {kind!r} in the route")
        if kind == "page_view":
            if detail is None:
                continue  # pages without a category are not counted by category
            spec: dict[str, Any] = {"event_type": kind, "category_in": [detail], "session": True}
        else:
            spec = {"event_type": kind, "within_s": within_s}
        parts.append({"count": spec, "gte": n})
    return {"all": parts}
