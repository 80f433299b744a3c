"""Which rule's decisions an event counts for: sends, holdouts, feedback and goal conversions.

Everything here reads what the profile already keeps: each decision (sent, or held out for the
rule's control group) is an entry of ``profile.recent_actions`` with its ``rule``, ``action``,
event time ``ts`` and ``holdout`` mark (``core.profile.fold.record_sent``), and the times of the
person's recent events per type are in ``profile.event_times``. Nothing is added to the profile.

**Attribution.** A rule's *goal* is a set of event types (the rule's ``goal``, or else its
``caps.stop_after``). A goal event at time ``t`` converts, for each rule whose goal it is, the
person's newest decision of that rule made before ``t`` and at most :data:`ATTRIBUTION_WINDOW_MS`
before it -- unless another goal event of that rule came between the decision and ``t`` (then
that one converted it already). The same holds for the held-out decisions, so the treated and
the control group are measured alike; the unit is a decision.

:func:`facts_of` turns one decided event into :data:`Fact` tuples ``(rule, action, outcome)``
with ``outcome`` one of :data:`OUTCOMES`. It allocates nothing for the many events that are
none of these (it returns a shared empty tuple).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orchestrator.core.events import ActionFeedbackEvent, Event, event_type
from orchestrator.core.profile import Profile
from orchestrator.core.rules import RuleSet

#: A goal event converts decisions made at most this long before it (event time): a day.
ATTRIBUTION_WINDOW_MS = 24 * 3600 * 1000
#: What is counted per rule and action. ``goal_treated`` / ``goal_held_out``: decisions of
#: each group converted to the rule's goal; the feedback outcomes come from ``action-feedback``.
OUTCOMES = ("sent", "held_out", "shown", "clicked", "dismissed", "converted",
            "goal_treated", "goal_held_out")
FEEDBACK_OUTCOMES = frozenset({"shown", "clicked", "dismissed", "converted"})

Fact = tuple[str, str, str]
_NONE: tuple[Fact, ...] = ()


class GoalIndex:
    """The goals of a rule set, looked up by event type (built once per rule set).

    >>> from orchestrator.core.rules import load_rule_set
    >>> rules = load_rule_set({"rules/r.yaml": '''
    ... rules:
    ...   - {id: prompt, description: d, channel: web, action: login_prompt, goal: [login],
    ...      when: {field: event.type, eq: page_view}}
    ... '''})
    >>> GoalIndex.of(rules).rules_for("login")
    (('prompt', frozenset({'login'})),)
    """

    __slots__ = ("_by_type",)

    def __init__(self, goals: Mapping[str, frozenset[str]]) -> None:
        by_type: dict[str, list[tuple[str, frozenset[str]]]] = {}
        for rule_id, types in sorted(goals.items()):
            for kind in types:
                by_type.setdefault(kind, []).append((rule_id, types))
        self._by_type = {kind: tuple(rules) for kind, rules in by_type.items()}

    @classmethod
    def of(cls, rule_set: RuleSet) -> GoalIndex:
        """Every rule of ``rule_set`` that has a goal."""
        return cls({rule.id: rule.goal for rule in rule_set.rules if rule.goal})

    def rules_for(self, kind: str) -> tuple[tuple[str, frozenset[str]], ...]:
        """``(rule id, its goal types)`` of the rules an event of this type is a goal of."""
        return self._by_type.get(kind, ())


def facts_of(event: Event, profile: Profile, actions: Sequence[Mapping[str, Any]],
             held_out: Sequence[Mapping[str, Any]], goals: GoalIndex) -> Sequence[Fact]:
    """What an event applied to ``profile`` (and decided on) counts for.

    ``actions`` and ``held_out`` are the action records decided on it (sent / control group).
    Call it for events that were applied (not for replays or dropped records).
    """
    kind = event_type(event)
    goal_rules = goals.rules_for(kind)
    if not actions and not held_out and not goal_rules and kind != "feedback":
        return _NONE
    facts: list[Fact] = [(a["rule"], a["action"], "sent") for a in actions]
    facts.extend((a["rule"], a["action"], "held_out") for a in held_out)
    if isinstance(event, ActionFeedbackEvent):
        fact = _feedback(event, profile)
        if fact is not None:
            facts.append(fact)
    for rule_id, types in goal_rules:
        fact = _goal(rule_id, types, event.ts, profile)
        if fact is not None:
            facts.append(fact)
    return facts


def _feedback(event: ActionFeedbackEvent, profile: Profile) -> Fact | None:
    # Feedback names a sent action; one that came before its action was recorded (reordered)
    # or names an action no longer among the recent ones is not counted.
    if event.outcome not in FEEDBACK_OUTCOMES:
        return None
    for entry in profile.recent_actions:
        if entry["action_id"] == event.action_id:
            rule = entry.get("rule")
            if rule is None or entry.get("holdout"):
                return None
            return rule, entry["action"], event.outcome
    return None


def _goal(rule_id: str, types: frozenset[str], ts: int, profile: Profile) -> Fact | None:
    decision = None
    for entry in profile.recent_actions:  # sorted by time: the newest before ``ts`` wins
        if entry.get("rule") == rule_id and ts - ATTRIBUTION_WINDOW_MS <= entry["ts"] < ts:
            decision = entry
    if decision is None:
        return None
    since = decision["ts"]
    if any(since < t < ts for t in _times_of(profile, types)):
        return None  # an earlier goal event converted this decision already
    group = "goal_held_out" if decision.get("holdout") else "goal_treated"
    return rule_id, decision["action"], group


def _times_of(profile: Profile, types: frozenset[str]) -> Iterable[int]:
    for kind in types:
        if kind == "page_view":
            yield from (page["ts"] for page in profile.recent_pages)
        else:
            yield from profile.event_times.get(kind, ())
