"""All intents together: one :class:`IntentModel` each, and the per-event step.

Per event, after the event is applied to the profile and its features extracted, the caller
runs :meth:`IntentScorer.step` on the person's ``pending`` dict (kept in the profile):

1. settle: the event's type may be an outcome (positives); moments past their horizon at this
   event's time are negatives. Settled labels join the scorer's learning queue;
2. learn: at most ``learn_budget`` labels from the queue, oldest first (each label is predicted
   before it is learned). An outcome can settle a person's whole sample at once; the queue
   spreads that learning over the next events, so that no event pays for many labels;
3. score every intent that applies to the person (:func:`.labels.applies`), each through
   :func:`.model.trusted_score`;
4. offer this moment, with the vector just scored, to the person's label sample
   (:func:`.labels.snapshot`).

Scores: an intent that does not apply to the person (``login_propensity`` once logged in) is
**absent** from the result; an intent whose model is not trusted maps to **None**.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from orchestrator.core.events import event_type
from orchestrator.core.profile import note_scores
from orchestrator.core.scoring.features import as_dict, extract_features, unpack
from orchestrator.core.scoring.intents import DEFAULT_INTENTS, IntentSpec
from orchestrator.core.scoring.labels import (
    Pending,
    SettledLabel,
    applies,
    priority,
    settle_expired,
    settle_on_event,
    snapshot,
)
from orchestrator.core.scoring.model import CheckpointError, IntentModel, trusted_score

#: Labels learned per event at most (the rest wait in the queue for the next events).
DEFAULT_LEARN_BUDGET = 1
#: Labels waiting at most; beyond it a step learns as many as it takes to come back under.
DEFAULT_QUEUE_BOUND = 256


class StepResult(NamedTuple):
    """What one event did: the scores, the labels it settled, the labels learned during it
    (from the queue: these or earlier ones) and, for each of those, the progressive prediction
    made just before learning it."""

    scores: dict[str, float | None]
    settled: list[SettledLabel]
    predictions: list[float | None]
    learned: list[SettledLabel]


class IntentScorer:
    """One model per intent spec; the state a worker keeps (and checkpoints) for scoring."""

    def __init__(self, specs: Sequence[IntentSpec] = DEFAULT_INTENTS, *,
                 learn_budget: int = DEFAULT_LEARN_BUDGET, queue_bound: int = DEFAULT_QUEUE_BOUND,
                 classifier_factory: Callable[[], Any] | None = None) -> None:
        """``classifier_factory`` makes a fresh River classifier per intent instead of the
        spec's model kind (benchmarks; such models cannot be checkpointed); ``learn_budget``
        and ``queue_bound``: the learning queue. The label sample is set per intent
        (``IntentSpec.sample_rate``, ``max_pending``)."""
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate intent names in {names}")
        if learn_budget < 1:
            raise ValueError("learn_budget must be at least 1")
        self.specs: tuple[IntentSpec, ...] = tuple(specs)
        self.models: dict[str, IntentModel] = {
            spec.name: IntentModel(spec, classifier_factory() if classifier_factory else None)
            for spec in specs}
        self.learn_budget = learn_budget
        self.queue_bound = queue_bound
        #: Settled labels not learned yet, oldest first.
        self.queue: deque[SettledLabel] = deque()
        self._scoring = self._order()
        self._max_rate = max((spec.sample_rate for spec in self.specs), default=0.0)
        self._outcome_types = frozenset(t for spec in self.specs for t in spec.outcome_event_types)

    def _order(self) -> tuple[tuple[IntentSpec, IntentModel], ...]:
        return tuple((spec, self.models[spec.name]) for spec in self.specs)

    def score_all(self, features: Sequence[float]) -> dict[str, float | None]:
        """Scores of the intents that apply to the person with this feature vector."""
        x = as_dict(features)  # once for every intent
        return {spec.name: trusted_score(model, x)
                for spec, model in self._scoring if applies(spec, features)}

    def learn(self, settled: Iterable[SettledLabel]) -> list[float | None]:
        """Learn from settled labels now, in order. Returns, per label, the prediction made
        just before learning it (progressive validation), or None for an intent this scorer
        does not have (skipped)."""
        predictions: list[float | None] = []
        for label in settled:
            model = self.models.get(label.intent)
            predictions.append(None if model is None
                               else model.learn(unpack(label.features), label.label, label.weight))
        return predictions

    def learn_queued(self, budget: int | None = None) -> tuple[list[SettledLabel], list[float | None]]:
        """Learn up to ``budget`` queued labels (all of them with None), oldest first."""
        queue = self.queue
        n = len(queue) if budget is None else min(budget, len(queue))
        learned = [queue.popleft() for _ in range(n)]
        return learned, self.learn(learned) if learned else []

    def step(self, pending: Pending, event_type: str, event_ts: int, features: Sequence[float], *,
             late: bool = False) -> StepResult:
        """Settle, learn, score and offer a snapshot for one event of one person (mutates
        ``pending``).

        ``event_type`` is :func:`orchestrator.core.events.event_type` of the event; ``features``
        its vector (:func:`.features.extract_features`). ``late``: the event is older than the
        newest one already applied to the person; it is scored and can settle labels but takes
        no snapshot, because outcomes already seen after it would never label it.
        """
        settled: list[SettledLabel] = []
        if pending:
            if event_type in self._outcome_types:
                settled = settle_on_event(pending, self.specs, event_type, event_ts)
            settled += settle_expired(pending, self.specs, event_ts)
        queue = self.queue
        if settled:
            queue.extend(settled)
        learned: list[SettledLabel] = []
        predictions: list[float | None] = []
        if queue:
            budget = max(self.learn_budget, len(queue) - self.queue_bound)
            learned, predictions = self.learn_queued(budget)
        scores = self.score_all(features)
        if not late and scores and priority(event_ts) < self._max_rate:
            snapshot(pending, self.specs, event_ts, features)
        return StepResult(scores, settled, predictions, learned)

    def versions(self) -> dict[str, str]:
        """Model version per intent, for action records."""
        return {name: model.version for name, model in self.models.items()}

    def quality(self) -> dict[str, dict]:
        """Progressive metrics per intent, for metrics export."""
        return {name: model.quality() for name, model in self.models.items()}

    def checkpoint(self) -> dict[str, bytes]:
        """One checkpoint per intent (see :meth:`IntentModel.to_bytes`). The queue is learned
        first, so that a checkpoint holds every label settled so far."""
        if self.queue:
            self.learn_queued()
        return {name: model.to_bytes() for name, model in self.models.items()}

    def restore(self, checkpoints: Mapping[str, bytes]) -> None:
        """Replace the models of the intents in ``checkpoints``; other intents keep theirs.

        All checkpoints are validated before any model is replaced; a checkpoint for an intent
        this scorer does not have, or of another intent, format or model kind, raises
        CheckpointError.
        """
        restored = {}
        for name, data in checkpoints.items():
            model = self.models.get(name)
            if model is None:
                raise CheckpointError(f"checkpoint for unknown intent {name!r}")
            restored[name] = IntentModel.from_bytes(data, model.spec)
        self.models.update(restored)
        self._scoring = self._order()


class ProfileScorer:
    """Scores one person's event with an :class:`IntentScorer`: the journey's ``EventScorer``.

    After the event is applied to the profile: features, then :meth:`IntentScorer.step` on the
    profile's ``pending`` snapshots; the scores are kept in the profile for the context view.
    """

    __slots__ = ("intent_scorer",)

    def __init__(self, scorer: IntentScorer) -> None:
        self.intent_scorer = scorer

    def score(self, profile: Any, event: Any, late: bool) -> StepResult:
        """The step's result: scores, labels settled, labels learned and their predictions."""
        vector = extract_features(profile, event, event.ts)
        result = self.intent_scorer.step(profile.pending, event_type(event), event.ts, vector, late=late)
        if not late:
            note_scores(profile, result.scores, event.ts)  # newest by event time, whatever the order
        return result

    def versions(self) -> dict[str, str]:
        """Model version per intent, for action records."""
        return self.intent_scorer.versions()

    def labels(self) -> dict[str, int]:
        """Labels each intent's model has learned from."""
        return {name: model.n_labels for name, model in self.intent_scorer.models.items()}
