"""All intents together: one :class:`IntentModel` each, and the per-event step.

Per event, after the event is applied to the profile and its features extracted, the caller
runs :meth:`IntentScorer.step` on the person's ``pending`` dict (kept in the profile):

1. settle: the event's type may be an outcome (positives); snapshots past their horizon at this
   event's time are negatives;
2. learn from what was settled (each label is predicted before it is learned);
3. score every intent that applies to the person;
4. snapshot the features for the intents that apply (bounded, spaced; see :mod:`.labels`).

Scores: an intent that does not apply to the person (``login_propensity`` once logged in) is
**absent** from the result; an intent whose model is not trusted yet maps to **None**.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from orchestrator.core.events import event_type
from orchestrator.core.scoring.features import FEATURE_NAMES, LOGGED_IN, extract_features, pack, unpack
from orchestrator.core.scoring.intents import DEFAULT_INTENTS, IntentSpec
from orchestrator.core.scoring.labels import (
    DEFAULT_BOUND,
    DEFAULT_MIN_GAP_MS,
    Pending,
    SettledLabel,
    _keep,
    settle_expired,
    settle_on_event,
)
from orchestrator.core.scoring.model import CheckpointError, IntentModel


class StepResult(NamedTuple):
    """What one event did: the scores, the labels it settled, and for each of those the
    progressive prediction made just before learning it."""

    scores: dict[str, float | None]
    settled: list[SettledLabel]
    predictions: list[float | None]


class IntentScorer:
    """One model per intent spec; the state a worker keeps (and checkpoints) for scoring."""

    def __init__(self, specs: Sequence[IntentSpec] = DEFAULT_INTENTS, *,
                 min_gap_ms: int = DEFAULT_MIN_GAP_MS, bound: int = DEFAULT_BOUND,
                 classifier_factory: Callable[[], Any] | None = None) -> None:
        """``classifier_factory`` makes a fresh River classifier per intent (default:
        :func:`.model.default_classifier`); ``min_gap_ms`` and ``bound``: the snapshot policy."""
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate intent names in {names}")
        self.specs: tuple[IntentSpec, ...] = tuple(specs)
        self.models: dict[str, IntentModel] = {
            spec.name: IntentModel(spec, classifier_factory() if classifier_factory else None)
            for spec in specs}
        self.min_gap_ms = min_gap_ms
        self.bound = bound
        # (model, only_anonymous) per intent, so the hot path does no attribute lookups on specs.
        self._scoring = tuple((m, m.spec.only_anonymous) for m in self.models.values())

    def score_all(self, features: Sequence[float]) -> dict[str, float | None]:
        """Scores of the intents that apply to the person with this plain feature vector."""
        x = {name: v for name, v in zip(FEATURE_NAMES, features, strict=True) if v}
        anonymous = not features[LOGGED_IN]
        return {model.spec.name: model.score(x)
                for model, only_anonymous in self._scoring if anonymous or not only_anonymous}

    def learn(self, settled: Iterable[SettledLabel]) -> list[float | None]:
        """Learn from settled labels, in order. Returns, per label, the prediction made just
        before learning it (progressive validation), or None for an intent this scorer does not
        have (skipped)."""
        predictions: list[float | None] = []
        for label in settled:
            model = self.models.get(label.intent)
            predictions.append(None if model is None
                               else model.learn(unpack(label.features), label.label))
        return predictions

    def step(self, pending: Pending, event_type: str, event_ts: int, features: Sequence[float], *,
             late: bool = False) -> StepResult:
        """Settle, learn, score and snapshot for one event of one person (mutates ``pending``).

        ``event_type`` is :func:`orchestrator.core.events.event_type` of the event. ``late``:
        the event is older than the newest one already applied to the person; it is scored and
        can settle labels but takes no snapshot, because outcomes already seen after it would
        never label it.
        """
        settled = settle_on_event(pending, self.specs, event_type, event_ts) if pending else []
        if pending:
            settled += settle_expired(pending, self.specs, event_ts)
        predictions = self.learn(settled) if settled else []
        scores = self.score_all(features)
        if not late:
            packed = None
            for spec in self.specs:
                if spec.name not in scores:
                    continue  # does not apply to this person
                snaps = pending.get(spec.name)
                if snaps is not None and (len(snaps) >= self.bound
                                          or event_ts - snaps[-1][0] < self.min_gap_ms):
                    continue  # cheap early exit before packing; _keep checks fully
                if packed is None:
                    packed = pack(features)
                _keep(pending, spec.name, event_ts, None, packed, self.min_gap_ms, self.bound)
        return StepResult(scores, settled, predictions)

    def versions(self) -> dict[str, str]:
        """Model version per intent, for action records."""
        return {name: model.version for name, model in self.models.items()}

    def quality(self) -> dict[str, dict]:
        """Progressive metrics per intent, for metrics export."""
        return {name: model.quality() for name, model in self.models.items()}

    def checkpoint(self) -> dict[str, bytes]:
        """One checkpoint per intent (see :meth:`IntentModel.to_bytes`)."""
        return {name: model.to_bytes() for name, model in self.models.items()}

    def restore(self, checkpoints: Mapping[str, bytes]) -> None:
        """Replace the models of the intents in ``checkpoints``; other intents keep theirs.

        All checkpoints are validated before any model is replaced; a checkpoint for an intent
        this scorer does not have, or of another intent or format, raises CheckpointError.
        """
        restored = {}
        for name, data in checkpoints.items():
            model = self.models.get(name)
            if model is None:
                raise CheckpointError(f"checkpoint for unknown intent {name!r}")
            restored[name] = IntentModel.from_bytes(data, model.spec)
        self.models.update(restored)
        self._scoring = tuple((m, m.spec.only_anonymous) for m in self.models.values())


class PersonScoring:
    """Scores one person's event with an :class:`IntentScorer` (the ``Scoring`` of the journey).

    After the event is applied to the profile: features, then :meth:`IntentScorer.step` on the
    profile's ``pending`` snapshots; the scores are kept in the profile for the context view.
    ``last`` holds the step's result, for the caller's metrics.
    """

    __slots__ = ("last", "scorer")

    def __init__(self, scorer: IntentScorer) -> None:
        self.scorer = scorer
        self.last: StepResult | None = None

    def score(self, profile: Any, event: Any, late: bool) -> dict[str, float | None]:
        vector = extract_features(profile, event, event.ts)
        result = self.scorer.step(profile.pending, event_type(event), event.ts, vector, late=late)
        self.last = result
        if not late:
            profile.scores, profile.scored_ts = result.scores, event.ts
        return result.scores

    def versions(self) -> dict[str, str]:
        return self.scorer.versions()

    def labels(self) -> dict[str, int]:
        """Labels each intent's model has learned from."""
        return {name: model.n_labels for name, model in self.scorer.models.items()}
