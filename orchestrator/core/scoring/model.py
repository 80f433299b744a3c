"""One online model per intent, with progressive validation and checkpoints.

:meth:`IntentModel.learn` first predicts the label it is given with the model as it is and
updates the running metrics, then learns from it: every label is scored by a model that has
not seen it (progressive validation), so :meth:`quality` is an honest estimate of live quality
without a held-out set.

A model is not trusted until it has learned from ``spec.min_labels`` labels, at least half of
them negative: until then :meth:`score` returns ``None`` (never a silent 0.5), and rules that
need the score do not fire. The negatives condition matters because labels are delayed
unevenly: a positive settles as soon as its outcome happens, a negative only when the horizon
has passed, so for the first horizon after a start from zero (14 days for churn) a model has
seen almost only positives and would score everyone high.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

from river import linear_model, metrics, optim

from orchestrator.core.scoring.features import FEATURES_VERSION
from orchestrator.core.scoring.intents import IntentSpec

#: Bumped whenever the checkpoint layout changes; a checkpoint of another format is rejected.
CHECKPOINT_FORMAT = 1

# Chosen in benchmarks/intent_scoring.py --compare (see docs/intent-scoring.md): Adam's
# per-feature step sizes suit the many rare (mostly zero) features better than one SGD rate,
# for about 3 µs more per learned label; no scaler, the features are already in [0, 1].
LEARNING_RATE = 0.01


class CheckpointError(ValueError):
    """A checkpoint cannot be restored into this model (format, intent or features differ)."""


def default_classifier() -> Any:
    """The River classifier each intent starts from."""
    return linear_model.LogisticRegression(optimizer=optim.Adam(LEARNING_RATE))


class IntentModel:
    """A River binary classifier for one intent plus its progressive metrics."""

    __slots__ = ("_auc", "_logloss", "classifier", "n_labels", "n_positives", "spec")

    def __init__(self, spec: IntentSpec, classifier: Any | None = None) -> None:
        self.spec = spec
        self.classifier = classifier if classifier is not None else default_classifier()
        self.n_labels = 0
        self.n_positives = 0
        self._auc = metrics.ROCAUC()
        self._logloss = metrics.LogLoss()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def trusted(self) -> bool:
        """At least ``min_labels`` labels learned, at least half of them negative."""
        return (self.n_labels >= self.spec.min_labels
                and 2 * (self.n_labels - self.n_positives) >= self.spec.min_labels)

    @property
    def version(self) -> str:
        """``<intent>.v<labels learned>``: changes with every label, equal after a restore."""
        return f"{self.spec.name}.v{self.n_labels}"

    def predict(self, features: dict[str, float]) -> float:
        """The model's probability as it is, trusted or not (for evaluation)."""
        return self.classifier.predict_proba_one(features).get(True, 0.0)

    def score(self, features: dict[str, float]) -> float | None:
        """The probability of the outcome within the horizon, or None while not trusted."""
        if not self.trusted:
            return None
        return self.classifier.predict_proba_one(features).get(True, 0.0)

    def learn(self, features: dict[str, float], label: bool) -> float:
        """Predict ``label`` with the model as it is, update the metrics, then learn from it.

        Returns the prediction made before learning (the progressive-validation prediction).
        """
        p = self.classifier.predict_proba_one(features).get(True, 0.0)
        self._auc.update(label, p)
        self._logloss.update(label, p)
        self.n_labels += 1
        self.n_positives += label
        self.classifier.learn_one(features, label)
        return p

    def quality(self) -> dict[str, Any]:
        """Progressive metrics for export: roc_auc and log_loss are None until both classes
        have been seen (an AUC of one class is meaningless)."""
        both = 0 < self.n_positives < self.n_labels
        return {
            "intent": self.spec.name, "version": self.version, "trusted": self.trusted,
            "n_labels": self.n_labels, "n_positives": self.n_positives,
            "positive_rate": self.n_positives / self.n_labels if self.n_labels else None,
            "roc_auc": _finite(float(self._auc.get())) if both else None,
            "log_loss": _finite(float(self._logloss.get())) if self.n_labels else None,
        }

    def to_bytes(self) -> bytes:
        """A checkpoint: format, intent spec, feature version, classifier, metrics, counts.

        It is a pickle, so restore only checkpoints this engine wrote (its own state store).
        """
        state = {
            "format": CHECKPOINT_FORMAT, "intent": self.spec.name,
            "spec": self.spec.model_dump(), "features": FEATURES_VERSION,
            "classifier": self.classifier, "auc": self._auc, "logloss": self._logloss,
            "n_labels": self.n_labels, "n_positives": self.n_positives,
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes, spec: IntentSpec | None = None) -> IntentModel:
        """Restore a checkpoint of :meth:`to_bytes`.

        With ``spec``, the checkpoint must be of that intent name (and it then runs under
        ``spec``, e.g. a changed ``min_labels``). Raises :class:`CheckpointError` for data that
        is not a checkpoint, another format, another intent or another feature version.
        """
        try:
            state = pickle.loads(data)
        except Exception as exc:  # any unpickling failure means "not a checkpoint"
            raise CheckpointError(f"not an intent model checkpoint: {exc}") from None
        if not isinstance(state, dict) or "format" not in state:
            raise CheckpointError("not an intent model checkpoint")
        if state["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(f"checkpoint format {state['format']} is not the supported "
                                  f"format {CHECKPOINT_FORMAT}")
        if spec is not None and state["intent"] != spec.name:
            raise CheckpointError(f"checkpoint is of intent {state['intent']!r}, not {spec.name!r}")
        if state["features"] != FEATURES_VERSION:
            raise CheckpointError(f"checkpoint of intent {state['intent']!r} was learned on features "
                                  f"{state['features']!r}, these are {FEATURES_VERSION!r}")
        model = cls(spec if spec is not None else IntentSpec.model_validate(state["spec"]),
                    state["classifier"])
        model._auc = state["auc"]
        model._logloss = state["logloss"]
        model.n_labels = state["n_labels"]
        model.n_positives = state["n_positives"]
        return model


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
