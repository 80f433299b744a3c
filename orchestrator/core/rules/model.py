"""The rule file format, as pydantic models: what a journey owner may write in ``rules/*.yaml``.

These models validate the shape of every key (types, ranges, enumerations, unknown keys) and
generate ``rules/schema.json`` (:func:`rule_file_json_schema`). Conditions are validated one
node at a time by :mod:`orchestrator.core.rules.conditions`, which dispatches on the node's key
(``all``, ``any``, ``not``, ``field``, ``count``, ``since``, ``score``) to the model below, so
that an error names the exact place (``when.all[1].gte``) instead of every alternative of a
union.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema, field_validator
from pydantic.json_schema import models_json_schema

from orchestrator.core.events import EVENT_TYPES
from orchestrator.core.profile import SENT_LOG_PER_KEY

#: Channels an action can go to; each is the topic ``actions.<channel>`` in the runtime.
CHANNELS = ("app", "contact-centre", "email", "push", "sms", "web")
CONSENT_CATEGORIES = ("service", "marketing")
CAP_SCOPES = ("rule", "action", "action_and_topic")

Channel = Literal["app", "contact-centre", "email", "push", "sms", "web"]
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$",
                              description="unique across all rule files")]
ActionName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Number = Annotated[float, Field(allow_inf_nan=False)]
Scalar = str | int | float | bool
# In the schema a condition node is a reference to the union of the condition models; pydantic
# cannot place a $ref to a definition it does not own, so a marker is swapped for it afterwards.
_CONDITION_MARK = "x-condition"
ConditionNode = Annotated[Any, WithJsonSchema({_CONDITION_MARK: True})]
LookupEntry = Scalar | dict[str, Scalar | None]


class _Strict(BaseModel):
    # Strict: "3" is not a number and 1 is not text; a misspelt key is an error, not ignored.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# ------------------------------------------------------------------ conditions

class AllCondition(_Strict):
    """True when every condition in the list is true."""

    all: list[ConditionNode] = Field(min_length=1)


class AnyCondition(_Strict):
    """True when at least one condition in the list is true."""

    any: list[ConditionNode] = Field(min_length=1)


class NotCondition(_Strict):
    """True when the condition is false."""

    not_: ConditionNode = Field(alias="not")


class FieldCondition(_Strict):
    """A field of the event, the profile or a lookup, compared; a missing field is never equal,
    greater, smaller, in or outside anything (only ``exists: false`` is true for it)."""

    field: str = Field(description="a path such as event.page.category or profile.logged_in")
    eq: Scalar | None = None
    ne: Scalar | None = None
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None
    in_: list[Scalar] | None = Field(None, alias="in", min_length=1)
    not_in: list[Scalar] | None = Field(None, min_length=1)
    exists: bool | None = None
    startswith: str | None = Field(None, min_length=1)


class LookupKeys(_Strict):
    """The keys of a lookup, used as a list of categories."""

    lookup: Name


class CountSpec(_Strict):
    """What to count: events of one type in a time window or in the current session."""

    name: Name | None = Field(None, description="makes the count available as {counts.<name>}")
    event_type: EventType
    category_in: list[str] | LookupKeys | None = Field(
        None, description="page views only: categories to count (a list or {lookup: <name>})")
    category_not_in: list[str] | LookupKeys | None = Field(
        None, description="page views only: categories not to count")
    same_category: bool = Field(False, description="page views only: the event's own category")
    within_s: int | None = Field(None, ge=1, description="the last N seconds of event time")
    session: bool = Field(False, description="the current session")


class CountCondition(_Strict):
    """How many events of a kind the person had, compared."""

    count: CountSpec
    eq: Number | None = Field(None, ge=0)
    gt: Number | None = Field(None, ge=0)
    gte: Number | None = Field(None, ge=0)
    lt: Number | None = Field(None, ge=0)
    lte: Number | None = Field(None, ge=0)


class SinceCondition(_Strict):
    """Seconds (event time) since the person last did an event type, or since we last decided
    an action (``last_action:<action>``); never counts as infinitely long ago."""

    since: str = Field(description="an event type, or last_action:<action>")
    gt_s: Number | None = Field(None, ge=0)
    gte_s: Number | None = Field(None, ge=0)
    lt_s: Number | None = Field(None, ge=0)
    lte_s: Number | None = Field(None, ge=0)


class ScoreCondition(_Strict):
    """An intent model's probability, compared; a missing or untrusted (null) score is false."""

    score: Name
    gt: Number | None = Field(None, ge=0, le=1)
    gte: Number | None = Field(None, ge=0, le=1)
    lt: Number | None = Field(None, ge=0, le=1)
    lte: Number | None = Field(None, ge=0, le=1)
    min_labels: int | None = Field(
        None, ge=0, description="also require the model to have learned from at least this many labels "
                                "(more than the intent's own threshold for trusting it)")


