"""The journey state machine: a person's journey positions + an event (or a timer) -> what next.

Pure and deterministic. The state of one person (:class:`JourneyState`) is plain data that
round-trips through JSON; :func:`on_event` and :func:`fire_due` take it with the person's
profile and return a :class:`JourneyOutcome`: the new state, timers to set and to cancel, action
requests (to be arbitrated with the rules, see :mod:`.requests`) and analytics facts.

**Event time.** Every time here is event time: a step reached on an event is reached at the
event's ``ts``; a timer is due ``wait`` after the step was reached and fires *at its due time*
(its steps are stamped with the due time, whenever the shell gets round to it). Timers due at or
before an event fire before that event is looked at, oldest first: a shell that fires timers
live (within a second of their due time) and a replay at full speed that fires them when the
next event of the person comes give the same steps. For conditions evaluated when a timer fires
to see what live traffic saw, the shell calls :func:`fire_due` up to the event's time with the
profile *before* the event is applied, then :func:`on_event` after (``on_event`` fires any timer
still due itself, as a safety net).

**Once.** A step is reached at most once per entry: targets only lead to later steps (the
loader refuses loops), so ``step_id(person, journey, entry, step)`` names one firing, and a
timer is only acted on while the person's position is still at its step with that due time --
a duplicate or late firing changes nothing. A ``wait_for`` step ends by exactly one of its
event (``ts`` before the due time) or its timeout.

**Re-entry.** ``max_entries`` bounds the entries of a person ever; ``reentry: never`` allows
one; ``after_exit`` allows another once the person has left, ``reentry_after_s`` later. A
journey left on an event is not entered again on the same event.

Events for the state machine are the ones the profile accepted (the profile's replay guard
recognises a redelivered event; the shell does not hand it on).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.events import ClickstreamEvent, ContactCentreEvent, Event, event_type
from orchestrator.core.journeys.journeyset import Journey, JourneySet, Step
from orchestrator.core.journeys.model import EXIT
from orchestrator.core.profile import Profile
from orchestrator.core.rules.arbitration import in_holdout
from orchestrator.core.rules.paths import RuleInputs
from orchestrator.core.rules.ruleset import Rule

# A position: [entry number, step id, entered ts, ts the step was reached, due ts or 0].
ENTRY, STEP, ENTERED, AT, DUE = range(5)
#: Why a person left a journey (analytics label values).
EXIT_REASONS = ("completed", "converted", "exit_condition", "timed_out", "holdout", "erased",
                "journey_removed", "merged")


def step_id(person_id: str, journey_id: str, entry: int, step: str) -> str:
    """The idempotent id of one step of one entry of one person into a journey.

    >>> step_id("v-1", "cart", 1, "remind") == step_id("v-1", "cart", 1, "remind")
    True
    >>> step_id("v-1", "cart", 1, "remind") != step_id("v-1", "cart", 2, "remind")
    True
    """
    text = f"{person_id}\x1f{journey_id}\x1f{entry}\x1f{step}"
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


@dataclass(slots=True)
class JourneyState:
    """A person's journeys: where they are in each active one, and what they did in the past.

    ``active``: journey id -> [entry number, step id, entered ts, step reached ts, due ts or 0];
    ``past``: journey id -> [entries so far, ts of the last exit or 0]. About 100 bytes of JSON
    per active journey.
    """

    active: dict[str, list[Any]] = field(default_factory=dict)
    past: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"active": self.active, "past": self.past}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JourneyState:
        return cls(active={k: list(v) for k, v in data.get("active", {}).items()},
                   past={k: list(v) for k, v in data.get("past", {}).items()})

    def next_due(self) -> int | None:
        """The earliest due time of the person's pending timers (None: no timer)."""
        dues = [p[DUE] for p in self.active.values() if p[DUE]]
        return min(dues) if dues else None


@dataclass(frozen=True, slots=True)
class TimerFiring:
    """A timer firing as a step's conditions see it: an event of type ``other`` at the due time,
    with no page and no contact fields (event paths are missing), on the profile as it is."""

    step_id: str
    ts: int
    type: str = "other"

    @property
    def event_id(self) -> str:
        return f"timer:{self.step_id}"


