"""Journey action requests through the rules' arbitration: consent, caps, one action per channel.

A send step does not send by itself: :func:`arbitrate_requests` weighs its request like a rule
(:func:`orchestrator.core.rules.decide`), so consent, cooldowns, daily and weekly caps and
``stop_after`` hold for journeys exactly as for rules, and on an event a journey's action competes
with the rules' candidates for the channel (pass the rule set). The journey goes on whatever the
arbitration decides: the request is the step, the action is the arbitration's.

An action record of a journey has ``rule: journey.<journey>.<step>``, ``journey: {id, step,
entry, step_id}``, and an ``action_id`` derived from the step id: a step fired again (a replay, a
duplicate timer) yields the same id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from orchestrator.core.actions import action_id_for, build_action_record
from orchestrator.core.events import Event
from orchestrator.core.journeys.machine import ActionRequest, TimerFiring
from orchestrator.core.profile import Profile, record_sent
from orchestrator.core.rules import RuleSet, Suppressed, decide
from orchestrator.core.rules.paths import RuleInputs

#: (journey set version, id of its lookups) -> a rule set without rules, for timers' decisions.
_EMPTY_RULE_SETS: dict[tuple[str, int], RuleSet] = {}


def _no_rules(version: str, lookups: Mapping[str, Mapping[str, Any]]) -> RuleSet:
    """A rule set of no rules with the journeys' lookups: a timer's sends compete only among
    themselves (kept per journey set, not built per decision)."""
    key = (version, id(lookups))
    found = _EMPTY_RULE_SETS.get(key)
    if found is None or found.lookups is not lookups:
        if len(_EMPTY_RULE_SETS) > 16:
            _EMPTY_RULE_SETS.clear()
        found = _EMPTY_RULE_SETS[key] = RuleSet(version=version, rules=(),
                                                documents=MappingProxyType({}), lookups=lookups)
    return found


@dataclass(slots=True)
class JourneyActions:
    """Action records to send, records of held-out decisions, and what was held back."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    held_out: list[dict[str, Any]] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _AsRecordTrigger:
    # build_action_record names a non-contract trigger by ``action_id``; the record's trigger id
    # is set to the timer's own afterwards.
    action_id: str
    ts: int


def arbitrate_requests(requests: Iterable[ActionRequest], profile: Profile, *, version: str,
                       lookups: Mapping[str, Mapping[str, Any]], now_ms: int | None = None,
                       kafka_ts: int = 0, rule_set: RuleSet | None = None,
                       trigger_event: Event | None = None,
                       scores: Mapping[str, float | None] | None = None,
                       score_labels: Mapping[str, int] | None = None,
                       model_versions: Mapping[str, str] | None = None,
                       inputs: RuleInputs | None = None) -> JourneyActions:
    """Arbitrate ``requests`` per trigger and build the action records of the winners.

    Requests of one trigger (an event, or one timer firing) are decided together; on the event
    ``trigger_event``, ``rule_set``'s rules join them (give both when this replaces the event's
    own ``decide``: the rules then decide on it even without a request). Sent and held-out
    decisions are recorded in the profile (``record_sent``), so caps count them. ``scores`` are
    the event's; a timer firing sees the profile's latest. ``now_ms`` is the decision time
    (None: the trigger's own time, as a replay decides); ``model_versions`` go on the records
    decided on the event (as the rules' records carry them); ``inputs`` are the event's
    decision inputs when the caller built them already.
    """
    out = JourneyActions()
    groups: dict[int, list[ActionRequest]] = {}
    if trigger_event is not None and rule_set is not None:
        groups[id(trigger_event)] = []
    for request in requests:
        groups.setdefault(id(request.trigger), []).append(request)
    triggers = {id(r.trigger): r.trigger for r in requests}
    if trigger_event is not None:
        triggers[id(trigger_event)] = trigger_event
    for key, group in groups.items():
        trigger = triggers[key]
        timer = isinstance(trigger, TimerFiring)
        decided_ts = trigger.ts if now_ms is None else now_ms
        by_rule = {r.rule.id: r for r in group}
        rules = tuple(r.rule for r in group)
        on_event = rule_set is not None and not timer
        arbitration = decide(rule_set if on_event else _no_rules(version, lookups),  # type: ignore[arg-type]
                             trigger, profile, profile.scores if timer else (scores or {}),
                             decided_ts, None if timer else score_labels, extra_rules=rules,
                             inputs=inputs if on_event else None)
        out.suppressed += arbitration.suppressed
        for decision in [*arbitration.chosen, *arbitration.held_out]:
            request = by_rule.get(decision.rule)  # None: a rule's decision on the event
            event = _AsRecordTrigger(trigger.event_id, trigger.ts) if timer else trigger
            record = build_action_record(decision, event, profile, trigger_kafka_ts=kafka_ts,  # type: ignore[arg-type]
                                         decided_ts=decided_ts,
                                         rule_set_version=version if request is not None or rule_set is None
                                         else rule_set.version,
                                         scores=profile.scores if timer else scores,
                                         model_versions=None if timer else model_versions,
                                         action_id=None if request is None else action_id_for(
                                             request.step_id, decision.channel, decision.action))
            if request is not None:
                record["trigger_event_id"] = trigger.event_id
                record["journey"] = {"id": request.journey, "step": request.step,
                                     "entry": request.entry, "step_id": request.step_id}
            record_sent(profile, record, decision.cap_key, trigger.ts, holdout=decision.holdout)
            (out.held_out if decision.holdout else out.actions).append(record)
    return out
