"""Intent models: trust, progressive validation, data-only checkpoints; the scorer's step."""

from __future__ import annotations

import math
import pickle
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import linear_model, optim, tree

from orchestrator.core.profile.pending import outcomes_seen_of, pending_of
from orchestrator.core.scoring import MODEL_NAMES
from orchestrator.core.scoring.features import (
    LOGGED_IN,
    N_FEATURES,
    PACK_SCALE,
    as_dict,
    pack,
    unpack,
)
from orchestrator.core.scoring.intents import DEFAULT_INTENTS, IntentSpec
from orchestrator.core.scoring.labels import SettledLabel
from orchestrator.core.scoring.model import (
    RECENT_MIN_EACH,
    CheckpointError,
    IntentModel,
    Quality,
    trusted_score,
)
from orchestrator.core.scoring.scorer import IntentScorer

pytestmark = pytest.mark.unit

T0 = 1_700_000_000_000
SPEC = IntentSpec(name="buy", outcome_event_types=("purchase",), horizon_s=3600, min_labels=40,
                  min_positives=10, min_negatives=10)
HOT = {"views_pricing": 0.9, "add_to_cart_24h": 0.5}
COLD = {"views_home": 0.4}


def trained(n: int = 40, spec: IntentSpec = SPEC) -> IntentModel:
    model = IntentModel(spec)
    for i in range(n):
        model.learn(HOT if i % 2 else COLD, bool(i % 2))
    return model


def test_no_score_until_enough_labels_of_both_classes_then_a_probability() -> None:
    model = IntentModel(SPEC)
    for i in range(SPEC.min_labels):
        assert model.score(HOT) is None, f"trusted after only {i} labels"
        model.learn(HOT if i % 2 else COLD, bool(i % 2))
    score = model.score(HOT)
    assert score is not None and 0.5 < score < 1.0
    assert model.trusted and model.quality()["trusted"]


@pytest.mark.parametrize("label", [True, False])
def test_no_score_from_labels_of_one_class_only_however_many(label: bool) -> None:
    # Positives settle at once, negatives a horizon later; and some logs never have an outcome.
    model = IntentModel(SPEC)
    for _ in range(20 * SPEC.min_labels):
        model.learn(HOT if label else COLD, label)
    assert model.score(COLD) is None and not model.trusted


def test_no_score_while_the_recent_ranking_is_below_the_floor() -> None:
    model = IntentModel(SPEC.model_copy(update={"min_recent_auc": 0.6}))
    for i in range(400):  # labels that the features cannot tell apart
        model.learn(HOT, bool(i % 3 == 0))
    assert model.quality()["recent_roc_auc"] is None or model.quality()["recent_roc_auc"] < 0.6
    assert model.score(HOT) is None
    for i in range(1000):  # then they can: trusted again
        model.learn(HOT if i % 2 else COLD, bool(i % 2))
    assert model.quality()["recent_roc_auc"] > 0.9 and model.score(HOT) is not None


def with_recent_ranking(model: IntentModel, auc: float, n_pos: int = 100, n_neg: int = 400) -> None:
    # Labels whose recent window ranks at ``auc``: every positive scored 0.6, that share of the
    # negatives below it (0.3) and the rest above (0.9). Counts as if learned; trust re-checked.
    below = round(auc * n_neg)
    quality = Quality()
    quality.recent[2][60], quality.recent[3][30], quality.recent[3][90] = n_pos, below, n_neg - below
    quality.recent[4] = n_pos + n_neg
    quality.pos[60], quality.neg[30], quality.neg[90] = n_pos, below, n_neg - below
    quality.n = model.n_labels = n_pos + n_neg
    model.n_positives = n_pos
    model.quality_ = quality
    model._update_trust()


