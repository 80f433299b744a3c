"""One person's journeys for one event, in the shape :func:`orchestrator.core.journey.process_event`
takes them: the journey state in, the journeys' action requests and the outcome out.

The worker's event path is ``JourneyRunner.feed``'s: the person's timers due by the event fire
first (on the profile before the event, :func:`fire_due`), the profile takes the event, then
:meth:`PersonJourneys.requests` advances the journeys on it, and ``process_event`` arbitrates
those requests together with the rules' candidates (one arbitration per event).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.core.events import Event
from orchestrator.core.journeys.journeyset import JourneySet
from orchestrator.core.journeys.machine import ActionRequest, JourneyOutcome, JourneyState, on_event
from orchestrator.core.profile import Profile
from orchestrator.core.rules.paths import RuleInputs


@dataclass(slots=True)
class PersonJourneys:
    """A person's journey state while one event is decided; ``outcome`` is set once
    :meth:`requests` ran (None: the event never reached the journeys -- a replay, a record from
    before an erasure, an erasure)."""

    journeys: JourneySet
    person_id: str
    state: JourneyState | None
    outcome: JourneyOutcome | None = None

    @property
    def version(self) -> str:
        return self.journeys.version

    @property
    def lookups(self) -> Mapping[str, Mapping[str, Any]]:
        return self.journeys.lookups

    def requests(self, event: Event, profile: Profile, scores: Mapping[str, float | None],
                 score_labels: Mapping[str, int] | None,
                 inputs: RuleInputs | None = None) -> Sequence[ActionRequest]:
        """Advance the person's journeys on ``event`` (already applied to ``profile``); return
        the action requests of the steps reached, to be arbitrated with the rules."""
        self.outcome = on_event(self.journeys, self.state, self.person_id, event, profile,
                                scores, score_labels, inputs)
        return self.outcome.requests
