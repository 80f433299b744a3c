"""People's events through profile, journeys and arbitration, in event time: a pure driver.

:class:`JourneyRunner` holds plain dicts of profiles, journey states and pending timers, and
runs each event the way a worker is to run it once journeys are wired: the person's timers due
at or before the event fire first (on the profile before the event), then the event is applied
to the profile, then the journeys advance on it, and every action request goes through the
arbitration. :meth:`JourneyRunner.advance` fires the timers of people who are quiet, as a
shell's timer wheel does when the clock passes their due time. Firing a timer early through the
next event or on time through ``advance`` gives the same steps -- the replay-equals-live property
the unit specifications check. Used by tests, by ``docs/journeys.md``'s examples, and as the
shape of the later worker wiring.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.events import ClickstreamEvent, ContactCentreEvent, Event
from orchestrator.core.journeys.journeyset import JourneySet
from orchestrator.core.journeys.machine import Fact, JourneyOutcome, JourneyState, fire_due, on_event
from orchestrator.core.journeys.requests import arbitrate_requests
from orchestrator.core.profile import Profile, apply_event
from orchestrator.core.rules import RuleSet

Scores = Mapping[str, float | None]


@dataclass
class JourneyRunner:
    """Journeys for many people, fed events in event-time order.

    ``rule_set``: rules that decide on the same events (their actions compete with the
    journeys'); None: journeys alone. ``scores_of(profile, event)`` gives the intent scores at
    an event (default: none), and they are kept in the profile as the worker keeps them.
    """

    journeys: JourneySet
    rule_set: RuleSet | None = None
    scores_of: Callable[[Profile, Event], Scores] | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)
    states: dict[str, JourneyState] = field(default_factory=dict)
    #: Actions sent and held out, and the analytics facts, in the order they happened.
    actions: list[dict[str, Any]] = field(default_factory=list)
    held_out: list[dict[str, Any]] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    _timers: list[tuple[int, str, str]] = field(default_factory=list)  # (due, step id, person)

    def feed(self, person_id: str, event: Event) -> None:
        """One event of ``person_id`` (its timers due by then fire first)."""
        profile = self.profiles.get(person_id) or Profile(person_id=person_id)
        self._take(person_id, fire_due(self.journeys, self.states.get(person_id), person_id,
                                       profile, event.ts), profile)
        if isinstance(event, ClickstreamEvent | ContactCentreEvent) and event.type == "erasure_requested":
            outcome = on_event(self.journeys, self.states.get(person_id), person_id, event, profile)
            self._take(person_id, outcome, profile)
            self.profiles.pop(person_id, None)
            return
        if not apply_event(profile, event):
            return  # a redelivered event: the profile recognised it, journeys never see it
        self.profiles[person_id] = profile
        scores = self.scores_of(profile, event) if self.scores_of is not None else {}
        profile.scores = dict(scores)
        outcome = on_event(self.journeys, self.states.get(person_id), person_id, event, profile,
                           scores)
        self._take(person_id, outcome, profile, scores, event)

    def advance(self, until_ts: int) -> None:
        """Fire every pending timer due at or before ``until_ts``, oldest first."""
        while self._timers and self._timers[0][0] <= until_ts:
            due, _, person_id = heapq.heappop(self._timers)
            profile = self.profiles.get(person_id)
            if profile is None or person_id not in self.states:
                continue  # erased, or the timer was for a state that is gone
            self._take(person_id, fire_due(self.journeys, self.states[person_id], person_id,
                                           profile, due), profile)

    def _take(self, person_id: str, outcome: JourneyOutcome, profile: Profile,
              scores: Scores | None = None, event: Event | None = None) -> None:
        if outcome.state is None:
            self.states.pop(person_id, None)
        else:
            self.states[person_id] = outcome.state
        for timer in outcome.timers:
            heapq.heappush(self._timers, (timer.due_ts, timer.step_id, person_id))
        self.facts += outcome.facts
        if outcome.requests or (event is not None and self.rule_set is not None):
            decided = arbitrate_requests(
                outcome.requests, profile, version=self.journeys.version,
                lookups=self.journeys.lookups, rule_set=self.rule_set, scores=scores, trigger_event=event)
            self.actions += decided.actions
            self.held_out += decided.held_out
