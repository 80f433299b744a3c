"""The live profile of one person, how an event changes it, and how two profiles merge.

- :mod:`.state` — the profile and its parts, small types with ``add`` and ``join``, and the
  stored layout;
- :mod:`.fold` — :func:`apply_event`, :func:`merge_profiles`, :func:`record_sent`,
  :func:`note_scores` (order-independent, idempotent);
- :mod:`.queries` — what rules, stage, features and context read;
- :mod:`.pending` — the stored layout of the intent models' pending moments, and its join.
"""

from orchestrator.core.profile import queries
from orchestrator.core.profile.fold import (
    DWELL_CAP_MS,
    DWELL_MAX_GAP_MS,
    apply_event,
    dwell_ms,
    effective_ts,
    erased_before,
    erasure_marker,
    event_identity,
    is_erasure_marker,
    merge_profiles,
    note_scores,
    record_sent,
)
from orchestrator.core.profile.state import (
    DEFAULT_CONSENT,
    EARLY_OUTCOMES,
    EVENT_TIMES_PER_TYPE,
    OUTCOME_RANK,
    RECENT_ACTIONS,
    RECENT_CONTACTS,
    RECENT_PAGES,
    REPLAY_GUARD,
    SENT_LOG_MS,
    SENT_LOG_PER_KEY,
    SESSION_GAP_MS,
    SESSIONS_KEPT,
    VISITORS_KEPT,
    WINDOW_PREFIX,
    Consent,
    Outcome,
    Profile,
    Register,
    Session,
    SessionLog,
)

__all__ = [
    "DEFAULT_CONSENT", "DWELL_CAP_MS", "DWELL_MAX_GAP_MS", "EARLY_OUTCOMES", "EVENT_TIMES_PER_TYPE",
    "OUTCOME_RANK", "RECENT_ACTIONS", "RECENT_CONTACTS", "RECENT_PAGES", "REPLAY_GUARD",
    "SENT_LOG_MS", "SENT_LOG_PER_KEY", "SESSIONS_KEPT", "SESSION_GAP_MS", "VISITORS_KEPT",
    "WINDOW_PREFIX", "Consent", "Outcome", "Profile", "Register", "Session", "SessionLog",
    "apply_event", "dwell_ms", "effective_ts", "erased_before", "erasure_marker", "event_identity",
    "is_erasure_marker", "merge_profiles", "note_scores", "queries",
    "record_sent",
]
