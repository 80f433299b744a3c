"""Next-best-action arbitration: which rules fire for an event, and which one wins per channel.

For one event (already applied to the profile), :func:`decide`

1. takes the rules that can fire on the event's type and are valid at ``now_ms``
   (``valid_from <= now < valid_until``);
2. keeps those whose ``when`` holds, whose ``propensity`` score (if any) is known, and whose
   payload renders (a missing template value: the rule does not fire);
3. holds back, with a cause, those that may not speak now: ``stopped`` (the person did a
   ``stop_after`` event), ``consent``, ``already_there``, ``cooldown``, ``cap`` (per day or week);
4. per channel, picks the candidate with the highest score ``value x propensity x weight``
   (propensity 1 without a ``propensity`` intent); ties go to the higher ``priority``, then to a
   rule before a journey's send step, then to the lower rule id. A candidate scoring 0 is not
   sent. The others are ``lost``;
5. if the winner's rule puts this person in its control group (``holdout_percent``), the
   decision is ``held_out``: recorded, not sent, and nothing else goes to that channel.

Everything is decided on the arguments alone: the same inputs give the same arbitration,
whatever the order of the rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator.core.events import ClickstreamEvent, ContactCentreEvent, Event, event_type
from orchestrator.core.profile import Profile, queries
from orchestrator.core.rules.paths import MISSING, RuleInputs, url_path
from orchestrator.core.rules.ruleset import Rule, RuleSet
from orchestrator.core.scoring.model import servable_score

DAY_MS = 24 * 3600 * 1000
WEEK_MS = 7 * DAY_MS
#: Why a decision was not sent, in the order they are checked (metric label values).
CAUSES = ("stopped", "consent", "already_there", "cooldown", "cap", "lost", "holdout")


@dataclass(frozen=True, slots=True)
class Decision:
    """An action the core wants sent, before it becomes an action record."""

    action: str
    channel: str
    rule: str
    payload: dict[str, Any]
    cap_key: str
    expires_after_ms: int
    consent_category: str = "service"
    score: float = 1.0
    holdout: bool = False


@dataclass(frozen=True, slots=True)
class Suppressed:
    """An action that fitted but was held back; ``cause`` is one of :data:`CAUSES`."""

    action: str
    cause: str
    rule: str = ""
    channel: str = ""


@dataclass(frozen=True, slots=True)
class Arbitration:
    """The outcome for one event: at most one chosen decision per channel."""

    chosen: list[Decision] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    held_out: list[Decision] = field(default_factory=list)


def in_holdout(person_id: str, rule_id: str, percent: float) -> bool:
    """Whether the person is in the rule's control group: a stable hash, 1/10,000 steps.

    >>> in_holdout("v-1", "r", 0), in_holdout("v-1", "r", 100)
    (False, True)
    >>> in_holdout("v-1", "r", 50) == in_holdout("v-1", "r", 50)
    True
    """
    if percent <= 0:
        return False
    if percent >= 100:
        return True
    digest = hashlib.sha256(f"{person_id}\x1f{rule_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < percent * 100


def topic_of(event: Event) -> str:
    """What ``per: action_and_topic`` caps count by: the page category or the contact reason."""
    if isinstance(event, ClickstreamEvent):
        return (event.page.category or "") if event.page is not None else ""
    if isinstance(event, ContactCentreEvent):
        return event.reason or ""
    return ""


def cap_key(rule: Rule, event: Event) -> str:
    """The profile key under which the rule's sends are counted for cooldowns and caps."""
    if rule.cap_per == "rule":
        return f"rule:{rule.id}"
    if rule.cap_per == "action":
        return rule.action
    return f"{rule.action}:{topic_of(event)}"


def _same_page(url: str, ctx: RuleInputs) -> bool:
    page = getattr(ctx.event, "page", None)
    if page is None:
        return False
    here, there = url_path(page.url), url_path(url)
    return here is not None and there is not None and here.rstrip("/") == there.rstrip("/")


