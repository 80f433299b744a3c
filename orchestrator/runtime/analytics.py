"""What the worker counts and mines from the events it handles, and the pages that show it.

:class:`WorkerAnalytics` is called by the processor once per applied event (a hook, nothing
else in the hot path): it counts the event's rule facts (``core.analytics``) in memory and in
``orchestrator_rule_outcomes_total``, and feeds the route miner (``core.routes.RouteMiner``,
bounded: see :class:`RouteFeed`). The HTTP views:

- ``GET /analytics/rules`` (operator): per rule and action the counts, goal conversion of the
  treated and the held-out group, uplift and its 95 % interval -- **this worker's** counts since
  it started (the fleet's are the sum of every worker's ``orchestrator_rule_outcomes_total``);
- ``GET /routes`` (operator): the routes to each goal mined from this worker's events of the
  sliding window, recomputed at most every :data:`ROUTES_TTL_S` in a thread;
- ``GET /owner`` and its files (open, like ``/console``: the page holds no data; it reads the
  views above with the token typed into it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import faust
import orjson
from faust.web import Request, View
from prometheus_client import CollectorRegistry, Counter

from orchestrator.core.access import Scope
from orchestrator.core.analytics import (
    ATTRIBUTION_WINDOW_MS,
    Fact,
    GoalIndex,
    RuleTally,
    facts_of,
    rule_report,
)
from orchestrator.core.events import Event
from orchestrator.core.profile import Profile
from orchestrator.core.routes import RouteMiner, event_activity, route_condition, summarise
from orchestrator.core.rules import RuleSet
from orchestrator.runtime.console import add_page
from orchestrator.runtime.web_guard import refusal
from orchestrator.runtime.web_security import WebSecurity

#: ``GET /routes`` answers from a summary at most this old (a summary of a full window costs
#: seconds of CPU; the page polls).
ROUTES_TTL_S = 10.0


class RouteFeed:
    """The worker's route miner: this worker's events, a sliding window of event time.

    Bounded: at most ``max_cases`` open cases and ``max_cases`` closed ones (of the last
    ``window_s`` of event time), ``2 * max_cases`` visitor links, each case's last 32 activities.
    ``max_cases = 0`` mines nothing.
    """

    def __init__(self, *, window_s: int, max_cases: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = max_cases > 0
        self.max_cases, self.window_s = max_cases, window_s
        self.miner = RouteMiner(max_open=max(1, max_cases), max_links=max(1, 2 * max_cases),
                                window_ms=window_s * 1000, max_closed=max(1, max_cases))
        self._clock = clock
        self._summary: tuple[float, bytes] | None = None
        self._computing: asyncio.Future[bytes] | None = None

    def add(self, event: Event, person_id: str) -> None:
        if not self.enabled:
            return
        found = event_activity(event, person_id)
        if found is not None:
            self.miner.add_activity(*found)

    async def summary(self, top: int = 10, min_cases: int = 5) -> bytes:
        """The routes of the window as JSON (cached for :data:`ROUTES_TTL_S`)."""
        cached = self._summary
        if cached is not None and self._clock() - cached[0] < ROUTES_TTL_S:
            return cached[1]
        if self._computing is None:
            # The cases are copied here, on the loop (the agent changes the miner between two
            # records), and summarised in a thread.
            cases = self.miner.cases()
            meta = {"window_s": self.window_s, "max_cases": self.max_cases,
                    "open_cases": len(self.miner.open), "closed_cases": len(self.miner.closed),
                    "clock_ts": self.miner.clock or None}
            loop = asyncio.get_running_loop()
            self._computing = loop.run_in_executor(None, _routes_json, cases, meta, top, min_cases)
        computing = self._computing
        try:
            body = await asyncio.shield(computing)
        finally:
            if computing.done():
                self._computing = None
        self._summary = (self._clock(), body)
        return body


def _routes_json(cases: list[Any], meta: dict[str, Any], top: int, min_cases: int) -> bytes:
    goals = {}
    for goal, found in summarise(cases, top=top, min_cases=min_cases).items():
        data = found.to_dict()
        for pattern in data["patterns"]:
            pattern["condition"] = route_condition(pattern["steps"])
        goals[goal] = data
    return orjson.dumps({**meta, "goals": goals})


class WorkerAnalytics:
    """Counts of rule facts (in memory, for ``/analytics/rules``, and as Prometheus counters)
    and the route feed, both fed by :meth:`applied`."""

    def __init__(self, registry: CollectorRegistry, routes: RouteFeed,
                 clock_ms: Callable[[], int]) -> None:
        self.tally = RuleTally()
        self.routes = routes
        self.since_ts = clock_ms()
        self.outcomes = Counter(
            "orchestrator_rule_outcomes_total",
            "Rule decisions and what followed: sent, held_out, the feedback outcomes, and "
            "goal_treated / goal_held_out (decisions converted to the rule's goal)",
            ["rule", "action", "outcome"], registry=registry)
        self._children: dict[Fact, Any] = {}
        self._goals: tuple[RuleSet | None, GoalIndex] = (None, GoalIndex({}))

    def goals_for(self, rule_set: RuleSet) -> GoalIndex:
        """The goal index of ``rule_set`` (rebuilt once when the worker swaps rule sets)."""
        known, index = self._goals
        if known is not rule_set:
            index = GoalIndex.of(rule_set)
            self._goals = (rule_set, index)
        return index

    def applied(self, person_id: str, event: Event, profile: Profile | None,
                actions: Sequence[dict[str, Any]], held_out: Sequence[dict[str, Any]],
                rule_set: RuleSet) -> None:
        """One event applied to the person's profile (None: erased), with what it decided."""
        self.routes.add(event, person_id)
        if profile is None:
            return
        for fact in facts_of(event, profile, actions, held_out, self.goals_for(rule_set)):
            self.tally.add(fact)
            child = self._children.get(fact)
            if child is None:
                child = self._children[fact] = self.outcomes.labels(*fact)
            child.inc()

    def report(self, rule_set: RuleSet, worker: str, partitions: list[int]) -> dict[str, Any]:
        """The ``/analytics/rules`` answer."""
        return {"worker": worker, "partitions": partitions, "since_ts": self.since_ts,
                "scope": "worker", "attribution_window_s": ATTRIBUTION_WINDOW_MS // 1000,
                "rule_set_version": rule_set.version,
                "rules": rule_report(self.tally.counts(), rule_set)}


def add_analytics_views(app: faust.App, *, analytics: WorkerAnalytics,
                        rule_set: Callable[[], RuleSet], partitions: Callable[[], list[int]],
                        worker: str, security: WebSecurity) -> None:
    """Add ``/analytics/rules``, ``/routes``, ``/owner`` and ``/owner/{name}``."""

    add_page(app, "/owner", "owner.html")

    @app.page("/analytics/rules")
    class RuleAnalytics(View):
        async def get(self, request: Request) -> Any:
            refused = refusal(self, security.tokens, request, Scope.OPERATIONS)
            if refused is not None:
                return refused
            return self.json(analytics.report(rule_set(), worker, partitions()))

    @app.page("/routes")
    class Routes(View):
        async def get(self, request: Request) -> Any:
            refused = refusal(self, security.tokens, request, Scope.OPERATIONS)
            if refused is not None:
                return refused
            body = await analytics.routes.summary()
            return self.bytes(body, content_type="application/json")
