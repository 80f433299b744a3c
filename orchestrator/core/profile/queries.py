"""What the rest of the core reads from a profile: rule conditions and arbitration, the journey
stage, the intent features and the customer context.

Readers go through these functions (or the profile's plain named fields: ids, first/last seen,
the entry lists of pages, contacts and actions) and never through the layout of a part: how a
session, a register or the feedback outcomes are kept is :mod:`.state`'s business. All times
are event times.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.core.profile.state import DEFAULT_CONSENT, Consent, Profile, Session

_NO_TIMES: tuple[int, ...] = ()


def consent(profile: Profile) -> Consent:
    """The person's consent: the newest consent_updated, else the default (service only)."""
    return DEFAULT_CONSENT if profile.consent is None else profile.consent.value


def consents_to(profile: Profile, category: str) -> bool:
    """Whether messages of ``category`` (``service``, ``marketing``) may go to the person."""
    return consent(profile).allows(category)


def current_session(profile: Profile) -> tuple[str, Session] | None:
    """The session key and record of the session with the newest activity."""
    return profile.session_log.current()


def session_dwell(profile: Profile, session_key: str) -> dict[str, int] | None:
    """Settled time on page by category in a kept session (None: nothing settled)."""
    return profile.session_dwell.get(session_key)


def visitor_ids_newest_first(profile: Profile) -> list[str]:
    """The person's visitor ids (devices), the one seen most recently first."""
    return [visitor for visitor, _ in
            sorted(profile.visitors.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def times_of(profile: Profile, event_type: str) -> Sequence[int]:
    """Event times of the person's newest events of ``event_type`` (not page_view), oldest first."""
    return profile.event_times.get(event_type, _NO_TIMES)


def has_done(profile: Profile, event_type: str) -> bool:
    """Whether the profile holds any event of ``event_type``."""
    if event_type == "page_view":
        return bool(profile.recent_pages)
    return bool(profile.event_times.get(event_type))


def count_in_window(profile: Profile, event_type: str, start: int, now: int) -> int:
    """Events of ``event_type`` (not page_view) with ``start < ts <= now``."""
    return sum(1 for t in times_of(profile, event_type) if start < t <= now)


def last_event_ts(profile: Profile, event_type: str, now: int) -> int | None:
    """Time of the newest event of ``event_type`` at or before ``now`` (None: none kept)."""
    if event_type == "page_view":
        return max((p["ts"] for p in profile.recent_pages if p["ts"] <= now), default=None)
    return max((t for t in times_of(profile, event_type) if t <= now), default=None)


def last_action_ts(profile: Profile, action: str) -> int | None:
    """When ``action`` was last sent (or held out) to the person, among the recent actions."""
    return max((a["ts"] for a in profile.recent_actions if a.get("action") == action), default=None)


def converted_on_an_action(profile: Profile) -> bool:
    """Whether the person converted on one of the recent actions."""
    return any(a.get("outcome") == "converted" for a in profile.recent_actions)


def last_sent_ts(profile: Profile, cap_key: str) -> int | None:
    """Event time of the newest send under ``cap_key`` (its cooldown clock)."""
    return profile.last_sent.get(cap_key)


def sends_of(profile: Profile, cap_key: str) -> Sequence[int]:
    """Event times of the recent sends under ``cap_key`` (per-day / per-week caps)."""
    return profile.sent_log.get(cap_key, _NO_TIMES)