def _held_back(rule: Rule, ctx: RuleInputs, key: str) -> str | None:
    profile: Profile = ctx.profile
    if rule.stop_after and any(queries.has_done(profile, t) for t in rule.stop_after):
        return "stopped"
    if not queries.consents_to(profile, rule.consent):
        return "consent"
    if rule.already_there is not None:
        url = rule.already_there(ctx)
        if isinstance(url, str) and _same_page(url, ctx):
            return "already_there"
    now = ctx.event.ts
    if rule.cooldown_ms:
        last = queries.last_sent_ts(profile, key)
        if last is not None and now - last < rule.cooldown_ms:
            return "cooldown"
    if rule.max_per_day or rule.max_per_week:
        sent = queries.sends_of(profile, key)
        if rule.max_per_day and sum(1 for t in sent if now - t < DAY_MS) >= rule.max_per_day:
            return "cap"
        if rule.max_per_week and sum(1 for t in sent if now - t < WEEK_MS) >= rule.max_per_week:
            return "cap"
    return None


def _propensity(rule: Rule, scores: Mapping[str, float | None]) -> float | None:
    if rule.propensity is None:
        return 1.0
    # None: no trustworthy score yet, so the rule cannot be weighed and does not fire.
    return servable_score(scores.get(rule.propensity))



#: A journey's send step decides as the rule ``journey.<journey>.<step>`` (core/journeys).
JOURNEY_RULE_PREFIX = "journey."


def _rank(candidate: tuple[Decision, Rule]) -> tuple[float, int, bool, str]:
    """Best first: the higher score, then the higher priority, then a rule before a journey's
    step (a rule carries the holdout and the analytics its owner reads; the journey goes on
    whether or not its send won), then the lower id."""
    decision, rule = candidate
    return (-decision.score, -rule.priority, rule.id.startswith(JOURNEY_RULE_PREFIX), rule.id)

def decide(rule_set: RuleSet, event: Event, profile: Profile,
           scores: Mapping[str, float | None], now_ms: int,
           score_labels: Mapping[str, int] | None = None, *,
           extra_rules: tuple[Rule, ...] = (), inputs: RuleInputs | None = None) -> Arbitration:
    """Arbitrate the rules of ``rule_set`` for ``event``; call after ``apply_event``.

    ``scores`` maps intent names to probabilities, None for a model not trusted yet;
    ``score_labels`` how many labels each model has learned from; ``now_ms`` is the decision time
    that validity windows are judged at. Cooldowns, caps, counts and "since" run on the event's
    own time. ``extra_rules`` (journeys' send steps) compete with the rule set's for the event;
    ``inputs``, when given, are this event's decision inputs already built (with ``rule_set``'s
    lookups), so that what one reader computed (counts) is not computed again.
    """
    type_ = event_type(event)
    ctx = inputs if inputs is not None else RuleInputs(
        event=event, profile=profile, scores=scores, lookups=rule_set.lookups, type=type_,
        score_labels=score_labels or {})
    page = getattr(event, "page", None)
    category = page.category if page is not None else None
    candidates: dict[str, list[tuple[Decision, Rule]]] = {}
    suppressed: list[Suppressed] = []
    rules = rule_set.rules_for(type_, category)
    for rule in (rules + extra_rules) if extra_rules else rules:
        if not rule.valid_at(now_ms) or not rule.condition(ctx):
            continue
        propensity = _propensity(rule, scores)
        if propensity is None:
            continue
        score = rule.value * propensity * rule.weight
        if score <= 0:
            continue
        payload = rule.render_payload(ctx)
        if payload is MISSING:
            continue
        key = cap_key(rule, event)
        cause = _held_back(rule, ctx, key)
        if cause is not None:
            suppressed.append(Suppressed(rule.action, cause, rule.id, rule.channel))
            continue
        decision = Decision(action=rule.action, channel=rule.channel, rule=rule.id,
                            payload=payload, cap_key=key, expires_after_ms=rule.expires_after_ms,
                            consent_category=rule.consent, score=score)
        candidates.setdefault(rule.channel, []).append((decision, rule))

    chosen: list[Decision] = []
    held_out: list[Decision] = []
    for channel in sorted(candidates):
        ranked = sorted(candidates[channel], key=_rank)
        winner, rule = ranked[0]
        for loser, _ in ranked[1:]:
            suppressed.append(Suppressed(loser.action, "lost", loser.rule, channel))
        if rule.holdout_percent and in_holdout(profile.person_id, rule.id, rule.holdout_percent):
            held_out.append(replace(winner, holdout=True))
            suppressed.append(Suppressed(winner.action, "holdout", winner.rule, channel))
        else:
            chosen.append(winner)
    suppressed.sort(key=lambda s: (s.channel, s.rule, s.cause))
    return Arbitration(chosen=chosen, suppressed=suppressed, held_out=held_out)
