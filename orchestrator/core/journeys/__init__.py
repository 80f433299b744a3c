"""Journeys as data: multi-step journeys with waits, beside the rules.

- :func:`load_journey_set` / :func:`load_journey_directory` turn ``rules/journeys/*.yaml`` into
  a :class:`JourneySet`, or raise :class:`~orchestrator.core.rules.RuleSetError` naming file,
  journey, step and field.
- :func:`on_event` / :func:`fire_due` advance one person's :class:`JourneyState` on an event or
  on its due timers: new state, timers, action requests, analytics facts.
- :func:`arbitrate_requests` sends the requests through the rules' arbitration (consent, caps).

Pure: no Faust, no Kafka, no clock. The format and the semantics: ``docs/journeys.md``; the
worker runs them through ``orchestrator.runtime.journeys``.
"""

from orchestrator.core.journeys.journeyset import Journey, JourneySet, Step
from orchestrator.core.journeys.loader import JourneyError, load_journey_directory, load_journey_set
from orchestrator.core.journeys.machine import (
    EXIT_REASONS,
    ActionRequest,
    Fact,
    JourneyOutcome,
    JourneyState,
    Timer,
    TimerFiring,
    fire_due,
    hand_over,
    leave_all,
    on_event,
    step_id,
    take_over,
)
from orchestrator.core.journeys.model import journey_file_json_schema
from orchestrator.core.journeys.person import PersonJourneys
from orchestrator.core.journeys.requests import JourneyActions, arbitrate_requests
from orchestrator.core.journeys.runner import JourneyRunner

__all__ = [
    "EXIT_REASONS",
    "ActionRequest",
    "Fact",
    "Journey",
    "JourneyActions",
    "JourneyError",
    "JourneyOutcome",
    "JourneyRunner",
    "JourneySet",
    "JourneyState",
    "PersonJourneys",
    "Step",
    "Timer",
    "TimerFiring",
    "arbitrate_requests",
    "fire_due",
    "hand_over",
    "journey_file_json_schema",
    "leave_all",
    "load_journey_directory",
    "load_journey_set",
    "on_event",
    "step_id",
    "take_over",
]
