"""The live customer context: what a contact-centre agent or a web team sees about a person.

One record per person, built from the profile alone (so the record on the compacted
``customer-context`` topic and the answer of ``GET /context/{id}`` are the same thing), newest
first in every list. ``updated_ts`` is when the engine built the record (wall clock);
``as_of_ts`` the event time of the person's newest event.
"""

from __future__ import annotations

from typing import Any, TypedDict

from orchestrator.core.profile import Profile, queries
from orchestrator.core.stage import journey_stage, open_case

CONTEXT_PAGES = 10
CONTEXT_ACTIONS = 10
#: Why an action was sent, as remembered on the profile (besides the ``scores`` it saw).
_WHY = ("rule", "reason")


class CustomerContext(TypedDict):
    """One person's customer-context record: the value on the ``customer-context`` topic and the
    body of ``GET /context/{id}`` (fields as README's "Output `customer-context`" documents them)."""

    person_id: str
    customer_id: str | None
    visitor_ids: list[str]
    logged_in: bool
    stage: str
    consent: dict[str, bool]
    open_case: str | None
    scores: dict[str, dict[str, Any]]
    session: dict[str, Any] | None
    sessions: int
    events_seen: int
    first_seen_ts: int
    recent_pages: list[dict[str, Any]]
    recent_contacts: list[dict[str, Any]]
    recent_actions: list[dict[str, Any]]
    as_of_ts: int
    updated_ts: int


def context_record(profile: Profile, updated_ts: int,
                   model_versions: dict[str, str] | None = None) -> CustomerContext:
    """The customer-context record of ``profile`` (plain JSON-able data, sharing nothing
    mutable with the profile)."""
    current = queries.current_session(profile)
    versions = model_versions or {}
    visitors = profile.visitors
    return {
        "person_id": profile.person_id,
        "customer_id": profile.customer_id,
        "visitor_ids": (list(visitors) if len(visitors) < 2
                        else queries.visitor_ids_newest_first(profile)),
        "logged_in": profile.logged_in,
        "stage": journey_stage(profile),
        "consent": queries.consent(profile).to_dict(),
        "open_case": open_case(profile),
        "scores": {
            intent: {"score": score, "trusted": score is not None, "model": versions.get(intent)}
            for intent, score in sorted(profile.scores.items())
        },
        "session": None if current is None else {
            "id": profile.session_id, "started_ts": current[1].start, "last_ts": current[1].last,
            "topics": dict(current[1].views),
        },
        "sessions": profile.sessions,
        "events_seen": profile.events_seen,
        "first_seen_ts": profile.first_seen_ts,
        "recent_pages": [dict(page) for page in reversed(profile.recent_pages[-CONTEXT_PAGES:])],
        "recent_contacts": [dict(contact) for contact in reversed(profile.recent_contacts)],
        "recent_actions": [
            {key: action[key] for key in ("action_id", "action", "channel", "ts", "outcome")}
            | {key: action[key] for key in _WHY if key in action}
            | ({"scores": dict(action["scores"])} if "scores" in action else {})
            | ({"holdout": True} if action.get("holdout") else {})
            for action in reversed(profile.recent_actions[-CONTEXT_ACTIONS:])
        ],
        "as_of_ts": profile.last_seen_ts,
        "updated_ts": updated_ts,
    }
