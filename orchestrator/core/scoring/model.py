"""One online model per intent, with progressive validation, trust, and data-only checkpoints.

:meth:`IntentModel.learn` first predicts the label it is given with the model as it is and
updates the running metrics, then learns from it: every label is scored by a model that has
not seen it (progressive validation).

**Trust.** :func:`trusted_score` is the one place that decides whether a score is served: the
model must be trusted (:attr:`IntentModel.trusted`: at least ``min_labels`` labels, of which
``min_positives`` positive and ``min_negatives`` negative, and a recent ROC AUC of at least
``min_recent_auc``; ``min_labels = 0`` turns all of it off, for tests and demos) and its
probability a finite number in [0, 1]. Otherwise it is ``None`` (never a silent 0.5), and
rules that need the score do not fire. Both classes are required because labels are delayed
unevenly (a positive settles when its outcome happens, a negative only when the horizon has
passed) and because an intent whose outcome never happens in the
data (a log without cancellations) would otherwise be "trusted" on negatives alone. The
recent-quality floor withdraws a model whose ranking has decayed (drift) until it recovers.

**Checkpoints** are versioned JSON (:data:`CHECKPOINT_FORMAT`), never pickle: a checkpoint
comes from a Kafka changelog, and unpickling a crafted value runs code. A checkpoint holds
the River logistic regression's weights, intercept and optimiser state, the metrics and the
label counts, all as numbers; :meth:`IntentModel.from_bytes` validates every field and
rebuilds the River objects itself. Only models whose state is written this way are offered
(:data:`.intents.MODEL_NAMES`); a classifier passed in by hand (e.g. a tree for a benchmark)
cannot be checkpointed (:class:`CheckpointError`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson
from river import linear_model, optim, utils
from river.utils.math import sigmoid

from orchestrator.core.scoring.features import FEATURE_INDEX, FEATURES_VERSION
from orchestrator.core.scoring.intents import IntentSpec

#: Bumped whenever the checkpoint layout changes; a checkpoint of another format is rejected.
CHECKPOINT_FORMAT = 2

#: Learning rates per model kind (benchmarks/intent_scoring.py --compare).
LEARNING_RATES = {"logreg-adam": 0.01, "logreg-adagrad": 0.1, "logreg-sgd": 0.05}
#: Score bins of the running ROC AUC (an AUC from binned scores; exact up to ties in a bin).
AUC_BINS = 100
#: Labels per block of the recent-quality window: the recent AUC covers the last 1-2 blocks.
RECENT_BLOCK = 500
#: Labels of each class the recent window needs before its AUC counts.
RECENT_MIN_EACH = 10
#: Trust is re-evaluated every this many labels (and on restore).
TRUST_EVERY = 20
#: A trusted model loses trust when its recent AUC is this many standard errors below the floor
#: (one-sided 95 %); a model becomes trusted at the floor itself.
TRUST_MARGIN_SE = 1.645


_LOGREG = linear_model.LogisticRegression
_LOG_LOSS = optim.losses.Log


class CheckpointError(ValueError):
    """A checkpoint cannot be restored into this model (format, intent, features or content)."""


class AdaGrad(optim.AdaGrad):
    """River's AdaGrad with the learning rate read once per step instead of once per feature
    (the same arithmetic, a third of the time on the ~25 non-zero features of a label)."""

    def _step_with_dict(self, w: Any, g: Any) -> Any:
        lr = self.learning_rate
        eps = self.eps
        g2 = self.g2
        for i, gi in g.items():
            total = g2[i] + gi * gi
            g2[i] = total
            w[i] -= lr / (total + eps) ** 0.5 * gi
        return w


def make_classifier(model_name: str) -> Any:
    """A fresh River classifier named in :data:`.intents.MODEL_NAMES`."""
    lr = LEARNING_RATES[model_name]
    if model_name == "logreg-adam":
        optimizer: Any = optim.Adam(lr)
    elif model_name == "logreg-adagrad":
        optimizer = AdaGrad(lr)
    elif model_name == "logreg-sgd":
        optimizer = optim.SGD(lr)
    else:  # pragma: no cover - IntentSpec validates the name
        raise ValueError(f"unknown model {model_name!r}")
    return linear_model.LogisticRegression(optimizer=optimizer)


def default_classifier() -> Any:
    """The River classifier an intent starts from when its spec names no other."""
    return make_classifier("logreg-adam")


class Quality:
    """Running ROC AUC and log loss over all labels and over the recent ones.

    Binned, so that an update is O(1) and the state is a few lists of integers (checkpointed as
    data). The recent window is the current block of :data:`RECENT_BLOCK` labels plus the
    previous one.
    """

    __slots__ = ("log_loss_sum", "n", "neg", "pos", "recent")

    def __init__(self) -> None:
        self.n = 0
        self.log_loss_sum = 0.0
        self.pos = [0] * AUC_BINS
        self.neg = [0] * AUC_BINS
        # [previous block pos, previous block neg, current pos, current neg, current count]
        self.recent: list[Any] = [[0] * AUC_BINS, [0] * AUC_BINS, [0] * AUC_BINS, [0] * AUC_BINS, 0]

    def update(self, label: bool, p: float) -> None:
        if not (p == p and 0.0 <= p <= 1.0):  # NaN or out of range: count it as useless
            p = 0.5
        b = int(p * AUC_BINS)
        if b >= AUC_BINS:
            b = AUC_BINS - 1
        recent = self.recent
        if recent[4] >= RECENT_BLOCK:
            recent[0], recent[1] = recent[2], recent[3]
            recent[2], recent[3], recent[4] = [0] * AUC_BINS, [0] * AUC_BINS, 0
        if label:
            self.pos[b] += 1
            recent[2][b] += 1
        else:
            self.neg[b] += 1
            recent[3][b] += 1
        recent[4] += 1
        q = min(max(p if label else 1.0 - p, 1e-15), 1.0)
        self.log_loss_sum -= math.log(q)
        self.n += 1

    def auc(self) -> float | None:
        return _binned_auc(self.pos, self.neg, 1)

    def recent_auc(self) -> float | None:
        return self.recent_window()[0]

    def recent_window(self) -> tuple[float | None, int, int]:
        """The recent window's ROC AUC (None with fewer than RECENT_MIN_EACH of a class) and
        its positives and negatives."""
        r = self.recent
        pos = [a + b for a, b in zip(r[0], r[2], strict=True)]
        neg = [a + b for a, b in zip(r[1], r[3], strict=True)]
        return _binned_auc(pos, neg, RECENT_MIN_EACH), sum(pos), sum(neg)

    def log_loss(self) -> float | None:
        return self.log_loss_sum / self.n if self.n else None

    def to_data(self) -> dict[str, Any]:
        return {"n": self.n, "log_loss_sum": self.log_loss_sum, "pos": self.pos, "neg": self.neg,
                "recent": self.recent}

    @classmethod
    def from_data(cls, data: Any) -> Quality:
        q = cls()
        d = _mapping(data, "metrics", {"n", "log_loss_sum", "pos", "neg", "recent"})
        q.n = _int(d["n"], "metrics.n")
        q.log_loss_sum = _float(d["log_loss_sum"], "metrics.log_loss_sum")
        q.pos = _bins(d["pos"], "metrics.pos")
        q.neg = _bins(d["neg"], "metrics.neg")
        r = d["recent"]
        if not isinstance(r, list) or len(r) != 5:
            raise CheckpointError("metrics.recent: expected 5 entries")
        q.recent = [*(_bins(r[i], f"metrics.recent[{i}]") for i in range(4)),
                    _int(r[4], "metrics.recent[4]")]
        return q


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """The standard error of a ROC AUC estimated from ``n_pos`` positives and ``n_neg``
    negatives (Hanley and McNeil, 1982).

    >>> round(auc_standard_error(0.6, 100, 400), 4)
    0.0328
    """
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    variance = (auc * (1.0 - auc) + (n_pos - 1) * (q1 - auc * auc)
                + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return math.sqrt(max(0.0, variance))


def _binned_auc(pos: list[int], neg: list[int], min_each: int) -> float | None:
    n_pos = sum(pos)
    n_neg = sum(neg)
    if n_pos < min_each or n_neg < min_each or not n_pos or not n_neg:
        return None
    below = 0  # negatives in lower bins
    area = 0.0
    for p, n in zip(pos, neg, strict=True):
        area += p * (below + 0.5 * n)
        below += n
    return area / (n_pos * n_neg)


class IntentModel:
    """A River binary classifier for one intent, its progressive quality and its trust."""

    __slots__ = ("_next_check", "_trusted", "classifier", "model_name", "n_labels", "n_positives",
                 "quality_", "spec")

    def __init__(self, spec: IntentSpec, classifier: Any | None = None) -> None:
        self.spec = spec
        #: One of :data:`MODEL_NAMES`, or None for a classifier given by hand (no checkpoint).
        self.model_name: str | None = spec.model if classifier is None else None
        self.classifier = classifier if classifier is not None else make_classifier(spec.model)
        self.n_labels = 0
        self.n_positives = 0
        self.quality_ = Quality()
        self._trusted = False
        self._next_check = 0
        self._update_trust()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def trusted(self) -> bool:
        """Enough labels of both classes, and a recent ROC AUC at or above the floor."""
        return self._trusted

    def _update_trust(self) -> None:
        # Counts are checked at every label until they suffice, the recent AUC (a few hundred
        # operations) every TRUST_EVERY labels after that. min_labels = 0 turns trust off.
        spec = self.spec
        floor = spec.min_labels
        negatives = self.n_labels - self.n_positives
        if (self.n_labels < floor or self.n_positives < min(spec.min_positives, floor)
                or negatives < min(spec.min_negatives, floor)):
            self._trusted = False
            self._next_check = self.n_labels + 1
            return
        self._next_check = self.n_labels + TRUST_EVERY
        if floor == 0 or spec.min_recent_auc <= 0.0:
            self._trusted = True
            return
        # A recent window holding too few of one class (a sweep settling a run of negatives)
        # says nothing about decay: the model is then judged by all its labels.
        recent, n_pos, n_neg = self.quality_.recent_window()
        if recent is None:
            quality = self.quality_.auc()
            n_pos, n_neg = self.n_positives, self.n_labels - self.n_positives
        else:
            quality = recent
        if quality is None:
            self._trusted = False
        elif not self._trusted:  # to be trusted: ranking at or above the floor
            self._trusted = quality >= spec.min_recent_auc
        else:
            # A trusted model is withdrawn only when its window is clearly below the floor:
            # beyond TRUST_MARGIN_SE standard errors. A window of a few hundred labels, drawn
            # from a few dozen sessions, moves by several hundredths from block to block; on a
            # real shop's log a point-estimate floor withdrew a model that ranked its decision
            # points better than a batch GBM for 30 % of them (docs/intent-scoring.md).
            margin = (TRUST_MARGIN_SE * auc_standard_error(quality, n_pos, n_neg)
                      if n_pos > 0 and n_neg > 0 else 0.0)
            self._trusted = quality + margin >= spec.min_recent_auc

    @property
    def version(self) -> str:
        """``<intent>.v<labels learned>``: changes with every label, equal after a restore."""
        return f"{self.spec.name}.v{self.n_labels}"

    def predict(self, features: dict[str, float]) -> float:
        """The model's probability as it is, trusted or not (for evaluation): River's
        ``predict_proba_one``."""
        return self.classifier.predict_proba_one(features).get(True, 0.0)

    def probability(self, features: dict[str, float]) -> float:
        """The model's probability for ``features``, trusted or not: River's
        ``predict_proba_one(features)[True]``, bit for bit.

        For a River logistic regression it is computed as River computes it -- River's own dot
        product of its weights with ``features``, plus its intercept, through its sigmoid --
        without building the ``{False: 1 - p, True: p}`` dict River returns: every event scores
        every intent (0.85 µs per model against 1.2 µs for ``predict_proba_one``, micro-benchmark).
        """
        clf = self.classifier
        if type(clf) is _LOGREG and type(clf.loss) is _LOG_LOSS:
            return sigmoid(clf._weights.dot(features) + clf.intercept)
        return clf.predict_proba_one(features).get(True, 0.0)

    def score(self, features: dict[str, float]) -> float | None:
        """The probability of the outcome within the horizon, or None (see :func:`trusted_score`)."""
        return trusted_score(self, features)

    def learn(self, features: dict[str, float], label: bool, weight: float = 1.0) -> float:
        """Predict ``label`` with the model as it is, update the metrics, then learn from it
        (with ``weight``; the metrics count every label once).

        Returns the prediction made before learning (the progressive-validation prediction).
        """
        p = self.classifier.predict_proba_one(features).get(True, 0.0)
        self.quality_.update(label, p)
        self.n_labels += 1
        self.n_positives += label
        if weight == 1.0:
            self.classifier.learn_one(features, label)
        else:
            self.classifier.learn_one(features, label, w=weight)
        if self.n_labels >= self._next_check:
            self._update_trust()
        return p

    def quality(self) -> dict[str, Any]:
        """Progressive metrics for export: roc_auc and recent_roc_auc are None until both
        classes have been seen (an AUC of one class is meaningless)."""
        q = self.quality_
        return {
            "intent": self.spec.name, "version": self.version, "trusted": self.trusted,
            "model": self.model_name, "n_labels": self.n_labels, "n_positives": self.n_positives,
            "positive_rate": self.n_positives / self.n_labels if self.n_labels else None,
            "roc_auc": _finite(q.auc()), "recent_roc_auc": _finite(q.recent_auc()),
            "log_loss": _finite(q.log_loss()),
        }

    # ------------------------------------------------------------ checkpoints

    def to_bytes(self) -> bytes:
        """A checkpoint: versioned JSON of the spec, the model's state, metrics and counts."""
        if self.model_name is None:
            raise CheckpointError(f"intent {self.spec.name!r}: a classifier given by hand "
                                  "cannot be checkpointed")
        state = {
            "format": CHECKPOINT_FORMAT, "intent": self.spec.name,
            "spec": self.spec.model_dump(mode="json"), "features": FEATURES_VERSION,
            "model": _logreg_state(self.model_name, self.classifier),
            "metrics": self.quality_.to_data(),
            "n_labels": self.n_labels, "n_positives": self.n_positives,
        }
        return orjson.dumps(state)

    @classmethod
    def from_bytes(cls, data: bytes, spec: IntentSpec | None = None) -> IntentModel:
        """Restore a checkpoint of :meth:`to_bytes`.

        With ``spec``, the checkpoint must be of that intent name and model kind (it then runs
        under ``spec``, e.g. a changed ``min_labels``). Raises :class:`CheckpointError` for data
        that is not a checkpoint, another format, intent, model kind or feature version, or any
        field of the wrong type or value.
        """
        try:
            state = orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise CheckpointError(f"not an intent model checkpoint: {exc}") from None
        if not isinstance(state, dict) or "format" not in state:
            raise CheckpointError("not an intent model checkpoint")
        if state["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(f"checkpoint format {state['format']!r} is not the supported "
                                  f"format {CHECKPOINT_FORMAT}")
        state = _mapping(state, "checkpoint", {"format", "intent", "spec", "features", "model",
                                               "metrics", "n_labels", "n_positives"})
        if spec is not None and state["intent"] != spec.name:
            raise CheckpointError(f"checkpoint is of intent {state['intent']!r}, not {spec.name!r}")
        if state["features"] != FEATURES_VERSION:
            raise CheckpointError(f"checkpoint of intent {state['intent']!r} was learned on features "
                                  f"{state['features']!r}, these are {FEATURES_VERSION!r}")
        if spec is None:
            try:
                spec = IntentSpec.model_validate(_spec_input(state["spec"]))
            except ValueError as exc:
                raise CheckpointError(f"checkpoint spec: {exc}") from None
        model_name, classifier = _logreg_from_state(state["model"])
        if model_name != spec.model:
            raise CheckpointError(f"checkpoint of intent {spec.name!r} is a {model_name} model, the "
                                  f"intent is configured as {spec.model}")
        model = cls(spec, classifier)
        model.model_name = model_name
        model.quality_ = Quality.from_data(state["metrics"])
        model.n_labels = _int(state["n_labels"], "n_labels")
        model.n_positives = _int(state["n_positives"], "n_positives")
        if model.n_positives > model.n_labels:
            raise CheckpointError("n_positives is above n_labels")
        model._update_trust()
        return model