@dataclass(frozen=True, slots=True)
class Timer:
    """A timer to set: fire ``fire_due`` for the person at ``due_ts`` (event time).
    ``step_id`` identifies it: setting the same one twice is one timer."""

    person_id: str
    journey: str
    entry: int
    step: str
    step_id: str
    due_ts: int


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A send step reached: its rule (arbitrated with consent, caps and the channel's other
    candidates) and what triggered it (the event, or the :class:`TimerFiring`)."""

    journey: str
    entry: int
    step: str
    step_id: str
    rule: Rule
    trigger: Any
    ts: int


@dataclass(frozen=True, slots=True)
class Fact:
    """One analytics fact. ``kind``: ``entered``, ``reached`` (a step), ``converted`` (the goal
    held), ``exited`` (with ``reason``, one of :data:`EXIT_REASONS`), ``handed_over`` and
    ``taken_over`` (a position moving from a visitor to the customer they logged in as).
    ``since_previous_ms`` is the time since the previous step was reached (entry for the first),
    ``since_entry_ms`` since entry; ``path`` says which way a wait_for (``event``/``timeout``),
    branch (``then``/``else``) or split (``treatment``/``holdout``) went."""

    kind: str
    journey: str
    entry: int
    ts: int
    step: str | None = None
    since_previous_ms: int = 0
    since_entry_ms: int = 0
    reason: str | None = None
    path: str | None = None


@dataclass(slots=True)
class JourneyOutcome:
    """What the shell must do: keep ``state`` (None: the person was erased, delete it), set
    ``timers``, cancel the timers named in ``cancelled``, arbitrate ``requests``, count
    ``facts``. ``fired`` are the step ids of the timers that fired."""

    state: JourneyState | None
    timers: list[Timer] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    requests: list[ActionRequest] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)


class _Run:
    """One call's working set: the person, the state being changed, the outcome being built."""

    __slots__ = ("journeys", "out", "person_id", "profile", "state")

    def __init__(self, journeys: JourneySet, state: JourneyState, person_id: str,
                 profile: Profile) -> None:
        self.journeys, self.state, self.person_id, self.profile = journeys, state, person_id, profile
        self.out = JourneyOutcome(state=state)

    def sid(self, journey_id: str, position: list[Any], step: str | None = None) -> str:
        return step_id(self.person_id, journey_id, position[ENTRY], step or position[STEP])

    def timer_context(self, firing: TimerFiring) -> RuleInputs:
        return RuleInputs(event=firing, profile=self.profile,  # type: ignore[arg-type]
                       scores=self.profile.scores, lookups=self.journeys.lookups)

    # ------------------------------------------------------------ moves

    def arrive(self, journey: Journey, position: list[Any], target: str, ts: int, ctx: RuleInputs,
               reason: str = "completed", path: str | None = None) -> None:
        """Move to ``target`` at ``ts`` and run the steps that take no time, up to a wait."""
        while True:
            if target == EXIT:
                self.leave(journey, position, ts, reason)
                return
            step = journey.step(target)
            if step is None:  # cannot happen for a loaded set; a position of an older set
                self.leave(journey, position, ts, "journey_removed")
                return
            previous = position[AT]
            position[STEP], position[AT], position[DUE] = step.id, ts, 0
            self.out.facts.append(Fact("reached", journey.id, position[ENTRY], ts, step.id,
                                       ts - previous, ts - position[ENTERED], path=path))
            reason = "completed"
            target, waits, path = self.take(journey, position, step, ts, ctx)
            if waits:
                return
            if path == "holdout":
                reason = "holdout"

    def take(self, journey: Journey, position: list[Any], step: Step, ts: int,
             ctx: RuleInputs) -> tuple[str, bool, str | None]:
        """Do the step: (where it leads now, whether the person waits here, which way it went)."""
        kind = step.kind
        if kind == "send":
            assert step.rule is not None
            self.out.requests.append(ActionRequest(journey.id, position[ENTRY], step.id,
                                                   self.sid(journey.id, position), step.rule,
                                                   ctx.event, ts))
            return step.next, False, None
        if kind in ("wait_s", "wait_for"):
            due = ts + step.wait_ms
            position[DUE] = due
            self.out.timers.append(Timer(self.person_id, journey.id, position[ENTRY], step.id,
                                         self.sid(journey.id, position), due))
            return step.id, True, None
        if kind == "branch":
            assert step.condition is not None
            holds = step.condition(ctx)
            return (step.next, False, "then") if holds else (step.other, False, "else")
        if in_holdout(self.person_id, journey.id, step.holdout_percent):
            return step.other, False, "holdout"
        return step.next, False, "treatment"

    def leave(self, journey: Journey | str, position: list[Any], ts: int, reason: str) -> None:
        journey_id = journey if isinstance(journey, str) else journey.id
        if position[DUE]:
            self.out.cancelled.append(self.sid(journey_id, position))
        del self.state.active[journey_id]
        past = self.state.past.setdefault(journey_id, [position[ENTRY], 0])
        past[1] = ts
        self.out.facts.append(Fact("exited", journey_id, position[ENTRY], ts, position[STEP],
                                   ts - position[AT], ts - position[ENTERED], reason=reason))

    def enter(self, journey: Journey, ts: int, ctx: RuleInputs) -> None:
        past = self.state.past.get(journey.id)
        entry = (past[0] if past else 0) + 1
        self.state.past[journey.id] = [entry, past[1] if past else 0]
        position = [entry, journey.steps[0].id, ts, ts, 0]
        self.state.active[journey.id] = position
        self.out.facts.append(Fact("entered", journey.id, entry, ts))
        self.arrive(journey, position, journey.steps[0].id, ts, ctx)

    def may_enter(self, journey: Journey, ts: int) -> bool:
        return _reentry_allows(self.state, journey, ts)

    # ------------------------------------------------------------ timers

    def fire_due(self, until_ts: int) -> None:
        """Fire every timer due at or before ``until_ts``, oldest first (ties: journey id)."""
        active = self.state.active
        while True:
            due = [(p[DUE], j) for j, p in active.items() if p[DUE] and p[DUE] <= until_ts]
            if not due:
                return
            at, journey_id = min(due)
            position = active[journey_id]
            sid = self.sid(journey_id, position)
            self.out.fired.append(sid)
            position[DUE] = 0
            journey = self.journeys.get(journey_id)
            step = journey.step(position[STEP]) if journey is not None else None
            if journey is None or step is None:
                self.leave(journey_id, position, at, "journey_removed")
                continue
            ctx = self.timer_context(TimerFiring(sid, at))
            if step.kind == "wait_for":
                self.arrive(journey, position, step.other, at, ctx, "timed_out", path="timeout")
            else:
                self.arrive(journey, position, step.next, at, ctx)

    # ------------------------------------------------------------ events

    def event(self, event: Event, ctx: RuleInputs) -> None:
        ts, kind = event.ts, ctx.type or event_type(event)
        left: set[str] = set()
        for journey_id in sorted(self.state.active):
            position = self.state.active[journey_id]
            journey = self.journeys.get(journey_id)
            step = journey.step(position[STEP]) if journey is not None else None
            if journey is None or step is None:
                self.leave(journey_id, position, ts, "journey_removed")
                left.add(journey_id)
                continue
            if ts < position[AT]:
                continue  # late: from before the person reached this step
            if journey.goal is not None and journey.goal(ctx):
                self.out.facts.append(Fact("converted", journey_id, position[ENTRY], ts,
                                           position[STEP], ts - position[AT], ts - position[ENTERED]))
                self.leave(journey, position, ts, "converted")
                left.add(journey_id)
            elif journey.exit_when is not None and journey.exit_when(ctx):
                self.leave(journey, position, ts, "exit_condition")
                left.add(journey_id)
            elif step.kind == "wait_for" and kind in step.events and ts < position[DUE] \
                    and (step.condition is None or step.condition(ctx)):
                self.out.cancelled.append(self.sid(journey_id, position))
                position[DUE] = 0
                self.arrive(journey, position, step.next, ts, ctx, path="event")
                if journey_id not in self.state.active:
                    left.add(journey_id)
        for journey in self.journeys.entered_by(kind):
            if journey.id in self.state.active or journey.id in left:
                continue
            if journey.entry_condition is not None and not journey.entry_condition(ctx):
                continue
            if self.may_enter(journey, ts):
                self.enter(journey, ts, ctx)


