"""Features of a person at one moment, computed cheaply from the live profile.

:func:`extract_features` returns a list of floats in the fixed order :data:`FEATURE_NAMES`:
one list per event, shared by every intent. It is what a snapshot stores (packed to integers by
:func:`pack`, see :mod:`.labels`) and it becomes a sparse dict only for River (:func:`as_dict`),
which takes dicts and skips absent (zero) features, so zeros cost nothing there.

Every feature is scaled to [0, 1] by construction (counts as ``log1p(n) / log1p(cap)`` capped
at 1, angles as ``(sin + 1) / 2``, flags as 0/1), so the models need no scaler; the reasons are
in docs/intent-scoring.md. Time is the event's (``now_ts``), never the wall clock, so a replay
of the same events gives the same features.

Call it after the event has been applied to the profile: the features describe the person
including this event. Only the attributes of :class:`ProfileView` are read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

#: Changes whenever the meaning or order of the features changes; checkpoints carry it.
FEATURES_VERSION = "f1"

#: Page categories counted one by one in the session; any other category counts as "other".
CATEGORIES: tuple[str, ...] = (
    "home", "billing", "invoices", "account", "contract", "moving", "self-service", "help",
    "products", "pricing", "offers", "cancellation", "contact",
)
#: Reasons of the last contact-centre contact, one-hot; an unknown or missing reason is "other".
CONTACT_REASONS: tuple[str, ...] = ("billing", "moving", "contract", "cancellation", "technical",
                                    "other")

FEATURE_NAMES: tuple[str, ...] = (
    *(f"session_cat_{c}" for c in CATEGORIES), "session_cat_other",
    "pages_decayed_1h", "pages_decayed_1d", "session_pages", "dwell", "recency",
    "sessions", "events_seen", "tenure", "identified", "logged_in",
    "contacts_7d", *(f"last_contact_{r}" for r in CONTACT_REASONS),
    "last_contact_negative", "last_contact_positive", "last_contact_age",
    "hour_sin", "hour_cos", "weekend",
    "actions_7d", "actions_clicked_7d", "actions_dismissed_7d", "actions_converted_7d",
    "searches_24h", "form_starts_24h", "forms_abandoned_24h", "add_to_cart_24h", "logins_7d",
)
N_FEATURES = len(FEATURE_NAMES)
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}
LOGGED_IN = FEATURE_INDEX["logged_in"]

SECOND_MS = 1000
HOUR_MS = 3600 * SECOND_MS
DAY_MS = 24 * HOUR_MS
SESSION_GAP_MS = 30 * 60 * SECOND_MS
#: Packed snapshots store round(value * PACK_SCALE) as an int: 2 decimals, 1-3 JSON characters.
PACK_SCALE = 100

_CAT_INDEX = {c: i for i, c in enumerate(CATEGORIES)}
_OTHER_CAT = len(CATEGORIES)
_REASON_INDEX = {r: i for i, r in enumerate(CONTACT_REASONS)}
_OTHER_REASON = _REASON_INDEX["other"]
_NO_REASON = (0.0,) * len(CONTACT_REASONS)
_REASON_ONE_HOT = tuple(tuple(1.0 if j == i else 0.0 for j in range(len(CONTACT_REASONS)))
                        for i in range(len(CONTACT_REASONS)))
# Decay rates per millisecond for half-lives of one hour and one day.
_DECAY_1H = math.log(2) / HOUR_MS
_DECAY_1D = math.log(2) / DAY_MS
_TWO_PI_PER_DAY_MS = 2 * math.pi / DAY_MS


def _log_scale(cap: float) -> float:
    return 1.0 / math.log1p(cap)


# Caps of the log-scaled counts: the count at which a feature reaches 1.
_INV_10 = _log_scale(10)
_INV_20 = _log_scale(20)
_INV_SESSIONS = _log_scale(200)
_INV_EVENTS = _log_scale(10_000)
_INV_RECENCY = _log_scale(30 * 24 * 3600)      # seconds: 30 days
_INV_DWELL = _log_scale(SESSION_GAP_MS / 1000)  # seconds: a session gap
_INV_TENURE = _log_scale(365)                   # days
_INV_CONTACT_AGE = _log_scale(90)               # days


class ProfileView(Protocol):
    """The profile attributes the features read (and the only ones)."""

    recent_pages: list[dict[str, Any]]
    session_topic_views: dict[str, int]
    sessions: int
    events_seen: int
    logged_in: bool
    customer_id: str | None
    first_seen_ts: int
    last_seen_ts: int
    recent_contacts: list[dict[str, Any]]
    recent_actions: list[dict[str, Any]]
    event_times: dict[str, list[int]]


def _lg(value: float, inv_cap: float) -> float:
    # log1p scaling capped at 1; negative input (bad data) counts as 0.
    if value <= 0:
        return 0.0
    scaled = math.log1p(value) * inv_cap
    return scaled if scaled < 1.0 else 1.0


def _count_since(times: list[int] | None, since: int, now: int) -> int:
    # times is sorted oldest first and short (<= 10): walk back from the newest.
    if not times:
        return 0
    n = 0
    for t in reversed(times):
        if t <= now:
            if t < since:
                break
            n += 1
    return n


def extract_features(profile: ProfileView, event: Any, now_ts: int) -> list[float]:
    """The feature vector of ``profile`` at event time ``now_ts``, in :data:`FEATURE_NAMES` order.

    Promises: exactly :data:`N_FEATURES` finite floats, each in [0, 1], for any profile whose
    attributes have the documented types; items stamped after ``now_ts`` (a late event being
    scored) are ignored; no wall clock. ``event`` is accepted for future event-level features
    and is not read today: the profile already holds the event.
    """
    now = now_ts
    # Session page categories (the profile resets them at each new session).
    cats = [0] * (len(CATEGORIES) + 1)
    session_total = 0
    for cat, n in profile.session_topic_views.items():
        cats[_CAT_INDEX.get(cat, _OTHER_CAT)] += n
        session_total += n

    # Page views: decayed counts, and the current session's dwell from page timestamps.
    decayed_1h = decayed_1d = 0.0
    previous = 0
    newest_page = session_start = -1
    in_session = 0
    extending = False
    exp = math.exp
    for page in reversed(profile.recent_pages):
        ts = page["ts"]
        if ts > now:
            continue
        age = now - ts
        decayed_1h += exp(-age * _DECAY_1H)
        decayed_1d += exp(-age * _DECAY_1D)
        if newest_page < 0:
            newest_page = session_start = ts
            in_session = 1
            extending = True
        elif extending:
            if session_start - ts <= SESSION_GAP_MS:
                session_start = ts
                in_session += 1
            else:
                extending = False  # a session gap: older pages belong to an earlier visit
        if ts < now and ts > previous:
            previous = ts
    dwell_s = ((newest_page - session_start) / (in_session - 1) / 1000 if in_session > 1 else 0.0)

    # Event-type timestamps: windows of counts, and the previous event for recency.
    times = profile.event_times
    for series in times.values():
        for t in reversed(series):
            if t < now:
                if t > previous:
                    previous = t
                break
    day_ago = now - DAY_MS
    week_ago = now - 7 * DAY_MS
    form_starts = _count_since(times.get("form_start"), day_ago, now)
    form_submits = _count_since(times.get("form_submit"), day_ago, now)

    # Contact centre: count in 7 days and what the last contact was about.
    contacts_7d = 0
    last_contact = None
    for contact in reversed(profile.recent_contacts):
        ts = contact["ts"]
        if ts > now:
            continue
        if last_contact is None:
            last_contact = contact
        if ts < now and ts > previous:
            previous = ts
        if ts < week_ago:
            break
        contacts_7d += 1
    if last_contact is None:
        reason = _NO_REASON
        negative = positive = 0.0
        contact_age = 1.0
    else:
        reason = _REASON_ONE_HOT[_REASON_INDEX.get(last_contact.get("reason"), _OTHER_REASON)]
        sentiment = last_contact.get("sentiment") or 0.0
        negative = min(1.0, -sentiment) if sentiment < 0 else 0.0
        positive = min(1.0, sentiment) if sentiment > 0 else 0.0
        contact_age = _lg((now - last_contact["ts"]) / DAY_MS, _INV_CONTACT_AGE)

    # Actions sent to the person in 7 days (held-out ones were never shown) and their outcomes.
    actions = clicked = dismissed = converted = 0
    for action in reversed(profile.recent_actions):
        ts = action["ts"]
        if ts > now or action.get("holdout"):
            continue
        if ts < week_ago:
            break
        actions += 1
        outcome = action.get("outcome")
        if outcome == "clicked":
            clicked += 1
        elif outcome == "dismissed":
            dismissed += 1
        elif outcome == "converted":
            converted += 1

    recency = _lg((now - previous) / 1000, _INV_RECENCY) if previous else 1.0
    tenure_days = (now - profile.first_seen_ts) / DAY_MS if profile.first_seen_ts else 0.0
    angle = (now % DAY_MS) * _TWO_PI_PER_DAY_MS
    weekday = (now // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    return [
        *[_lg(n, _INV_10) for n in cats],
        _lg(decayed_1h, _INV_20), _lg(decayed_1d, _INV_20),
        _lg(session_total, _INV_20), _lg(dwell_s, _INV_DWELL), recency,
        _lg(profile.sessions, _INV_SESSIONS), _lg(profile.events_seen, _INV_EVENTS),
        _lg(tenure_days, _INV_TENURE),
        1.0 if profile.customer_id is not None else 0.0, 1.0 if profile.logged_in else 0.0,
        _lg(contacts_7d, _INV_10), *reason, negative, positive, contact_age,
        (math.sin(angle) + 1.0) * 0.5, (math.cos(angle) + 1.0) * 0.5,
        1.0 if weekday >= 5 else 0.0,
        _lg(actions, _INV_10), _lg(clicked, _INV_10), _lg(dismissed, _INV_10),
        _lg(converted, _INV_10),
        _lg(_count_since(times.get("search"), day_ago, now), _INV_10),
        _lg(form_starts, _INV_10), _lg(max(0, form_starts - form_submits), _INV_10),
        _lg(_count_since(times.get("add_to_cart"), day_ago, now), _INV_10),
        _lg(_count_since(times.get("login"), week_ago, now), _INV_10),
    ]


def as_dict(features: Sequence[float]) -> dict[str, float]:
    """A River input: the non-zero features by name (River treats an absent feature as 0).

    >>> as_dict([0.0] * (N_FEATURES - 1) + [0.5])
    {'logins_7d': 0.5}
    """
    return {name: v for name, v in zip(FEATURE_NAMES, features, strict=True) if v}


def pack(features: Sequence[float]) -> list[int]:
    """The stored form of a vector: integers in hundredths (a zero is one JSON character).

    >>> pack([0.0, 0.12345, 1.0])
    [0, 12, 100]
    """
    return [round(v * PACK_SCALE) for v in features]


_UNPACK = 1.0 / PACK_SCALE


def unpack(packed: Sequence[int]) -> dict[str, float]:
    """The River input for a packed vector (see :func:`as_dict`)."""
    return {name: v * _UNPACK for name, v in zip(FEATURE_NAMES, packed, strict=True) if v}


def describe(features: Sequence[float] | Mapping[str, float]) -> dict[str, float]:
    """All features by name (for debugging and the context view), zeros included."""
    if isinstance(features, Mapping):
        return {name: float(features.get(name, 0.0)) for name in FEATURE_NAMES}
    return dict(zip(FEATURE_NAMES, features, strict=True))
