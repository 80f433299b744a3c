"""Intent models: cold start, progressive validation, checkpoints; the scorer's step."""

from __future__ import annotations

import math
import pickle

import pytest

from orchestrator.core.scoring.features import LOGGED_IN, N_FEATURES, extract_features, pack
from orchestrator.core.scoring.intents import DEFAULT_INTENTS, IntentSpec
from orchestrator.core.scoring.labels import SettledLabel
from orchestrator.core.scoring.model import CheckpointError, IntentModel
from orchestrator.core.scoring.scorer import IntentScorer
from orchestrator.simulate.population import Population, ReplayState, fold

pytestmark = pytest.mark.unit

T0 = 1_700_000_000_000
SPEC = IntentSpec(name="buy", outcome_event_types=("purchase",), horizon_s=3600, min_labels=5)
HOT = {"session_cat_pricing": 0.9, "add_to_cart_24h": 0.5}
COLD = {"session_cat_home": 0.4}


def trained(n: int = 40, spec: IntentSpec = SPEC) -> IntentModel:
    model = IntentModel(spec)
    for i in range(n):
        model.learn(HOT if i % 2 else COLD, bool(i % 2))
    return model


def test_no_score_until_min_labels_then_a_probability() -> None:
    model = IntentModel(SPEC)
    for i in range(SPEC.min_labels):
        assert model.score(HOT) is None, f"trusted after only {i} labels"
        model.learn(HOT if i % 2 else COLD, bool(i % 2))
    score = model.score(HOT)
    assert score is not None and 0.5 < score < 1.0
    assert model.trusted and model.quality()["trusted"]