def fire_due(journeys: JourneySet, state: JourneyState | None, person_id: str, profile: Profile,
             until_ts: int) -> JourneyOutcome:
    """Fire the person's timers due at or before ``until_ts`` (event time), oldest first.

    Idempotent: a timer already fired, or one whose step the person has left, does nothing; so
    the shell may call this for any timer it holds, as often as it likes.
    """
    run = _Run(journeys, state if state is not None else JourneyState(), person_id, profile)
    run.fire_due(until_ts)
    return run.out


def on_event(journeys: JourneySet, state: JourneyState | None, person_id: str, event: Event,
             profile: Profile, scores: Mapping[str, float | None] | None = None,
             score_labels: Mapping[str, int] | None = None,
             inputs: RuleInputs | None = None) -> JourneyOutcome:
    """Advance the person's journeys on ``event`` (already applied to ``profile``).

    In order: timers due at or before the event fire; an erasure request ends every journey
    (the outcome's state is None); for each active journey, in id order, the goal (converted,
    the person leaves), ``exit_when`` (leaves), or the event a ``wait_for`` step waits for;
    then the journeys this event can enter. ``scores`` are the intent scores at the event (as
    rules see them); ``inputs``, when given, are the event's decision inputs already built
    (the rules read the same ones).
    """
    kind = inputs.type if inputs is not None and inputs.type else event_type(event)
    if (state is None or not state.active) and kind != "erasure_requested" \
            and not journeys.entered_by(kind):
        # Most events: a person in no journey, an event no journey starts with.
        return JourneyOutcome(state=state if state is not None else JourneyState())
    ctx = inputs if inputs is not None else RuleInputs(
        event=event, profile=profile, scores=scores or {}, lookups=journeys.lookups,
        score_labels=score_labels or {}, type=kind)
    if (state is None or not state.active) and kind != "erasure_requested" \
            and not _may_enter_any(journeys, state, kind, event.ts, ctx):
        # A person in no journey whose event enters none (most page views): nothing to run.
        return JourneyOutcome(state=state if state is not None else JourneyState())
    run = _Run(journeys, state if state is not None else JourneyState(), person_id, profile)
    run.fire_due(event.ts)
    if isinstance(event, ClickstreamEvent | ContactCentreEvent) and event.type == "erasure_requested":
        for journey_id in sorted(run.state.active):
            run.leave(journey_id, run.state.active[journey_id], event.ts, "erased")
        run.out.state = None
        return run.out
    run.event(event, ctx)
    return run.out


