"""The live profile of one person and how an event changes it.

A profile is plain data (a slotted dataclass) that round-trips through JSON, so that the
table can store it as bytes and a test can build one by hand. ``apply_event`` updates a profile
the runtime owns (decoded fresh from the table for each event), so it mutates in place rather
than copying a few dozen fields per event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.core.events import (
    ActionFeedbackEvent,
    ClickstreamEvent,
    ContactCentreEvent,
    Event,
    event_type,
)

SESSION_GAP_MS = 30 * 60 * 1000
RECENT_PAGES = 20
RECENT_CONTACTS = 10
RECENT_ACTIONS = 20
# Enough to recognise a replay after a crash (records since the last committed offset).
REMEMBERED_EVENT_IDS = 64
# Timestamps kept per event type other than page_view (page views are in recent_pages): what
# rules' counts in time windows, "since" and "stop_after" read. Types are a closed set (unknown
# clickstream types are "other"), so this is bounded too.
EVENT_TIMES_PER_TYPE = 10
# Sends remembered per cap key for per-day / per-week caps: at most this many, none older than
# SENT_LOG_MS before the newest.
SENT_LOG_PER_KEY = 32
SENT_LOG_MS = 7 * 24 * 3600 * 1000


@dataclass(slots=True)
class Profile:
    """Everything the engine keeps about one person."""

    person_id: str
    visitor_id: str | None = None
    customer_id: str | None = None
    logged_in: bool = False
    first_seen_ts: int = 0
    last_seen_ts: int = 0
    events_seen: int = 0
    sessions: int = 0
    session_id: str | None = None
    session_started_ts: int = 0
    session_topic_views: dict[str, int] = field(default_factory=dict)
    recent_pages: list[dict[str, Any]] = field(default_factory=list)
    recent_contacts: list[dict[str, Any]] = field(default_factory=list)
    recent_actions: list[dict[str, Any]] = field(default_factory=list)
    consent: dict[str, bool] = field(default_factory=lambda: {"service": True, "marketing": False})
    last_sent: dict[str, int] = field(default_factory=dict)
    seen_event_ids: list[str] = field(default_factory=list)
    event_times: dict[str, list[int]] = field(default_factory=dict)
    sent_log: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        known = {k: v for k, v in data.items() if k in _PROFILE_FIELDS}
        return cls(**known)


_PROFILE_FIELDS = frozenset(Profile.__dataclass_fields__)


def event_identity(event: Event) -> str:
    """A stable id for recognising a replayed record (feedback has no event id of its own)."""
    if isinstance(event, ActionFeedbackEvent):
        return f"feedback:{event.action_id}:{event.outcome}"
    return event.event_id


def apply_event(profile: Profile, event: Event, session_gap_ms: int = SESSION_GAP_MS) -> bool:
    """Fold ``event`` into ``profile``; return False (and change nothing) for a replay.

    Time moves forward only: an out-of-order event updates counts and lists but never moves
    ``last_seen_ts`` back.
    """
    identity = event_identity(event)
    if identity in profile.seen_event_ids:
        return False
    _remember(profile.seen_event_ids, identity, REMEMBERED_EVENT_IDS)
    profile.events_seen += 1
    if profile.first_seen_ts == 0 or event.ts < profile.first_seen_ts:
        profile.first_seen_ts = event.ts
    previous_seen = profile.last_seen_ts
    profile.last_seen_ts = max(profile.last_seen_ts, event.ts)

    if isinstance(event, ClickstreamEvent):
        _apply_clickstream(profile, event, previous_seen, session_gap_ms)
    elif isinstance(event, ContactCentreEvent):
        _apply_contact(profile, event)
    else:
        _apply_feedback(profile, event)
    kind = event_type(event)
    if kind != "page_view":
        times = profile.event_times.setdefault(kind, [])
        _remember(times, event.ts, EVENT_TIMES_PER_TYPE)
        if len(times) > 1 and times[-1] < times[-2]:  # out of order: keep the list sorted
            times.sort()
    return True


def _apply_clickstream(profile: Profile, event: ClickstreamEvent, previous_seen: int,
                       session_gap_ms: int) -> None:
    if profile.visitor_id is None:
        profile.visitor_id = event.visitor_id
    new_session = (
        profile.sessions == 0
        or (event.session_id is not None and event.session_id != profile.session_id)
        or (event.session_id is None and event.ts - previous_seen > session_gap_ms)
    )
    if new_session and event.ts >= profile.session_started_ts:
        profile.sessions += 1
        profile.session_id = event.session_id
        profile.session_started_ts = event.ts
        profile.session_topic_views = {}
    if event.customer_id is not None:
        profile.customer_id = event.customer_id
        profile.logged_in = event.type != "logout"
    elif event.type == "logout":
        profile.logged_in = False
    if event.type in ("login", "signup") and event.customer_id is not None:
        profile.logged_in = True
    if event.consent is not None:
        profile.consent = {"service": event.consent.service, "marketing": event.consent.marketing}
    page = event.page
    if page is not None and event.type == "page_view":
        # A late page view from an earlier session must not count towards this one.
        in_current_session = (event.session_id == profile.session_id
                              if event.session_id is not None
                              else event.ts >= profile.session_started_ts)
        if page.category and in_current_session:
            views = profile.session_topic_views
            views[page.category] = views.get(page.category, 0) + 1
        _remember(profile.recent_pages,
                  {"ts": event.ts, "url": page.url, "category": page.category}, RECENT_PAGES)


def _apply_contact(profile: Profile, event: ContactCentreEvent) -> None:
    profile.customer_id = event.customer_id
    if event.consent is not None:
        profile.consent = {"service": event.consent.service, "marketing": event.consent.marketing}
    if event.channel is not None:
        _remember(profile.recent_contacts, {
            "ts": event.ts, "type": event.type, "channel": event.channel,
            "reason": event.reason, "sentiment": event.sentiment,
        }, RECENT_CONTACTS)


def _apply_feedback(profile: Profile, event: ActionFeedbackEvent) -> None:
    for sent in profile.recent_actions:
        if sent["action_id"] == event.action_id:
            sent["outcome"] = event.outcome
            sent["outcome_ts"] = event.ts
            return


def record_sent(profile: Profile, action_record: dict[str, Any], cap_key: str,
                event_ts: int, *, holdout: bool = False) -> None:
    """Remember an action we sent: its cooldown clock (event time), caps and outcome slot.

    A held-out action (the control group: decided, not sent) is remembered the same way, marked
    ``holdout``, so that the control group is paced exactly like the people who get the action.
    """
    profile.last_sent[cap_key] = max(profile.last_sent.get(cap_key, 0), event_ts)
    log = profile.sent_log
    for key in [k for k, times in log.items() if times and times[-1] <= event_ts - SENT_LOG_MS]:
        del log[key]  # nothing of it is inside any cap window any more
    times = log.setdefault(cap_key, [])
    times.append(event_ts)
    times.sort()
    horizon = times[-1] - SENT_LOG_MS
    del times[: max(len(times) - SENT_LOG_PER_KEY, sum(1 for t in times if t <= horizon))]
    entry: dict[str, Any] = {
        "action_id": action_record["action_id"], "action": action_record["action"],
        "channel": action_record["channel"], "ts": event_ts, "outcome": None,
    }
    if holdout:
        entry["holdout"] = True
    _remember(profile.recent_actions, entry, RECENT_ACTIONS)


def _remember(items: list, item: Any, bound: int) -> None:
    items.append(item)
    if len(items) > bound:
        del items[: len(items) - bound]