def test_no_score_while_the_labels_are_mostly_the_quick_positives() -> None:
    # Negatives settle only when the horizon has passed: a model that has seen almost only
    # positives would score everyone high.
    model = IntentModel(SPEC)
    for _ in range(4 * SPEC.min_labels):
        model.learn(HOT, True)
    assert model.score(COLD) is None
    for _ in range(SPEC.min_labels // 2 + 1):
        model.learn(COLD, False)
    assert model.score(COLD) is not None


def test_each_label_is_predicted_before_it_is_learned() -> None:
    model = IntentModel(SPEC)
    first = model.learn(HOT, True)
    assert first == 0.5  # the untrained model's prediction, not one that has seen the label
    assert model.quality()["log_loss"] == pytest.approx(math.log(2))
    assert model.predict(HOT) > first  # and then it learned
    second = model.learn(HOT, True)
    assert second == pytest.approx(model.predict(HOT), abs=0.2) and second > first


def test_quality_reports_progressive_metrics_and_no_auc_before_both_classes() -> None:
    model = IntentModel(SPEC)
    model.learn(HOT, True)
    assert model.quality()["roc_auc"] is None
    model = trained(200)
    quality = model.quality()
    assert quality["n_labels"] == 200 and quality["n_positives"] == 100
    assert quality["positive_rate"] == 0.5
    assert quality["roc_auc"] > 0.9  # separable, and scored before learning each label
    assert quality["version"] == "buy.v200" == model.version


def test_checkpoint_round_trip_preserves_predictions_counts_and_metrics() -> None:
    model = trained(60)
    restored = IntentModel.from_bytes(model.to_bytes(), SPEC)
    assert restored.predict(HOT) == model.predict(HOT)
    assert restored.score(COLD) == model.score(COLD)
    assert restored.n_labels == 60 and restored.version == model.version
    assert restored.quality() == model.quality()
    restored.learn(HOT, True)  # and it goes on learning
    assert restored.n_labels == 61 and model.n_labels == 60


def test_a_mismatched_or_foreign_checkpoint_is_rejected_with_a_reason() -> None:
    data = trained(10).to_bytes()
    other = IntentSpec(name="churn", outcome_event_types=("cancellation_requested",), horizon_s=60)
    with pytest.raises(CheckpointError, match="intent 'buy', not 'churn'"):
        IntentModel.from_bytes(data, other)
    with pytest.raises(CheckpointError, match="not an intent model checkpoint"):
        IntentModel.from_bytes(b"garbage")
    state = pickle.loads(data)
    with pytest.raises(CheckpointError, match="format 99"):
        IntentModel.from_bytes(pickle.dumps({**state, "format": 99}))
    with pytest.raises(CheckpointError, match="features 'f0'"):
        IntentModel.from_bytes(pickle.dumps({**state, "features": "f0"}))


# ------------------------------------------------------------------ the scorer

def vector(logged_in: bool) -> list[float]:
    v = [0.0] * N_FEATURES
    v[LOGGED_IN] = 1.0 if logged_in else 0.0
    return v


def test_scores_are_absent_where_the_intent_does_not_apply_and_none_while_cold() -> None:
    scorer = IntentScorer()
    anonymous = scorer.score_all(vector(logged_in=False))
    assert anonymous == {spec.name: None for spec in DEFAULT_INTENTS}
    assert "login_propensity" not in scorer.score_all(vector(logged_in=True))


def test_step_settles_and_learns_before_it_scores_then_snapshots() -> None:
    spec = IntentSpec(name="buy", outcome_event_types=("purchase",), horizon_s=3600, min_labels=0)
    scorer = IntentScorer((spec,))
    pending: dict = {}
    first = scorer.step(pending, "page_view", T0, vector(False))
    assert first.scores == {"buy": 0.5} and first.settled == []
    assert [snap[0] for snap in pending["buy"]] == [T0]
    bought = scorer.step(pending, "purchase", T0 + 60_000, vector(False))
    assert [(s.label, s.snapshot_ts) for s in bought.settled] == [(True, T0)]
    assert bought.predictions == [0.5]
    assert bought.scores["buy"] > 0.5  # learned from the label before scoring
    assert scorer.versions() == {"buy": "buy.v1"}
    # The settled snapshot is gone, so the purchase moment is the next one kept.
    assert [snap[0] for snap in pending["buy"]] == [T0 + 60_000]
    later = T0 + 2 * 3_600_000
    late = scorer.step(pending, "page_view", later, vector(False), late=True)
    assert [(s.label, s.snapshot_ts) for s in late.settled] == [(False, T0 + 60_000)]
    assert pending == {}  # expired at this event's time, and a late event takes no snapshot


def test_scorer_checkpoint_restores_every_model_and_rejects_unknown_intents() -> None:
    scorer = IntentScorer()
    scorer.learn([SettledLabel("purchase_intent", pack(vector(False)), True, T0, T0)] * 3)
    blobs = scorer.checkpoint()
    fresh = IntentScorer()
    fresh.restore(blobs)
    assert fresh.versions() == scorer.versions()
    assert fresh.versions()["purchase_intent"] == "purchase_intent.v3"
    with pytest.raises(CheckpointError, match="unknown intent"):
        fresh.restore({"nope": blobs["churn_risk"]})
    with pytest.raises(CheckpointError, match="not 'churn_risk'"):
        fresh.restore({"churn_risk": blobs["contact_need"]})
    assert fresh.versions() == scorer.versions()  # nothing replaced by a rejected restore


def test_the_models_learn_behaviour_from_the_simulated_population() -> None:
    population = Population(seed=7, people=400, days=14)
    scorer = IntentScorer()
    states: dict[str, ReplayState] = {}
    for source, key, value in population.records():
        state = states.setdefault(population.person_of(key), ReplayState())
        fold(state, source, value)
        scorer.step(state.pending, value["type"], value["ts"],
                    extract_features(state, None, value["ts"]))
    quality = scorer.quality()
    for name in ("login_propensity", "purchase_intent", "contact_need"):
        assert quality[name]["n_labels"] > 500, quality[name]
        assert quality[name]["roc_auc"] > 0.65, quality[name]
