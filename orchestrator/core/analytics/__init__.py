"""Rule and action analytics: what each rule's decisions led to, and the uplift against its
holdout. Pure: :mod:`.attribution` (an event's facts), :mod:`.report` (counts, rates, uplift),
:mod:`.interval` (Wilson and Newcombe intervals). ``docs/journeys.md`` explains the choices."""

from orchestrator.core.analytics.attribution import (
    ATTRIBUTION_WINDOW_MS,
    OUTCOMES,
    Fact,
    GoalIndex,
    facts_of,
)
from orchestrator.core.analytics.interval import Z95, newcombe_interval, wilson_interval
from orchestrator.core.analytics.report import RuleTally, rule_report, uplift

__all__ = [
    "ATTRIBUTION_WINDOW_MS",
    "OUTCOMES",
    "Z95",
    "Fact",
    "GoalIndex",
    "RuleTally",
    "facts_of",
    "newcombe_interval",
    "rule_report",
    "uplift",
    "wilson_interval",
]
