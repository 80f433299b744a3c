"""Route mining ("micro-journeys"): typical routes to each goal, and a route as a condition.

See :mod:`.mining` (directly-follows graph, variants, sub-sequences with their conversion;
:class:`RouteMiner` incremental with bounded memory, :func:`mine_routes` the batch) and
:mod:`.conditions` (:func:`route_condition`). Pure. ``docs/journeys.md`` explains the choices.
"""

from orchestrator.core.routes.conditions import route_condition
from orchestrator.core.routes.mining import (
    GOALS,
    ClosedCase,
    Edge,
    GoalRoutes,
    Pattern,
    RouteMiner,
    Variant,
    activity_of,
    event_activity,
    mine_routes,
    summarise,
)

__all__ = [
    "GOALS",
    "ClosedCase",
    "Edge",
    "GoalRoutes",
    "Pattern",
    "RouteMiner",
    "Variant",
    "activity_of",
    "event_activity",
    "mine_routes",
    "route_condition",
    "summarise",
]
