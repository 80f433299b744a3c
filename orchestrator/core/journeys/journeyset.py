"""A loaded journey set: compiled journeys and their steps, immutable, swapped in as a whole."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.events import EVENT_TYPES
from orchestrator.core.rules.paths import RuleInputs
from orchestrator.core.rules.ruleset import Rule

Condition = Callable[[RuleInputs], bool]


@dataclass(frozen=True, slots=True)
class Step:
    """One compiled step. ``kind`` is send, wait_s, wait_for, branch or split.

    ``next`` is where the step leads (send, wait_s; wait_for on the event; branch when the
    condition holds; split outside the holdout); ``other`` where the alternative leads
    (wait_for on the timeout; branch when it does not hold; split for the holdout group).
    """

    id: str
    kind: str
    next: str
    other: str = ""
    #: send: the action request, as a rule that always holds (arbitrated like any rule).
    rule: Rule | None = None
    #: wait_s: the wait; wait_for: the timeout (ms of event time).
    wait_ms: int = 0
    #: wait_for: the event types that end the wait.
    events: frozenset[str] = frozenset()
    #: wait_for (optional) and branch: the condition.
    condition: Condition | None = field(default=None, repr=False)
    holdout_percent: float = 0.0


@dataclass(frozen=True, slots=True)
class Journey:
    """One compiled journey. Built only by the loader; run by :mod:`.machine`."""

    id: str
    file: str
    description: str
    #: Event types that can enter; None: any event (the entry condition decides).
    entry_types: frozenset[str] | None
    entry_condition: Condition | None = field(repr=False)
    goal: Condition | None = field(repr=False)
    exit_when: Condition | None = field(repr=False)
    reentry: str  # never | after_exit
    reentry_after_ms: int
    max_entries: int
    steps: tuple[Step, ...]
    #: The goal condition as written (compact JSON), for analytics pages; None: no goal.
    goal_text: str | None = None
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {s.id: i for i, s in enumerate(self.steps)})

    def step(self, step_id: str) -> Step | None:
        """The step with this id, or None (a journey set reloaded without it)."""
        at = self._index.get(step_id)
        return None if at is None else self.steps[at]


@dataclass(frozen=True, slots=True)
class JourneySet:
    """Journeys as data. ``lookups`` are the rule set's (conditions and payloads read them);
    ``version`` is the ``version:`` every file states, or ``sha256:<12 hex>`` of the documents."""

    version: str
    journeys: tuple[Journey, ...]
    documents: Mapping[str, str]
    lookups: Mapping[str, Mapping[str, Any]]
    _by_id: Mapping[str, Journey] = field(init=False, repr=False, compare=False)
    _entered_by: Mapping[str, tuple[Journey, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.journeys, key=lambda j: j.id))
        object.__setattr__(self, "journeys", ordered)
        object.__setattr__(self, "_by_id", {j.id: j for j in ordered})
        object.__setattr__(self, "_entered_by", {
            t: tuple(j for j in ordered if j.entry_types is None or t in j.entry_types)
            for t in EVENT_TYPES})

    def get(self, journey_id: str) -> Journey | None:
        return self._by_id.get(journey_id)

    def entered_by(self, event_type: str) -> tuple[Journey, ...]:
        """The journeys an event of this type can enter, in id order."""
        return self._entered_by.get(event_type, ())

    def describe(self) -> list[dict[str, Any]]:
        """One line per journey, for an HTTP view or a command line."""
        return [{"id": j.id, "file": j.file, "steps": [s.id for s in j.steps],
                 "description": j.description} for j in self.journeys]