CONDITION_MODELS: dict[str, type[_Strict]] = {
    "all": AllCondition, "any": AnyCondition, "not": NotCondition, "field": FieldCondition,
    "count": CountCondition, "since": SinceCondition, "score": ScoreCondition,
}


# ------------------------------------------------------------------ rules and files

def iso_ms(value: str) -> int:
    """ISO-8601 with a zone -> epoch ms; raises ValueError otherwise."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected an ISO-8601 time such as 2026-12-01T00:00:00Z, got {value!r}")\
            from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no zone; add Z or an offset such as +01:00")
    return int(parsed.timestamp() * 1000)


class Caps(_Strict):
    """How often the rule may speak. Caps and cooldowns run on event time."""

    cooldown_s: int = Field(0, ge=0, description="not again within this many seconds")
    max_per_day: int | None = Field(None, ge=1, le=SENT_LOG_PER_KEY,
                                    description="at most this many in any 24 hours")
    max_per_week: int | None = Field(None, ge=1, le=SENT_LOG_PER_KEY,
                                     description="at most this many in any 7 days")
    stop_after: list[EventType] = Field(
        default_factory=list, description="never again once the person did one of these")
    per: Literal["rule", "action", "action_and_topic"] = Field(
        "action_and_topic",
        description="what the caps count: this rule, the action (whichever rule decided it), "
                    "or the action per topic (page category or contact reason)")


class Rule(_Strict):
    """One rule: when it fires, what it sends where, how much it is worth, how often."""

    id: RuleId
    description: str = Field(min_length=1)
    channel: Channel
    action: ActionName
    when: ConditionNode
    payload: dict[str, JsonValue] = Field(
        default_factory=dict, description="text values may hold templates: {path|filter}")
    value: Number = Field(1.0, ge=0, description="business value of the action")
    priority: int = Field(0, description="breaks ties of the arbitration score")
    weight: Number = Field(1.0, ge=0, description="a journey owner's multiplier")
    propensity: Name | None = Field(
        None, description="the intent whose score multiplies the value; without it, 1")
    consent: Literal["service", "marketing"] = "service"
    caps: Caps = Field(default_factory=Caps)
    valid_from: str | None = Field(None, description="ISO-8601 with a zone")
    valid_until: str | None = Field(None, description="ISO-8601 with a zone (exclusive)")
    holdout_percent: Number = Field(0.0, ge=0, le=100,
                                    description="share of people in this rule's control group")
    goal: list[EventType] = Field(
        default_factory=list,
        description="the events that mean the action worked (its goal conversion and the "
                    "uplift against the holdout); default: caps.stop_after")
    expires_after_s: int = Field(600, ge=1, le=30 * 24 * 3600)
    already_there: str | None = Field(
        None, description="a path to a URL: held back (already_there) when the event's page is it")

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        if value is not None:
            iso_ms(value)
        return value


class RuleFileHeader(_Strict):
    """A rule file with its rules not yet looked at (each is validated on its own)."""

    version: str | None = Field(None, min_length=1, max_length=64,
                                description="the same in every file of the rule set")
    lookups: dict[Name, dict[str, LookupEntry]] = Field(
        default_factory=dict, description="named tables, e.g. service page per category")
    rules: list[Any] = Field(default_factory=list)


class RuleFile(RuleFileHeader):
    """A file of rules, ``rules/*.yaml``."""

    rules: list[Rule] = Field(default_factory=list)


def rule_file_json_schema() -> dict[str, Any]:
    """The JSON Schema of a rule file (``rules/schema.json`` is this, written out)."""
    models: list[type[BaseModel]] = [RuleFile, *CONDITION_MODELS.values()]
    _, top = models_json_schema([(m, "validation") for m in models],
                                ref_template="#/$defs/{model}")
    defs = dict(top["$defs"])
    root = defs.pop("RuleFile")
    defs["Condition"] = {
        "description": "exactly one of all, any, not, field, count, since, score",
        "anyOf": [{"$ref": f"#/$defs/{m.__name__}"} for m in CONDITION_MODELS.values()],
    }
    return _with_condition_refs({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                 **root, "title": "Rule file (rules/*.yaml)",
                                 "$defs": dict(sorted(defs.items()))})


def _with_condition_refs(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get(_CONDITION_MARK):
            return {"$ref": "#/$defs/Condition",
                    **{k: v for k, v in node.items() if k != _CONDITION_MARK}}
        return {k: _with_condition_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_with_condition_refs(v) for v in node]
    return node