def test_a_model_is_trusted_from_the_floor_and_withdrawn_only_clearly_below_it() -> None:
    spec = SPEC.model_copy(update={"min_recent_auc": 0.6})
    fresh, serving = IntentModel(spec), IntentModel(spec)
    with_recent_ranking(serving, 0.7)
    assert serving.trusted
    # 0.57: below the floor, but within the window's noise (100 positives: a standard error of
    # 0.03): a serving model keeps serving, a new one is not trusted on it.
    with_recent_ranking(serving, 0.57)
    with_recent_ranking(fresh, 0.57)
    assert serving.trusted and not fresh.trusted
    # 0.5: clearly below (by more than 1.645 standard errors): withdrawn, until back at the floor.
    with_recent_ranking(serving, 0.5)
    assert not serving.trusted
    with_recent_ranking(serving, 0.57)
    assert not serving.trusted
    with_recent_ranking(serving, 0.6)
    assert serving.trusted


def test_min_labels_zero_turns_trust_off() -> None:
    model = IntentModel(SPEC.model_copy(update={"min_labels": 0}))
    assert model.score(HOT) == 0.5


class Broken:
    def __init__(self, p: float) -> None:
        self.p = p

    def predict_proba_one(self, x: dict) -> dict:
        return {True: self.p}


@pytest.mark.parametrize("p", [math.nan, math.inf, -0.1, 1.5])
def test_a_probability_that_is_not_a_finite_number_in_0_1_is_never_served(p: float) -> None:
    model = trained(60)
    model.classifier = Broken(p)
    assert trusted_score(model, HOT) is None


def test_each_label_is_predicted_before_it_is_learned() -> None:
    model = IntentModel(SPEC)
    first = model.learn(HOT, True)
    assert first == 0.5  # the untrained model's prediction, not one that has seen the label
    assert model.quality()["log_loss"] == pytest.approx(math.log(2))
    assert model.predict(HOT) > first  # and then it learned


def test_quality_reports_progressive_metrics_and_no_auc_before_both_classes() -> None:
    model = IntentModel(SPEC)
    model.learn(HOT, True)
    assert model.quality()["roc_auc"] is None
    model = trained(200)
    quality = model.quality()
    assert quality["n_labels"] == 200 and quality["n_positives"] == 100
    assert quality["positive_rate"] == 0.5
    assert quality["roc_auc"] > 0.9  # separable, and scored before learning each label
    assert quality["recent_roc_auc"] > 0.9
    assert quality["version"] == "buy.v200" == model.version
    assert quality["model"] == "logreg-adagrad"
    assert RECENT_MIN_EACH <= 100


# ------------------------------------------------------------------ checkpoints

@pytest.mark.parametrize("kind", MODEL_NAMES)
def test_checkpoint_round_trip_continues_exactly_where_the_model_was(kind: str) -> None:
    spec = SPEC.model_copy(update={"model": kind})
    model = trained(60, spec)
    data = model.to_bytes()
    assert b"pickle" not in data and orjson.loads(data)["format"] == 2  # plain JSON
    restored = IntentModel.from_bytes(data, spec)
    assert restored.predict(HOT) == model.predict(HOT)
    assert restored.score(COLD) == model.score(COLD)
    assert restored.quality() == model.quality()
    for i in range(30):  # both go on learning identically: the optimiser state came back too
        x, y = (HOT, True) if i % 3 else (COLD, False)
        assert restored.learn(x, y) == model.learn(x, y)
    assert restored.predict(COLD) == model.predict(COLD)
    assert IntentModel.from_bytes(model.to_bytes()).spec == spec  # the spec travels with it


def test_a_checkpoint_is_never_unpickled_and_a_crafted_one_is_refused() -> None:
    class Boom:
        def __reduce__(self) -> tuple:
            return (exec, ("raise SystemExit('code ran')",))

    with pytest.raises(CheckpointError, match="not an intent model checkpoint"):
        IntentModel.from_bytes(pickle.dumps({"format": 2, "x": Boom()}))


