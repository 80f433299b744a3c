"""Counts per rule and action, and what a journey owner reads from them: rates and uplift.

:class:`RuleTally` adds up :data:`~.attribution.Fact` tuples; :func:`rule_report` turns the
counts into one entry per rule and action: the counts, the goal conversion rate of the treated
decisions (``goal_treated / sent``) and of the held-out ones (``goal_held_out / held_out``),
the **uplift** (their difference) and its 95 % interval (:func:`.interval.newcombe_interval`).
Uplift is None until both groups have a decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.core.analytics.attribution import OUTCOMES, Fact
from orchestrator.core.analytics.interval import newcombe_interval
from orchestrator.core.rules import RuleSet

_INDEX = {outcome: i for i, outcome in enumerate(OUTCOMES)}


class RuleTally:
    """``(rule, action) -> count per outcome`` (:data:`OUTCOMES`), grown one fact at a time.

    >>> tally = RuleTally()
    >>> tally.add(("prompt", "login_prompt", "sent"))
    >>> tally.counts()[("prompt", "login_prompt")]["sent"]
    1
    """

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], list[int]] = {}

    def add(self, fact: Fact) -> None:
        rule, action, outcome = fact
        row = self._counts.get((rule, action))
        if row is None:
            row = self._counts[(rule, action)] = [0] * len(OUTCOMES)
        row[_INDEX[outcome]] += 1

    def add_all(self, facts: Iterable[Fact]) -> None:
        for fact in facts:
            self.add(fact)

    def counts(self) -> dict[tuple[str, str], dict[str, int]]:
        """A copy: ``(rule, action) -> {outcome: count}``."""
        return {key: dict(zip(OUTCOMES, row, strict=True)) for key, row in self._counts.items()}


def rate(successes: int, trials: int) -> float | None:
    """``successes / trials`` (None without trials)."""
    return successes / trials if trials else None


def uplift(treated: int, sent: int, held_converted: int, held_out: int) -> dict[str, Any]:
    """The two groups' goal conversion rates, their difference and its 95 % interval.

    Counts since a worker started can hold a conversion of a decision made before (a goal
    without its decision): a numerator is capped at its denominator.

    >>> u = uplift(56, 70, 48, 80)
    >>> round(u["uplift"], 2), [round(v, 4) for v in (u["uplift_low"], u["uplift_high"])]
    (0.2, [0.0524, 0.3339])
    """
    treated, held_converted = min(treated, sent), min(held_converted, held_out)
    out: dict[str, Any] = {"treated_rate": rate(treated, sent),
                           "held_out_rate": rate(held_converted, held_out),
                           "uplift": None, "uplift_low": None, "uplift_high": None}
    if sent and held_out:
        low, high = newcombe_interval(treated, sent, held_converted, held_out)
        out.update(uplift=treated / sent - held_converted / held_out, uplift_low=low,
                   uplift_high=high)
    return out


def rule_report(counts: Mapping[tuple[str, str], Mapping[str, int]],
                rule_set: RuleSet) -> list[dict[str, Any]]:
    """One entry per rule and action: every rule of ``rule_set`` (with zeros when nothing was
    counted yet), then those counted under rules no longer in the set (``"live": false``)."""
    entries = []
    known = set()
    for rule in rule_set.rules:
        key = (rule.id, rule.action)
        known.add(key)
        entries.append(_entry(key, counts.get(key, {}), goal=sorted(rule.goal),
                              holdout_percent=rule.holdout_percent, live=True))
    for key in sorted(set(counts) - known):
        entries.append(_entry(key, counts[key], goal=None, holdout_percent=None, live=False))
    return entries


def _entry(key: tuple[str, str], counted: Mapping[str, int], **about: Any) -> dict[str, Any]:
    row = {outcome: int(counted.get(outcome, 0)) for outcome in OUTCOMES}
    return {"rule": key[0], "action": key[1], **about, **row,
            **uplift(row["goal_treated"], row["sent"], row["goal_held_out"], row["held_out"])}
