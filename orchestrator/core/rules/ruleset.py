"""A loaded rule set: compiled rules, the documents they came from, and its version."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.events import EVENT_TYPES
from orchestrator.core.rules.paths import Getter, RuleInputs

_REMEMBERED_PAIRS = 4096


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    """One compiled rule. Built only by the loader; read by :func:`decide`."""

    id: str
    file: str
    description: str
    channel: str
    action: str
    value: float
    priority: int
    weight: float
    propensity: str | None
    consent: str
    cooldown_ms: int
    max_per_day: int | None
    max_per_week: int | None
    stop_after: frozenset[str]
    cap_per: str  # rule | action | action_and_topic
    valid_from_ms: int | None
    valid_until_ms: int | None
    holdout_percent: float
    expires_after_ms: int
    #: The event types the rule can fire on; None: any.
    event_types: frozenset[str] | None
    #: The page categories the rule can fire on; None: any (and events without a page).
    categories: frozenset[str] | None
    condition: Callable[[RuleInputs], bool] = field(repr=False)
    render_payload: Callable[[RuleInputs], Any] = field(repr=False)
    already_there: Getter | None = field(repr=False)
    #: The event types that count as the action's goal (analytics); empty: none.
    goal: frozenset[str] = frozenset()

    def valid_at(self, now_ms: int) -> bool:
        return ((self.valid_from_ms is None or now_ms >= self.valid_from_ms)
                and (self.valid_until_ms is None or now_ms < self.valid_until_ms))


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules as data: immutable, so the shell can swap a new set in between two events.

    ``version`` is the ``version:`` every file states, or ``sha256:<12 hex>`` of the documents
    when none does. ``documents`` maps each file name to its original YAML text (what the shell
    publishes and serves).
    """

    version: str
    rules: tuple[Rule, ...]
    documents: Mapping[str, str]
    lookups: Mapping[str, Mapping[str, Any]]
    _by_type: Mapping[str, tuple[Rule, ...]] = field(init=False, repr=False, compare=False)
    _by_type_and_category: dict[tuple[str, str | None], tuple[Rule, ...]] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_type = {t: tuple(r for r in self.rules if r.event_types is None or t in r.event_types)
                   for t in EVENT_TYPES}
        object.__setattr__(self, "_by_type", by_type)
        object.__setattr__(self, "_by_type_and_category", {})

    def rules_for(self, event_type: str, category: str | None = None) -> tuple[Rule, ...]:
        """The rules that can fire on an event of this type and page category, in rule-set order.

        Rules that name no event type or category are always included. The answer for a
        (type, category) pair is remembered (for at most 4,096 pairs: categories come from
        input).
        """
        key = (event_type, category)
        known = self._by_type_and_category.get(key)
        if known is not None:
            return known
        rules = tuple(r for r in self._by_type.get(event_type, ())
                      if r.categories is None or (category is not None and category in r.categories))
        if len(self._by_type_and_category) < _REMEMBERED_PAIRS:
            self._by_type_and_category[key] = rules
        return rules

    def describe(self) -> list[dict[str, Any]]:
        """One line per rule, for an HTTP view or a command line."""
        return [{"id": r.id, "channel": r.channel, "action": r.action, "file": r.file,
                 "description": r.description, "holdout_percent": r.holdout_percent,
                 "goal": sorted(r.goal)} for r in self.rules]
