"""Online intent scoring, pure: features, delayed labels, one River model per intent.

The per-event use (see docs/intent-scoring.md)::

    vector = extract_features(profile, event, event.ts)        # after applying the event
    scores, settled, predictions, learned = scorer.step(pending, event_type(event), event.ts,
                                                        vector, late=...)

``pending`` is the person's plain dict of snapshots awaiting their outcome (stored in the
profile); a periodic sweep calls :func:`settle_expired` for people who went quiet (use
:func:`earliest_deadline` to index them) and passes the result to ``scorer.learn``.
"""

from orchestrator.core.scoring.features import (
    FEATURE_NAMES,
    FEATURES_VERSION,
    N_FEATURES,
    ProfileView,
    SparseVector,
    as_dict,
    describe,
    extract_features,
    pack,
    sparse,
    unpack,
)
from orchestrator.core.scoring.intents import (
    DEFAULT_INTENTS,
    MODEL_NAMES,
    IntentSpec,
    IntentSpecError,
    load_intents,
)
from orchestrator.core.scoring.labels import (
    Pending,
    SettledLabel,
    applies,
    earliest_deadline,
    priority,
    settle_expired,
    settle_on_event,
    snapshot,
)
from orchestrator.core.scoring.model import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    IntentModel,
    servable_score,
    trusted_score,
)
from orchestrator.core.scoring.scorer import IntentScorer, ProfileScorer, StepResult

__all__ = [
    "CHECKPOINT_FORMAT",
    "DEFAULT_INTENTS",
    "FEATURES_VERSION",
    "FEATURE_NAMES",
    "MODEL_NAMES",
    "N_FEATURES",
    "CheckpointError",
    "IntentModel",
    "IntentScorer",
    "IntentSpec",
    "IntentSpecError",
    "Pending",
    "ProfileScorer",
    "ProfileView",
    "SettledLabel",
    "SparseVector",
    "StepResult",
    "applies",
    "as_dict",
    "describe",
    "earliest_deadline",
    "extract_features",
    "load_intents",
    "pack",
    "priority",
    "servable_score",
    "settle_expired",
    "settle_on_event",
    "snapshot",
    "sparse",
    "trusted_score",
    "unpack",
]