def _may_enter_any(journeys: JourneySet, state: JourneyState | None, kind: str, ts: int,
                   ctx: RuleInputs) -> bool:
    """Whether a person with no active journey enters one on this event: the entry checks of
    :meth:`_Run.event`, without building its working set (conditions are pure, so the full run
    that follows a yes evaluates them again to the same result)."""
    for journey in journeys.entered_by(kind):
        if journey.entry_condition is not None and not journey.entry_condition(ctx):
            continue
        if state is None or _reentry_allows(state, journey, ts):
            return True
    return False


def _reentry_allows(state: JourneyState, journey: Journey, ts: int) -> bool:
    """Whether the person's past entries of ``journey`` allow an entry at ``ts``."""
    past = state.past.get(journey.id)
    if past is None:
        return True
    entries, last_exit = past
    if entries >= journey.max_entries or journey.reentry == "never":
        return False
    return ts - last_exit >= journey.reentry_after_ms


def hand_over(state: JourneyState | None, ts: int) -> JourneyOutcome:
    """A visitor logs in as a customer: their journey state travels to the customer as it is
    (:func:`take_over` on the customer's side, before the identifying event is decided there, so
    that a wait for the login ends and a goal on it converts where the person now lives). The
    outcome's state is what travels (None: no journey to hand over) and its facts say
    ``handed_over`` for each active position; the visitor's own state is done with.

    >>> out = hand_over(JourneyState(active={"cart": [1, "pause", 10, 10, 70]},
    ...                              past={"cart": [1, 0]}), ts=20)
    >>> out.state.active, [(f.kind, f.journey) for f in out.facts]
    ({'cart': [1, 'pause', 10, 10, 70]}, [('handed_over', 'cart')])
    """
    if state is None or not (state.active or state.past):
        return JourneyOutcome(state=None)
    return JourneyOutcome(state=state, facts=[
        Fact("handed_over", journey_id, position[ENTRY], ts, position[STEP])
        for journey_id, position in sorted(state.active.items())])