def test_a_mismatched_or_foreign_checkpoint_is_rejected_with_a_reason() -> None:
    data = trained(10).to_bytes()
    state = orjson.loads(data)
    other = IntentSpec(name="churn", outcome_event_types=("cancellation_requested",), horizon_s=60)
    with pytest.raises(CheckpointError, match="intent 'buy', not 'churn'"):
        IntentModel.from_bytes(data, other)
    with pytest.raises(CheckpointError, match="not an intent model checkpoint"):
        IntentModel.from_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="format 99"):
        IntentModel.from_bytes(orjson.dumps({**state, "format": 99}))
    with pytest.raises(CheckpointError, match="features 'f1'"):
        IntentModel.from_bytes(orjson.dumps({**state, "features": "f1"}))
    with pytest.raises(CheckpointError, match="logreg-adagrad model, the intent is configured as logreg-sgd"):
        IntentModel.from_bytes(data, SPEC.model_copy(update={"model": "logreg-sgd"}))
    bad_weight = {**state, "model": {**state["model"], "weights": {"views_home": "1; rm -rf /"}}}
    with pytest.raises(CheckpointError, match="expected a finite number"):
        IntentModel.from_bytes(orjson.dumps(bad_weight))
    unknown = {**state, "model": {**state["model"], "weights": {"__class__": 1.0}}}
    with pytest.raises(CheckpointError, match="unknown features"):
        IntentModel.from_bytes(orjson.dumps(unknown))
    extra = {**state, "classifier": "anything"}
    with pytest.raises(CheckpointError, match="unknown"):
        IntentModel.from_bytes(orjson.dumps(extra))


def test_a_classifier_given_by_hand_is_refused_a_checkpoint() -> None:
    model = IntentModel(SPEC, tree.HoeffdingTreeClassifier())
    with pytest.raises(CheckpointError, match="cannot be checkpointed"):
        model.to_bytes()


# ------------------------------------------------------------------ the served probability

def random_vector(rnd: random.Random, nonzero: int) -> list[float]:
    """A vector like extract_features gives: quantised, mostly zeros."""
    v = [0.0] * N_FEATURES
    for i in rnd.sample(range(N_FEATURES), nonzero):
        v[i] = rnd.randint(1, 3 * PACK_SCALE) / PACK_SCALE
    return v


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(MODEL_NAMES), st.integers(0, 2**32), st.integers(0, 300))
def test_the_probability_served_is_river_s_bit_for_bit_while_it_learns_and_after_a_restore(
        model_name: str, seed: int, n_labels: int) -> None:
    rnd = random.Random(seed)
    model = IntentModel(SPEC.model_copy(update={"model": model_name}))
    for _ in range(n_labels):
        v = random_vector(rnd, rnd.randint(0, 40))
        model.learn(as_dict(v), rnd.random() < 0.2, rnd.choice([1.0, 1.0, 2.5]))
    restored = IntentModel.from_bytes(model.to_bytes(), model.spec)
    for _ in range(20):
        v = random_vector(rnd, rnd.randint(0, 40))
        river = model.classifier.predict_proba_one(as_dict(v))[True]
        assert model.probability(as_dict(v)) == river
        assert restored.probability(as_dict(v)) == river


def test_a_classifier_other_than_river_s_logistic_regression_is_scored_by_its_predict_proba_one(
) -> None:
    rnd = random.Random(7)
    hand = IntentModel(SPEC, tree.HoeffdingTreeClassifier(grace_period=5))
    penalised = IntentModel(SPEC, linear_model.LogisticRegression(optimizer=optim.SGD(0.1), l2=0.01))
    for _ in range(60):
        v = random_vector(rnd, 10)
        hand.learn(as_dict(v), rnd.random() < 0.5)
        penalised.learn(as_dict(v), rnd.random() < 0.5)
    for _ in range(20):
        v = random_vector(rnd, 10)
        assert hand.probability(as_dict(v)) == hand.classifier.predict_proba_one(as_dict(v)).get(True, 0.0)
        assert penalised.probability(as_dict(v)) == penalised.classifier.predict_proba_one(as_dict(v))[True]


# ------------------------------------------------------------------ the scorer

def vector(logged_in: bool, value: float = 0.0) -> list[float]:
    v = [value] * N_FEATURES
    v[LOGGED_IN] = 1.0 if logged_in else 0.0
    return v