def trusted_score(model: IntentModel, features: dict[str, float]) -> float | None:
    """The score to serve: the model's probability (:meth:`IntentModel.probability`) when the
    model is trusted and the probability is servable (:func:`servable_score`); otherwise None.
    The one place that decides whether a model's score is served."""
    if not model.trusted:
        return None
    return servable_score(model.probability(features))


def servable_score(value: object) -> float | None:
    """``value`` as a float when it is a probability a decision can use (a finite number in
    [0, 1], not a bool), otherwise None. Scores are checked here alone: when served
    (:func:`trusted_score`) and when a rule weighs one it was given.

    >>> servable_score(0.25), servable_score(float("nan")), servable_score(True), servable_score(2)
    (0.25, None, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        return None
    return float(value)


# ---------------------------------------------------------------- model state as data

def _logreg_state(model_name: str, clf: Any) -> dict[str, Any]:
    opt = clf.optimizer
    state: dict[str, Any] = {
        "kind": model_name, "weights": dict(clf._weights.to_dict()), "intercept": float(clf.intercept),
        "n_iterations": int(opt.n_iterations),
    }
    if model_name == "logreg-adam":
        state["m"] = _as_plain(opt.m)
        state["v"] = _as_plain(opt.v)
    elif model_name == "logreg-adagrad":
        state["g2"] = dict(opt.g2) if opt.g2 is not None else {}
    return state


def _as_plain(vector: Any) -> dict[str, float] | None:
    if vector is None:
        return None
    return dict(vector.to_dict()) if hasattr(vector, "to_dict") else dict(vector)


def _logreg_from_state(data: Any) -> tuple[str, Any]:
    if not isinstance(data, dict) or data.get("kind") not in LEARNING_RATES:
        model_name = data.get("kind") if isinstance(data, dict) else data
        raise CheckpointError(f"model: unknown model {model_name!r}")
    model_name = data["kind"]
    extra = {"logreg-adam": {"m", "v"}, "logreg-adagrad": {"g2"}, "logreg-sgd": set()}[model_name]
    d = _mapping(data, "model", {"kind", "weights", "intercept", "n_iterations", *extra})
    clf = make_classifier(model_name)
    clf._weights = utils.VectorDict(_weights(d["weights"], "model.weights"))
    clf.intercept = _float(d["intercept"], "model.intercept")
    opt = clf.optimizer
    opt.n_iterations = _int(d["n_iterations"], "model.n_iterations")
    if model_name == "logreg-adam":
        for name in ("m", "v"):
            value = d[name]
            setattr(opt, name, None if value is None
                    else utils.VectorDict(_weights(value, f"model.{name}")))
        if (opt.m is None) != (opt.v is None):
            raise CheckpointError("model: Adam state needs both m and v")
    elif model_name == "logreg-adagrad":
        opt.g2 = defaultdict(float, _weights(d["g2"], "model.g2"))
    return model_name, clf


def _spec_input(data: Any) -> Any:
    if isinstance(data, dict) and isinstance(data.get("outcome_event_types"), list):
        data = {**data, "outcome_event_types": tuple(data["outcome_event_types"])}
    return data


def _mapping(data: Any, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise CheckpointError(f"{where}: expected an object")
    missing = keys - set(data)
    unknown = set(data) - keys
    if missing or unknown:
        raise CheckpointError(f"{where}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    return data


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f"{where}: expected a non-negative integer")
    return value


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CheckpointError(f"{where}: expected a finite number")
    return float(value)


def _bins(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or len(value) != AUC_BINS:
        raise CheckpointError(f"{where}: expected {AUC_BINS} counts")
    return [_int(v, where) for v in value]


def _weights(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise CheckpointError(f"{where}: expected an object")
    unknown = [k for k in value if k not in FEATURE_INDEX]
    if unknown:
        raise CheckpointError(f"{where}: unknown features {sorted(unknown)[:3]}")
    return {k: _float(v, f"{where}.{k}") for k, v in value.items()}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


ClassifierFactory = Callable[[], Any]
