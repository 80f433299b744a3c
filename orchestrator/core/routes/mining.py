"""Route mining ("micro-journeys"): the typical routes people take to each business goal.

From contract records, per person in event-time order, this finds for each goal (``login``,
``purchase``, ``contact``, ``cancellation``; :data:`GOALS`):

- a **directly-follows graph**: how often one activity was directly followed by another on the
  way to the goal, with the mean and median time between them;
- the **top variants**: whole routes, start of the case to the goal, with their share;
- **frequent contiguous sub-sequences** (n-grams of 2-4 activities) with their **conversion
  rate**: of the cases that contain one (before the goal), the share that reached the goal, and
  its lift over the base rate.

An **activity** is what a person did, at the grain journeys and rules speak: ``page:<category>``
for a page view (``page`` without a category), the event type otherwise (``login``,
``add_to_cart``, ...), ``contact_started:<channel>`` for contact-centre events. Consecutive
repeats are one activity (``page:billing`` read three times is one step of the route), so
variants are routes, not page counts. A **case** is one person's activities with no gap longer
than ``gap_ms`` (30 minutes by default: a visit); a case *converts* to a goal when it holds one
of the goal's event types, and its route is what came before the first one.

**Identity** as the engine has it: a visitor seen with a customer id belongs to that customer
from then on, and the visitor's open case (the anonymous route to the login) is carried into
the customer's. Privacy: ``erasure_requested`` drops the person's open case and links.

:class:`RouteMiner` takes records one at a time with bounded memory (open cases, links, the
closed cases of a sliding window, each route cut to its last ``max_route`` activities): what the
worker is to serve. :func:`mine_routes` is the batch: sort by event time, feed, close, summarise.
Pure: plain dicts in, plain data out, no clock.
"""

from __future__ import annotations

import statistics
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from orchestrator.core.events import (
    CLICKSTREAM_TYPES,
    CONTACT_CENTRE_TYPES,
    ClickstreamEvent,
    ContactCentreEvent,
    Event,
)
from orchestrator.core.timestamps import TimestampError, parse_ts

#: Goal -> the event types that reach it.
GOALS: Mapping[str, frozenset[str]] = {
    "login": frozenset({"login"}),
    "purchase": frozenset({"purchase", "signup"}),
    "contact": frozenset({"contact_started", "callback_requested"}),
    "cancellation": frozenset({"cancellation_requested"}),
}
GAP_MS = 30 * 60 * 1000
#: Activities kept per case (the last ones: what led to the goal).
MAX_ROUTE = 32
#: Longest sub-sequence looked for.
MAX_NGRAM = 4
_SKIPPED = frozenset({"consent_updated", "logout"})


@dataclass(frozen=True, slots=True)
class Edge:
    """``source`` directly followed by ``target`` on routes to the goal."""

    source: str
    target: str
    count: int
    mean_s: float
    median_s: float


@dataclass(frozen=True, slots=True)
class Variant:
    """One whole route to the goal (the goal's activity last), how often, how long."""

    route: tuple[str, ...]
    count: int
    share: float
    median_s: float


@dataclass(frozen=True, slots=True)
class Pattern:
    """A contiguous sub-sequence: cases holding it (before the goal), how many converted."""

    steps: tuple[str, ...]
    cases: int
    converted: int
    conversion_rate: float
    lift: float