def test_scores_are_absent_where_the_intent_does_not_apply_and_none_while_cold() -> None:
    scorer = IntentScorer()
    anonymous = scorer.score_all(vector(logged_in=False))
    assert anonymous == {spec.name: None for spec in DEFAULT_INTENTS}
    assert "login_propensity" not in scorer.score_all(vector(logged_in=True))


def test_step_settles_learns_from_the_queue_scores_then_offers_the_moment() -> None:
    spec = IntentSpec(name="buy", outcome_event_types=("purchase",), horizon_s=3600, min_labels=0)
    scorer = IntentScorer((spec,))
    pending: dict = {}
    first = scorer.step(pending, "page_view", T0, vector(False))
    assert first.scores == {"buy": 0.5} and first.settled == []
    assert pending_of(pending, "buy") == [(T0, pack(vector(False)))]  # exactly what was scored
    bought = scorer.step(pending, "purchase", T0 + 60_000, vector(False))
    assert bought.settled == bought.learned == []  # decided, learned when its horizon ends
    assert outcomes_seen_of(pending, "buy") == [T0]
    assert [ts for ts, _ in pending_of(pending, "buy")] == [T0, T0 + 60_000]
    later = T0 + 2 * 3_600_000
    late = scorer.step(pending, "page_view", later, vector(False), late=True)
    assert [(s.label, s.snapshot_ts) for s in late.settled] == [(True, T0), (False, T0 + 60_000)]
    assert late.learned == late.settled[:1] and late.predictions == [0.5]  # one per step
    assert scorer.versions() == {"buy": "buy.v1"}
    assert pending == {}  # expired at this event's time, and a late event takes no snapshot


def test_an_outcome_that_decides_many_moments_is_learned_over_the_next_events() -> None:
    spec = IntentSpec(name="buy", outcome_event_types=("purchase",), horizon_s=3600, min_labels=0,
                      max_pending=8)
    scorer = IntentScorer((spec,), learn_budget=1)
    pending: dict = {}
    for n in range(8):
        scorer.step(pending, "page_view", T0 + n * 1000, vector(False, 0.1))
    scorer.step(pending, "purchase", T0 + 10_000, vector(False, 0.1))
    after = scorer.step(pending, "page_view", T0 + 3_700_000, vector(False, 0.1), late=True)
    assert len(after.settled) == 9 and len(after.learned) == 1 and len(scorer.queue) == 8
    assert [s.label for s in after.settled] == [True] * 8 + [False]  # the purchase moment too
    for n in range(8):
        step = scorer.step(pending, "page_view", T0 + 3_800_000 + n, vector(False), late=True)
        assert len(step.learned) == 1
    assert not scorer.queue and scorer.models["buy"].n_labels == 9


def test_a_checkpoint_learns_the_queue_first() -> None:
    scorer = IntentScorer()
    label = SettledLabel("purchase_intent", pack(vector(False, 0.2)), True, T0, T0)
    scorer.queue.extend([label] * 3)
    blobs = scorer.checkpoint()
    assert not scorer.queue
    fresh = IntentScorer()
    fresh.restore(blobs)
    assert fresh.versions()["purchase_intent"] == "purchase_intent.v3"


def test_scorer_checkpoint_restores_every_model_and_rejects_unknown_intents() -> None:
    scorer = IntentScorer()
    scorer.learn([SettledLabel("purchase_intent", pack(vector(False, 0.3)), True, T0, T0)] * 3)
    blobs = scorer.checkpoint()
    fresh = IntentScorer()
    fresh.restore(blobs)
    assert fresh.versions() == scorer.versions()
    x = unpack(pack(vector(False, 0.3)))
    assert fresh.models["purchase_intent"].predict(x) == scorer.models["purchase_intent"].predict(x)
    with pytest.raises(CheckpointError, match="unknown intent"):
        fresh.restore({"nope": blobs["churn_risk"]})
    with pytest.raises(CheckpointError, match="not 'churn_risk'"):
        fresh.restore({"churn_risk": blobs["contact_need"]})
    assert fresh.versions() == scorer.versions()  # nothing replaced by a rejected restore