def take_over(journeys: JourneySet, state: JourneyState | None, person_id: str,
              carried: JourneyState, ts: int) -> JourneyOutcome:
    """The customer ``person_id`` takes over the journeys a visitor of theirs handed over at
    login (:func:`hand_over`), at ``ts``. A journey the customer is not in goes on where the
    visitor was -- its timer now the customer's, under the customer's next entry number (step
    ids, and so action ids, stay unique per person); one the customer is in already keeps the
    customer's position, and the visitor's ends (``merged``). The visitor's entries count for
    the customer's re-entry rules (entries add up, the later last exit holds).

    >>> carried = JourneyState(active={"cart": [1, "pause", 10, 10, 70]}, past={"cart": [1, 0]})
    >>> out = take_over(JourneySet("v", (), {}, {}), JourneyState(past={"cart": [2, 5]}), "c-1",
    ...                 carried, ts=20)
    >>> out.state.active, out.state.past, [(t.entry, t.due_ts) for t in out.timers]
    ({'cart': [3, 'pause', 10, 10, 70]}, {'cart': [3, 5]}, [(3, 70)])
    """
    run = _Run(journeys, state if state is not None else JourneyState(), person_id,
               Profile(person_id=person_id))
    mine = run.state
    for journey_id in sorted(set(carried.past) | set(carried.active)):
        entries, last_exit = mine.past.get(journey_id, (0, 0))
        theirs, their_exit = carried.past.get(journey_id, (0, 0))
        mine.past[journey_id] = [entries + theirs, max(last_exit, their_exit)]
        position = carried.active.get(journey_id)
        if position is None:
            continue
        position = list(position)
        if journey_id in mine.active:
            mine.past[journey_id][1] = max(mine.past[journey_id][1], ts)
            run.out.facts.append(Fact("exited", journey_id, position[ENTRY], ts, position[STEP],
                                      ts - position[AT], ts - position[ENTERED], reason="merged"))
            continue
        position[ENTRY] = entries + theirs
        mine.active[journey_id] = position
        run.out.facts.append(Fact("taken_over", journey_id, position[ENTRY], ts, position[STEP]))
        if position[DUE]:
            run.out.timers.append(Timer(person_id, journey_id, position[ENTRY], position[STEP],
                                        run.sid(journey_id, position), position[DUE]))
    return run.out


def leave_all(journeys: JourneySet, state: JourneyState | None, person_id: str, ts: int,
              reason: str) -> JourneyOutcome:
    """End every active journey of the person at ``ts`` for ``reason`` (one of
    :data:`EXIT_REASONS`): their timers are cancelled, ``exited`` facts say why. The state keeps
    the person's past entries (re-entry rules still count them).

    >>> state = JourneyState(active={"cart": [1, "pause", 10, 10, 70]})
    >>> out = leave_all(JourneySet("v", (), {}, {}), state, "v-1", 20, "merged")
    >>> out.state.active, out.state.past, [f.reason for f in out.facts], len(out.cancelled)
    ({}, {'cart': [1, 20]}, ['merged'], 1)
    """
    run = _Run(journeys, state if state is not None else JourneyState(), person_id,
               Profile(person_id=person_id))
    for journey_id in sorted(run.state.active):
        run.leave(journey_id, run.state.active[journey_id], ts, reason)
    return run.out