@dataclass(frozen=True, slots=True)
class GoalRoutes:
    """The routes to one goal over ``cases`` cases, ``converted`` of which reached it."""

    goal: str
    cases: int
    converted: int
    conversion_rate: float
    edges: tuple[Edge, ...]
    variants: tuple[Variant, ...]
    patterns: tuple[Pattern, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The miner keeps its cases as plain tuples of numbers and strings, replaced (not changed) on
# each activity: the garbage collector stops tracking a plain tuple of untracked things once it
# has seen it (not a subclass such as a NamedTuple), so a window of a hundred thousand cases adds
# nothing to the worker's full collections (as objects holding lists it added ~100 ms to each).
#: An open case: (start, last, labels, times).
_Open = tuple[int, int, tuple[str, ...], tuple[int, ...]]
#: A closed case as kept: (end, labels, times), the fields of :class:`ClosedCase`.
_Closed = tuple[int, tuple[str, ...], tuple[int, ...]]
_START, _LAST, _LABELS, _TIMES = range(4)


class ClosedCase(NamedTuple):
    """One finished case: its activities and their times (event time, ms)."""

    end: int
    labels: tuple[str, ...]
    times: tuple[int, ...]


def activity_of(record: Mapping[str, Any]) -> tuple[str | None, str | None, str, int] | None:
    """(visitor id, customer id, activity, ts) of a contract record, or None when it is not a
    person's activity (feedback, consent, an unreadable ``ts`` or type)."""
    kind = record.get("type")
    if not isinstance(kind, str) or kind in _SKIPPED:
        return None
    try:
        ts = parse_ts(record.get("ts"))
    except TimestampError:
        return None
    visitor, customer = record.get("visitor_id"), record.get("customer_id")
    visitor = visitor if isinstance(visitor, str) and visitor else None
    customer = customer if isinstance(customer, str) and customer else None
    if visitor is None and customer is None:
        return None
    if kind == "page_view":
        page = record.get("page")
        category = page.get("category") if isinstance(page, dict) else None
        label = f"page:{category}" if isinstance(category, str) and category else "page"
    elif kind in CONTACT_CENTRE_TYPES:
        channel = record.get("channel")
        label = f"{kind}:{channel}" if isinstance(channel, str) else kind
    elif kind in CLICKSTREAM_TYPES or kind == "erasure_requested":
        label = kind
    else:
        label = "other"
    return visitor, customer, label, ts


#: Labels made from input (page categories are free text), remembered up to this many.
_LABELS_REMEMBERED = 4096
_labels: dict[tuple[str, str | None], str] = {}


def _label(kind: str, detail: str | None) -> str:
    # One string per (type, category or channel), not one per event: a worker's window holds
    # hundreds of thousands of activities.
    key = (kind, detail)
    label = _labels.get(key)
    if label is None:
        label = f"{kind}:{detail}" if detail else kind
        if len(_labels) < _LABELS_REMEMBERED:
            _labels[key] = label
    return label


def event_activity(event: Event, person_id: str) -> tuple[str | None, str | None, str, int] | None:
    """(visitor id, customer id, activity, ts) of a decoded event of person ``person_id`` (as
    the engine's identity has it), or None when it is no activity (feedback, consent, logout):
    what :func:`activity_of` reads from a record, for the worker's miner.

    >>> from orchestrator.core.events import ClickstreamEvent
    >>> event_activity(ClickstreamEvent(event_id="e", type="page_view", ts=1700000000000,
    ...                visitor_id="v1", page={"url": "/b", "category": "billing"}), "c-1")
    ('v1', 'c-1', 'page:billing', 1700000000000)
    """
    if isinstance(event, ClickstreamEvent):
        kind = event.type if event.known_type else "other"
        if kind in _SKIPPED:
            return None
        visitor = event.visitor_id
        customer = person_id if person_id != visitor else event.customer_id
        if kind == "page_view":
            category = event.page.category if event.page is not None else None
            return visitor, customer, _label("page", category), event.ts
        return visitor, customer, kind, event.ts
    if isinstance(event, ContactCentreEvent):
        if event.type in _SKIPPED:
            return None
        detail = event.channel if event.type in CONTACT_CENTRE_TYPES else None
        return None, event.customer_id, _label(event.type, detail), event.ts
    return None


def _type_of(label: str) -> str:
    return "page_view" if label.startswith("page") else label.partition(":")[0]


class RouteMiner:
    """Routes from records fed one at a time (roughly in event-time order), bounded memory.

    ``max_open`` open cases (the least recently active is closed first when more come),
    ``max_links`` visitor -> customer links, and the closed cases of the last ``window_ms`` of
    event time, at most ``max_closed`` (None: no window, for a batch).
    """

    def __init__(self, *, gap_ms: int = GAP_MS, max_route: int = MAX_ROUTE,
                 max_open: int = 100_000, max_links: int = 200_000,
                 window_ms: int | None = 24 * 3600 * 1000, max_closed: int | None = 200_000,
                 collapse_repeats: bool = True) -> None:
        self.gap_ms, self.max_route, self.collapse = gap_ms, max_route, collapse_repeats
        self.max_open, self.max_links = max_open, max_links
        self.window_ms, self.max_closed = window_ms, max_closed
        self.open: dict[str, _Open] = {}  # ordered by last activity (least recent first)
        self.links: dict[str, str] = {}
        self.closed: deque[_Closed] = deque()
        self.clock = 0
        self.skipped = 0

    def add(self, record: Mapping[str, Any]) -> None:
        """Take one contract record (a bare record's fields)."""
        found = activity_of(record)
        if found is None:
            self.skipped += 1
            return
        self.add_activity(*found)

    def add_activity(self, visitor: str | None, customer: str | None, label: str, ts: int) -> None:
        """Take one activity (what :func:`activity_of` reads from a record)."""
        self.clock = max(self.clock, ts)
        person = self._person(visitor, customer)
        if label == "erasure_requested":
            self.open.pop(person, None)
            if visitor is not None:
                self.open.pop(visitor, None)
            self.links = {v: c for v, c in self.links.items() if c != person and v != visitor}
            return
        case = self.open.pop(person, None)
        if case is not None and ts - case[_LAST] > self.gap_ms:
            self._close(case)
            case = None
        if case is None:
            case = (ts, ts, (), ())
        start, last, labels, times = case
        if not (self.collapse and labels and labels[-1] == label):
            labels, times = (*labels, label), (*times, ts)
            if len(labels) > self.max_route:
                labels, times = labels[1:], times[1:]
        self.open[person] = (start, max(last, ts), labels, times)  # to the end: most recent
        self._expire()

    def _person(self, visitor: str | None, customer: str | None) -> str:
        if customer is None:
            return self.links.get(visitor, visitor)  # type: ignore[arg-type, return-value]
        if visitor is not None and self.links.get(visitor) != customer:
            self.links.pop(visitor, None)
            self.links[visitor] = customer
            if len(self.links) > self.max_links:
                del self.links[next(iter(self.links))]
            carried = self.open.pop(visitor, None)  # the anonymous route to this login
            if carried is not None:
                mine = self.open.pop(customer, None)
                self.open[customer] = _joined(mine, carried) if mine else carried
        return customer

    def _close(self, case: _Open) -> None:
        self.closed.append((case[_LAST], case[_LABELS], case[_TIMES]))

    def _expire(self) -> None:
        while self.open:
            person = next(iter(self.open))
            case = self.open[person]
            if self.clock - case[_LAST] <= self.gap_ms and len(self.open) <= self.max_open:
                break
            del self.open[person]
            self._close(case)
        closed = self.closed
        while closed and ((self.max_closed is not None and len(closed) > self.max_closed)
                          or (self.window_ms is not None and closed[0][0] < self.clock - self.window_ms)):
            closed.popleft()

    def close_all(self) -> None:
        """Close every open case (the end of a batch)."""
        for case in self.open.values():
            self._close(case)
        self.open.clear()

    def cases(self) -> list[ClosedCase]:
        """The closed cases of the window and a snapshot of the open ones."""
        return [*map(ClosedCase._make, self.closed),
                *(ClosedCase(c[_LAST], c[_LABELS], c[_TIMES]) for c in self.open.values())]

    def routes(self, goals: Mapping[str, frozenset[str]] = GOALS, *, top: int = 10,
               min_cases: int = 5, max_ngram: int = MAX_NGRAM) -> dict[str, GoalRoutes]:
        """The routes of the current window to each goal (see :func:`summarise`)."""
        return summarise(self.cases(), goals, top=top, min_cases=min_cases, max_ngram=max_ngram)


def _joined(mine: _Open, carried: _Open) -> _Open:
    pairs = sorted(zip(mine[_TIMES] + carried[_TIMES], mine[_LABELS] + carried[_LABELS], strict=True))
    return (min(mine[_START], carried[_START]), max(mine[_LAST], carried[_LAST]),
            tuple(label for _, label in pairs), tuple(t for t, _ in pairs))


def summarise(cases: Iterable[ClosedCase], goals: Mapping[str, frozenset[str]] = GOALS, *,
              top: int = 10, min_cases: int = 5, max_ngram: int = MAX_NGRAM) -> dict[str, GoalRoutes]:
    """Per goal: directly-follows graph, ``top`` variants and ``top`` patterns (held by at least
    ``min_cases`` cases, ranked by converted cases, then conversion rate)."""
    counted = {g: _GoalCounts() for g in goals}
    for case in cases:
        types = [_type_of(label) for label in case.labels]
        grams = _first_ends(case.labels, max_ngram)
        for goal, goal_types in goals.items():
            at = next((i for i, t in enumerate(types) if t in goal_types), None)
            counted[goal].add(case, at, grams)
    return {g: counted[g].result(g, top, min_cases) for g in goals}


def _first_ends(labels: tuple[str, ...], max_ngram: int) -> dict[tuple[str, ...], int]:
    """Each contiguous sub-sequence of 2..max_ngram labels -> where its first occurrence ends."""
    grams: dict[tuple[str, ...], int] = {}
    for n in range(2, max_ngram + 1):
        for i in range(len(labels) - n + 1):
            grams.setdefault(labels[i:i + n], i + n - 1)
    return grams


class _GoalCounts:
    __slots__ = ("cases", "converted", "durations", "edges", "grams", "grams_converted", "variants")

    def __init__(self) -> None:
        self.cases = self.converted = 0
        self.edges: dict[tuple[str, str], list[int]] = {}
        self.variants: Counter[tuple[str, ...]] = Counter()
        self.durations: dict[tuple[str, ...], list[int]] = {}
        self.grams: Counter[tuple[str, ...]] = Counter()
        self.grams_converted: Counter[tuple[str, ...]] = Counter()

    def add(self, case: ClosedCase, at: int | None, grams: dict[tuple[str, ...], int]) -> None:
        if at == 0:
            return  # the case starts with the goal: no route led to it
        self.cases += 1
        if at is None:
            self.grams.update(grams.keys())
            return
        self.converted += 1
        route, times = case.labels[:at + 1], case.times[:at + 1]
        for i in range(at):
            self.edges.setdefault((route[i], route[i + 1]), []).append(times[i + 1] - times[i])
        self.variants[route] += 1
        self.durations.setdefault(route, []).append(times[at] - times[0])
        before = [g for g, end in grams.items() if end < at]
        self.grams.update(before)
        self.grams_converted.update(before)

    def result(self, goal: str, top: int, min_cases: int) -> GoalRoutes:
        base = self.converted / self.cases if self.cases else 0.0
        edges = tuple(sorted(
            (Edge(a, b, len(d), round(statistics.fmean(d) / 1000, 3),
                  round(statistics.median(d) / 1000, 3)) for (a, b), d in self.edges.items()),
            key=lambda e: (-e.count, e.source, e.target)))
        variants = tuple(Variant(route, n, round(n / self.converted, 4),
                                 round(statistics.median(self.durations[route]) / 1000, 3))
                         for route, n in sorted(self.variants.items(), key=lambda kv: (-kv[1], kv[0]))[:top])
        patterns = []
        for gram, cases in self.grams.items():
            converted = self.grams_converted.get(gram, 0)
            if cases >= min_cases and converted:
                rate = converted / cases
                patterns.append(Pattern(gram, cases, converted, round(rate, 4),
                                        round(rate / base, 3) if base else 0.0))
        patterns.sort(key=lambda p: (-p.converted, -p.conversion_rate, p.steps))
        return GoalRoutes(goal, self.cases, self.converted, round(base, 4), edges, variants,
                          tuple(patterns[:top]))


def mine_routes(records: Iterable[Mapping[str, Any]], goals: Mapping[str, frozenset[str]] = GOALS, *,
                gap_ms: int = GAP_MS, top: int = 10, min_cases: int = 5,
                max_ngram: int = MAX_NGRAM) -> dict[str, GoalRoutes]:
    """The batch: ``records`` (contract records, any order) read into activities, sorted by
    event time (ties: input order), fed to a :class:`RouteMiner` without a window, closed and
    summarised. Only the activities are held, not the records."""
    activities = []
    skipped = 0
    for n, record in enumerate(records):
        found = activity_of(record)
        if found is None:
            skipped += 1
            continue
        visitor, customer, label, ts = found
        activities.append((ts, n, visitor, customer, label))
    activities.sort(key=lambda item: (item[0], item[1]))
    miner = RouteMiner(gap_ms=gap_ms, window_ms=None, max_closed=None, max_open=10**9,
                       max_links=10**9)
    miner.skipped = skipped
    for ts, _, visitor, customer, label in activities:
        miner.add_activity(visitor, customer, label, ts)
    miner.close_all()
    return miner.routes(goals, top=top, min_cases=min_cases, max_ngram=max_ngram)
