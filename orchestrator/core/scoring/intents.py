"""What the engine predicts: one :class:`IntentSpec` per intent, and the shipped defaults.

An intent is "will this person do one of ``outcome_event_types`` within ``horizon_s`` of now?".
The outcome types are event types as :func:`orchestrator.core.events.event_type` names them, so
an outcome can come from the clickstream (``login``, ``purchase``) or from the contact centre
(``contact_started``, ``cancellation_requested``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.core.events import EVENT_TYPES

#: Longest horizon we accept: pending snapshots live in the person's profile until settled.
MAX_HORIZON_S = 90 * 24 * 3600
#: The models an intent can use: River logistic regression with one of these optimisers.
#: Only models whose whole state can be written as plain data are offered (checkpoints are
#: JSON, never pickle); see orchestrator.core.scoring.model.
MODEL_NAMES: tuple[str, ...] = ("logreg-adam", "logreg-adagrad", "logreg-sgd")


class IntentSpecError(ValueError):
    """An intent definition is not usable; the message names the entry and the field."""


class IntentSpec(BaseModel):
    """One intent to score and learn.

    ``only_anonymous``: scored, snapshotted and learned only while the person is not logged in
    (a login prompt makes no sense for someone already logged in). The model's score is
    withheld (``None``) until it is trusted: it has learned from ``min_labels`` settled labels,
    of which at least ``min_positives`` positive and ``min_negatives`` negative, and its ROC AUC
    over its recent labels (predicted before learning each) is at least ``min_recent_auc``.
    ``min_labels = 0`` turns trust off: every score is served (tests, demos).
    ``model``: one of :data:`MODEL_NAMES`. ``sample_rate`` and ``max_pending``: which moments
    become labels -- a share of the person's events (the same events for every intent with the
    same rate), at most ``max_pending`` pending per person, each label ``weighted`` by how many
    of the person's moments it stands for (see :mod:`.labels`). ``learn_positive_at``: a positive
    label is learned when its horizon ends, like a negative (``"horizon"``: neither class is
    learned sooner than the other), or at its outcome (``"outcome"``: sooner, which measured
    better for a partition that sees few outcomes per horizon; docs/intent-scoring.md).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
    outcome_event_types: Annotated[tuple[str, ...], Field(min_length=1)]
    horizon_s: Annotated[int, Field(gt=0, le=MAX_HORIZON_S)]
    only_anonymous: bool = False
    min_labels: Annotated[int, Field(ge=0)] = 200
    min_positives: Annotated[int, Field(ge=0)] = 30
    min_negatives: Annotated[int, Field(ge=0)] = 100
    min_recent_auc: Annotated[float, Field(ge=0.0, le=1.0)] = 0.55
    model: str = "logreg-adagrad"
    sample_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    max_pending: Annotated[int, Field(ge=1, le=64)] = 6
    weighted: bool = True
    learn_positive_at: Literal["horizon", "outcome"] = "horizon"

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODEL_NAMES:
            raise ValueError(f"unknown model {value!r}; known: {', '.join(MODEL_NAMES)}")
        return value

    @field_validator("outcome_event_types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in value if t not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event type(s) {unknown}; known: {', '.join(EVENT_TYPES)}")
        return value

    @property
    def horizon_ms(self) -> int:
        return self.horizon_s * 1000


#: The label sample and model of each: chosen by benchmarks/intent_scoring.py (see
#: docs/intent-scoring.md, "Choosing the model and the sample").
DEFAULT_INTENTS: tuple[IntentSpec, ...] = (
    IntentSpec(name="login_propensity", outcome_event_types=("login", "signup"),
               horizon_s=30 * 60, only_anonymous=True, sample_rate=0.25, max_pending=6),
    IntentSpec(name="purchase_intent", outcome_event_types=("purchase", "signup"),
               horizon_s=24 * 3600, sample_rate=0.25, max_pending=6),
    IntentSpec(name="contact_need", outcome_event_types=("contact_started", "callback_requested"),
               horizon_s=24 * 3600, sample_rate=0.25, max_pending=6),
    IntentSpec(name="churn_risk", outcome_event_types=("cancellation_requested",),
               horizon_s=14 * 24 * 3600, sample_rate=0.5, max_pending=6),
)


def load_intents(data: Iterable[dict[str, Any]]) -> tuple[IntentSpec, ...]:
    """Validate intent definitions (e.g. from a config file) in the order given.

    Raises :class:`IntentSpecError` naming the entry (index and name) and the field for an
    unknown field, a wrong type, a bad horizon or an unknown outcome type, and for a duplicate
    name. Lists are accepted for ``outcome_event_types`` (YAML and JSON have no tuples).

    >>> [s.name for s in load_intents([{"name": "x", "outcome_event_types": ["login"],
    ...                                  "horizon_s": 60}])]
    ['x']
    >>> try:
    ...     load_intents([{"name": "x", "outcome_event_types": ["login"], "horizon_s": 0}])
    ... except IntentSpecError as exc:
    ...     print(exc)
    intent #0 'x': horizon_s: Input should be greater than 0
    """
    specs: list[IntentSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(data):
        label = f"intent #{i}" + (f" {entry.get('name')!r}" if isinstance(entry, dict) else "")
        if not isinstance(entry, dict):
            raise IntentSpecError(f"{label}: must be a mapping, not {type(entry).__name__}")
        entry = dict(entry)
        if isinstance(entry.get("outcome_event_types"), list):
            entry["outcome_event_types"] = tuple(entry["outcome_event_types"])
        try:
            spec = IntentSpec.model_validate(entry)
        except ValidationError as exc:
            raise IntentSpecError(f"{label}: {_describe(exc)}") from None
        if spec.name in seen:
            raise IntentSpecError(f"{label}: duplicate intent name {spec.name!r}")
        seen.add(spec.name)
        specs.append(spec)
    return tuple(specs)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "entry"
        if error["type"] == "extra_forbidden":
            parts.append(f"{where}: unknown field")
        elif error["type"] == "missing":
            parts.append(f"{where}: required field is missing")
        else:
            parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
