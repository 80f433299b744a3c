"""Features of a person at one moment, computed cheaply from the live profile.

:func:`extract_features` returns a list of floats in the fixed order :data:`FEATURE_NAMES`:
one list per event, shared by every intent. The values are **already quantised** to
thousandths (:data:`PACK_SCALE`): the vector that is scored is exactly the vector a snapshot
stores (:func:`pack`, sparse and lossless on it; :func:`unpack` gives back the same floats), so a model
learns from precisely what it served. It becomes a sparse dict only for River (:func:`as_dict`),
which skips absent (zero) features.

Counts and durations are log-scaled, ``log1p(x) / log1p(scale)``, with a *scale* (the value
that maps to 1) chosen high enough that real sessions stay below it, and no cap below
:data:`MAX_VALUE`: the deepest sessions keep getting larger values. Angles are ``(sin + 1) / 2``
and flags 0/1. The reasons for each feature are in docs/intent-scoring.md. Time is the event's
(``now_ts``), never the wall clock, so a replay of the same events gives the same features.

Call it after the event has been applied to the profile: the features describe the person
including this event. The profile is read through :mod:`orchestrator.core.profile.queries` and
its plain named fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.core.profile import DWELL_CAP_MS, DWELL_MAX_GAP_MS, Profile, queries

#: Changes whenever the meaning or order of the features changes; checkpoints carry it.
FEATURES_VERSION = "f2"

#: Page categories with features of their own; any other category counts as "other".
CATEGORIES: tuple[str, ...] = (
    "home", "billing", "invoices", "account", "contract", "moving", "self-service", "help",
    "products", "pricing", "offers", "cancellation", "contact",
)
#: Reasons of the last contact-centre contact, one-hot; an unknown or missing reason is "other".
CONTACT_REASONS: tuple[str, ...] = ("billing", "moving", "contract", "cancellation", "technical",
                                    "other")
_CATS = (*CATEGORIES, "other")

FEATURE_NAMES: tuple[str, ...] = (
    *(f"views_{c}" for c in _CATS), *(f"dwell_{c}" for c in _CATS),
    *(f"before_views_{c}" for c in _CATS), *(f"before_dwell_{c}" for c in _CATS),
    "sessions_before", "recency", "tenure", "identified", "logged_in",
    "contacts_7d", *(f"last_contact_{r}" for r in CONTACT_REASONS),
    "last_contact_negative", "last_contact_positive", "last_contact_age",
    "hour_sin", "hour_cos", "weekend",
    "searches_24h", "form_starts_24h", "forms_abandoned_24h", "add_to_cart_24h", "logins_7d",
    "purchases_30d",
)
N_FEATURES = len(FEATURE_NAMES)
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}
LOGGED_IN = FEATURE_INDEX["logged_in"]

SECOND_MS = 1000
HOUR_MS = 3600 * SECOND_MS
DAY_MS = 24 * HOUR_MS
#: Vectors are quantised to 1 / PACK_SCALE; packed snapshots store the integers.
PACK_SCALE = 1000
#: No feature exceeds this (a guard against absurd input, far above real values).
MAX_VALUE = 3.0

_N_CATS = len(_CATS)
_CAT_INDEX = {c: i for i, c in enumerate(CATEGORIES)}
_OTHER_CAT = len(CATEGORIES)
_REASON_INDEX = {r: i for i, r in enumerate(CONTACT_REASONS)}
_OTHER_REASON = _REASON_INDEX["other"]
_NO_REASON = (0.0,) * len(CONTACT_REASONS)
_REASON_ONE_HOT = tuple(tuple(1.0 if j == i else 0.0 for j in range(len(CONTACT_REASONS)))
                        for i in range(len(CONTACT_REASONS)))
_TWO_PI_PER_DAY_MS = 2 * math.pi / DAY_MS


def _inv(scale: float) -> float:
    return 1.0 / math.log1p(scale)


# Scales: the value at which a log-scaled feature reaches 1 (it may go above, to MAX_VALUE).
_INV_VIEWS = _inv(100)                  # page views of one category
_INV_DWELL = _inv(3600)                 # seconds on one category
_INV_SESSIONS = _inv(100)
_INV_RECENCY = _inv(30 * 24 * 3600)     # seconds: 30 days
_INV_TENURE = _inv(365)                 # days
_INV_CONTACT_AGE = _inv(90)             # days
_INV_10 = _inv(10)                      # event counts in a window (the profile keeps 10 per type)


#: What the features read: a profile (the name is kept for importers of this module).
ProfileView = Profile


def _q(value: float) -> float:
    # The quantisation every feature goes through: thousandths, at most MAX_VALUE.
    if value <= 0.0:
        return 0.0
    if value >= MAX_VALUE:
        return MAX_VALUE
    return int(value * PACK_SCALE + 0.5) / PACK_SCALE


def _lg(value: float, inv_scale: float) -> float:
    # log1p scaling, quantised; negative input (bad data) counts as 0.
    if value <= 0:
        return 0.0
    return _q(math.log1p(value) * inv_scale)


# Tables of the two most frequent scalings: page views (an int) and time on page (whole seconds).
_TABLE = 1 << 16
_VIEWS = [0.0] + [_q(math.log1p(n) * _INV_VIEWS) for n in range(1, _TABLE)]
_SECONDS = [0.0] + [_q(math.log1p(n) * _INV_DWELL) for n in range(1, _TABLE)]


def _views(n: int) -> float:
    return _VIEWS[n] if 0 <= n < _TABLE else _lg(n, _INV_VIEWS)


def _seconds(ms: int) -> float:
    # Time on page in whole seconds, log-scaled.
    s = ms // 1000
    return _SECONDS[s] if 0 <= s < _TABLE else _lg(s, _INV_DWELL)


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


def extract_features(profile: Profile, event: Any, now_ts: int) -> list[float]:
    """The feature vector of ``profile`` at event time ``now_ts``, in :data:`FEATURE_NAMES` order.

    Promises: exactly :data:`N_FEATURES` finite floats, each in [0, :data:`MAX_VALUE`] and a
    multiple of 1 / :data:`PACK_SCALE`, for any profile whose attributes have the documented
    types; no wall clock. Windows of the recent pages, contacts and event times ignore items
    stamped after ``now_ts`` (a late event being scored); the session and lifetime totals are
    as the profile holds them. ``event`` is accepted for future event-level features and is not
    read today: the profile already holds the event.
    """
    now = now_ts
    # Page views and time on page per category: this session, and all sessions before it.
    s_views = [0] * _N_CATS
    s_dwell = [0] * _N_CATS
    t_views = [0] * _N_CATS
    t_dwell = [0] * _N_CATS
    current = queries.current_session(profile)
    start = last = -1
    if current is not None:
        key, session = current
        start, last = session.start, session.last
        for cat, n in session.views.items():
            s_views[_CAT_INDEX.get(cat, _OTHER_CAT)] += n
        settled = queries.session_dwell(profile, key)
        if settled:
            for cat, ms in settled.items():
                s_dwell[_CAT_INDEX.get(cat, _OTHER_CAT)] += ms
    for cat, (n, ms) in profile.page_totals.items():
        i = _CAT_INDEX.get(cat, _OTHER_CAT)
        t_views[i] += n
        t_dwell[i] += ms
    # Time on the pages still in recent_pages: the gap to the next one (profile.dwell_ms).
    previous = 0
    following = -1
    for page in reversed(profile.recent_pages):
        ts = page["ts"]
        if ts > now:
            continue
        if following >= 0:
            gap = following - ts
            cat = page["category"]
            if cat and 0 < gap <= DWELL_MAX_GAP_MS:
                ms = gap if gap < DWELL_CAP_MS else DWELL_CAP_MS
                i = _CAT_INDEX.get(cat, _OTHER_CAT)
                t_dwell[i] += ms
                if start <= ts <= last:
                    s_dwell[i] += ms
        following = ts
        if ts < now and ts > previous:
            previous = ts

    # Event-type timestamps: windows of counts, and the previous event for recency.
    times = profile.event_times  # type -> times, oldest first (queries.times_of, in bulk)
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
        negative = _q(-sentiment) if sentiment < 0 else 0.0
        positive = _q(sentiment) if sentiment > 0 else 0.0
        contact_age = _lg((now - last_contact["ts"]) / DAY_MS, _INV_CONTACT_AGE)

    recency = _lg((now - previous) / 1000, _INV_RECENCY) if previous else 1.0
    tenure_days = (now - profile.first_seen_ts) / DAY_MS if profile.first_seen_ts else 0.0
    angle = (now % DAY_MS) * _TWO_PI_PER_DAY_MS
    weekday = (now // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    in_session = 1 if current is not None else 0
    lg = _lg
    views_table, seconds_table = _VIEWS, _SECONDS
    return [
        *[views_table[n] if 0 <= n < _TABLE else _views(n) for n in s_views],
        *[seconds_table[ms // 1000] if 0 <= ms < 65_536_000 else _seconds(ms) for ms in s_dwell],
        *[_views(t - s) for t, s in zip(t_views, s_views, strict=True)],
        *[_seconds(t - s) for t, s in zip(t_dwell, s_dwell, strict=True)],
        lg(profile.sessions - in_session, _INV_SESSIONS), recency,
        lg(tenure_days, _INV_TENURE),
        1.0 if profile.customer_id is not None else 0.0, 1.0 if profile.logged_in else 0.0,
        lg(contacts_7d, _INV_10), *reason, negative, positive, contact_age,
        _q((math.sin(angle) + 1.0) * 0.5), _q((math.cos(angle) + 1.0) * 0.5),
        1.0 if weekday >= 5 else 0.0,
        lg(_count_since(times.get("search"), day_ago, now), _INV_10),
        lg(form_starts, _INV_10), lg(max(0, form_starts - form_submits), _INV_10),
        lg(_count_since(times.get("add_to_cart"), day_ago, now), _INV_10),
        lg(_count_since(times.get("login"), week_ago, now), _INV_10),
        lg(_count_since(times.get("purchase"), now - 30 * DAY_MS, now), _INV_10),
    ]


def as_dict(features: Sequence[float]) -> dict[str, float]:
    """A River input: the non-zero features by name (River treats an absent feature as 0).

    >>> as_dict([0.0] * (N_FEATURES - 1) + [0.5])
    {'purchases_30d': 0.5}
    """
    return {name: v for name, v in zip(FEATURE_NAMES, features, strict=True) if v}


def pack(features: Sequence[float]) -> str:
    """The stored form of a vector: its non-zero features as comma-separated
    ``index,thousandths`` pairs (``""`` for all zeros).

    Lossless on vectors of :func:`extract_features` (already quantised). A string, not a list:
    a profile holding a few of them is decoded and encoded at every event, and one string is
    far cheaper to decode than the ~50 integers it holds (see docs/intent-scoring.md).

    >>> pack([0.0, 0.123, 1.0])
    '1,123,2,1000'
    """
    return ",".join([f"{i},{round(v * PACK_SCALE)}" for i, v in enumerate(features) if v])


def _pairs(packed: str | Sequence[int]) -> list[int]:
    # The integers of a packed vector (a list of them is accepted too: the previous layout).
    if isinstance(packed, str):
        return list(map(int, packed.split(","))) if packed else []
    return list(packed)


def unpack(packed: str | Sequence[int]) -> dict[str, float]:
    """The River input for a packed vector: the same dict :func:`as_dict` gave when it was
    scored (the same floats, bit for bit). Indexes outside the features are ignored.

    >>> unpack(pack([0.0, 0.123] + [0.0] * (N_FEATURES - 2)))
    {'views_billing': 0.123}
    """
    names = FEATURE_NAMES
    n = len(names)
    ints = _pairs(packed)
    return {names[i]: q / PACK_SCALE for i, q in zip(ints[::2], ints[1::2], strict=False)
            if 0 <= i < n and q}


def dense(packed: str | Sequence[int]) -> list[float]:
    """A packed vector as the full list of :data:`N_FEATURES` floats (for batch models)."""
    out = [0.0] * N_FEATURES
    ints = _pairs(packed)
    for i, q in zip(ints[::2], ints[1::2], strict=False):
        if 0 <= i < N_FEATURES:
            out[i] = q / PACK_SCALE
    return out


def describe(features: Sequence[float] | Mapping[str, float]) -> dict[str, float]:
    """All features by name (for debugging and the context view), zeros included."""
    if isinstance(features, Mapping):
        return {name: float(features.get(name, 0.0)) for name in FEATURE_NAMES}
    return dict(zip(FEATURE_NAMES, features, strict=True))
