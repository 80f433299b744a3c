"""The journey file format, as pydantic models: what a journey owner may write in
``rules/journeys/*.yaml``.

The models check the shape of every key (types, ranges, enumerations, unknown keys); conditions
inside a journey (``entry.when``, ``goal``, ``exit_when``, ``wait_for.when``, ``branch.when``)
are checked and compiled by :mod:`orchestrator.core.rules.conditions`, the same language as
rules, and a send step's action by the same models as a rule's (channel, action, payload
templates, value, consent, caps).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic.json_schema import models_json_schema

from orchestrator.core.rules.model import (
    _CONDITION_MARK,
    ActionName,
    Caps,
    Channel,
    ConditionNode,
    EventType,
    Number,
)

#: The target that leaves the journey.
EXIT = "exit"
#: The longest wait a journey may hold a person for: 90 days of event time.
MAX_WAIT_S = 90 * 24 * 3600
#: The kinds of step, one key each.
STEP_KINDS = ("send", "wait_s", "wait_for", "branch", "split")

JourneyId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
                                 description="unique across all journey files")]
StepId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$",
                              description="unique within the journey")]
#: A later step's id, or ``exit``.
Target = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$",
                              description="a later step's id, or exit")]
WaitSeconds = Annotated[int, Field(ge=1, le=MAX_WAIT_S)]


class _Strict(BaseModel):
    # As rule files: "3" is not a number and a misspelt key is an error, not ignored.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)


class EntrySpec(_Strict):
    """Who enters: on an event of these types, and/or when the condition holds."""

    # Not "on": YAML 1.1 reads a bare on as true.
    event: list[EventType] | None = Field(None, min_length=1, description="event types that can enter")
    when: ConditionNode | None = Field(None, description="a condition, as in rules (scores too)")

    @model_validator(mode="after")
    def _something(self) -> EntrySpec:
        if self.event is None and self.when is None:
            raise ValueError("say who enters: event: [event types] and/or when: <condition>")
        return self


class SendSpec(_Strict):
    """An action request: it goes through the same arbitration, consent and caps as a rule's."""

    channel: Channel
    action: ActionName
    payload: dict[str, JsonValue] = Field(
        default_factory=dict, description="text values may hold templates: {path|filter}")
    value: Number = Field(1.0, ge=0, description="business value of the action")
    priority: int = Field(0, description="breaks ties of the arbitration score")
    consent: Literal["service", "marketing"] = "service"
    caps: Caps = Field(default_factory=Caps)
    expires_after_s: int = Field(600, ge=1, le=30 * 24 * 3600)


class WaitForSpec(_Strict):
    """Wait until one of these events (that meets ``when``) or the timeout, whichever is first."""

    event: list[EventType] = Field(min_length=1, description="event types that end the wait")
    when: ConditionNode | None = None
    timeout_s: WaitSeconds
    then: Target | None = Field(None, description="where the event leads; default: the next step")
    on_timeout: Target = Field(description="where the timeout leads (a later step or exit)")


class BranchSpec(_Strict):
    """Go one way when the condition (or score) holds, the other way when not."""

    when: ConditionNode
    then: Target | None = Field(None, description="default: the next step")
    else_: Target = Field(alias="else")


class SplitSpec(_Strict):
    """A random split with a deterministic holdout: a stable hash of (person, journey)."""

    holdout_percent: Number = Field(ge=0, le=100)
    holdout: Target = Field(EXIT, description="where the holdout group goes; default: exit")


class StepSpec(_Strict):
    """One step: exactly one of send, wait_s, wait_for, branch, split."""

    id: StepId
    description: str | None = None
    send: SendSpec | None = None
    wait_s: WaitSeconds | None = Field(None, description="wait this many seconds of event time")
    wait_for: WaitForSpec | None = None
    branch: BranchSpec | None = None
    split: SplitSpec | None = None
    next: Target | None = Field(None, description="after send or wait_s; default: the next step")

    @model_validator(mode="after")
    def _one_kind(self) -> StepSpec:
        kinds = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a step is exactly one of {', '.join(STEP_KINDS)}; "
                             f"got {', '.join(kinds) or 'none'}")
        if self.next is not None and kinds[0] not in ("send", "wait_s"):
            raise ValueError(f"next: is for send and wait_s steps; a {kinds[0]} step names its "
                             f"own targets")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)


class JourneySpec(_Strict):
    """One journey: who enters, the steps, when it converts or ends, how often."""

    id: JourneyId
    description: str = Field(min_length=1)
    entry: EntrySpec
    steps: list[StepSpec] = Field(min_length=1, max_length=32)
    goal: ConditionNode | None = Field(
        None, description="converted: the person leaves the journey, counted as converted")
    exit_when: ConditionNode | None = Field(None, description="the person leaves the journey")
    reentry: Literal["never", "after_exit"] = Field(
        "after_exit", description="never: once per person; after_exit: again after leaving")
    reentry_after_s: int = Field(0, ge=0, le=365 * 24 * 3600,
                                 description="at least this long after leaving (event time)")
    max_entries: int = Field(3, ge=1, le=1000, description="entries per person, ever")


class JourneyFileHeader(_Strict):
    """A journey file with its journeys not yet looked at (each is validated on its own)."""

    version: str | None = Field(None, min_length=1, max_length=64,
                                description="the same in every journey file")
    journeys: list[Any] = Field(default_factory=list)


class JourneyFile(JourneyFileHeader):
    """A file of journeys, ``rules/journeys/*.yaml``."""

    journeys: list[JourneySpec] = Field(default_factory=list)


def journey_file_json_schema() -> dict[str, Any]:
    """The JSON Schema of a journey file; conditions are those of ``rules/schema.json``."""
    _, top = models_json_schema([(JourneyFile, "validation")], ref_template="#/$defs/{model}")
    defs = dict(top["$defs"])
    root = defs.pop("JourneyFile")
    return _condition_refs({"$schema": "https://json-schema.org/draft/2020-12/schema", **root,
                            "title": "Journey file (rules/journeys/*.yaml)",
                            "$defs": dict(sorted(defs.items()))})


def _condition_refs(node: Any) -> Any:
    """Condition nodes point at the rule schema's definition (one condition language)."""
    if isinstance(node, dict):
        if node.get(_CONDITION_MARK):
            return {"$ref": "../schema.json#/$defs/Condition",
                    **{k: v for k, v in node.items() if k != _CONDITION_MARK}}
        return {k: _condition_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_condition_refs(v) for v in node]
    return node
