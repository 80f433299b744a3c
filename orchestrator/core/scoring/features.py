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
from itertools import compress
from typing import Any, NamedTuple

from orchestrator.core.profile import DWELL_CAP_MS, DWELL_MAX_GAP_MS, Profile, queries

#: Changes whenever the meaning or order of the features changes; checkpoints carry it.
FEATURES_VERSION = "f3"

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
    *(f"share_{c}" for c in _CATS),
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


# Where each block and scalar sits in the vector (FEATURE_NAMES order).
_S_VIEWS = 0
_S_DWELL = _N_CATS
_B_VIEWS = 2 * _N_CATS
_B_DWELL = 3 * _N_CATS
_SESSIONS_BEFORE = FEATURE_INDEX["sessions_before"]
_RECENCY = FEATURE_INDEX["recency"]
_TENURE = FEATURE_INDEX["tenure"]
_IDENTIFIED = FEATURE_INDEX["identified"]
_CONTACTS_7D = FEATURE_INDEX["contacts_7d"]
_LAST_REASON = FEATURE_INDEX[f"last_contact_{CONTACT_REASONS[0]}"]
_NEGATIVE = FEATURE_INDEX["last_contact_negative"]
_POSITIVE = FEATURE_INDEX["last_contact_positive"]
_CONTACT_AGE = FEATURE_INDEX["last_contact_age"]
_HOUR_SIN = FEATURE_INDEX["hour_sin"]
_HOUR_COS = FEATURE_INDEX["hour_cos"]
_WEEKEND = FEATURE_INDEX["weekend"]
_SEARCHES = FEATURE_INDEX["searches_24h"]
_FORM_STARTS = FEATURE_INDEX["form_starts_24h"]
_FORMS_ABANDONED = FEATURE_INDEX["forms_abandoned_24h"]
_ADD_TO_CART = FEATURE_INDEX["add_to_cart_24h"]
_LOGINS = FEATURE_INDEX["logins_7d"]
_PURCHASES = FEATURE_INDEX["purchases_30d"]
_SHARE = FEATURE_INDEX[f"share_{_CATS[0]}"]
_CAT_RANGE = range(_N_CATS)


def extract_features(profile: Profile, event: Any, now_ts: int) -> list[float]:
    """The feature vector of ``profile`` at event time ``now_ts``, in :data:`FEATURE_NAMES` order.

    Promises: exactly :data:`N_FEATURES` finite floats, each in [0, :data:`MAX_VALUE`] and a
    multiple of 1 / :data:`PACK_SCALE`, for any profile whose attributes have the documented
    types; no wall clock. Windows of the recent pages, contacts and event times ignore items
    stamped after ``now_ts`` (a late event being scored); the session and lifetime totals are
    as the profile holds them. ``event`` is accepted for future event-level features and is not
    read today: the profile already holds the event.
    """
    # Most features of a person are 0 (about 24 of 80 are not): the vector starts as zeros and
    # only what the profile holds is written, which is what keeps this cheap per event.
    now = now_ts
    out = [0.0] * N_FEATURES
    # Page views and time on page per category: this session, and all sessions before it.
    s_views = [0] * _N_CATS
    s_dwell = [0] * _N_CATS
    t_views = [0] * _N_CATS
    t_dwell = [0] * _N_CATS
    cat_index = _CAT_INDEX
    current = queries.current_session(profile)
    start = last = -1
    if current is not None:
        key, session = current
        start, last = session.start, session.last
        for cat, n in session.views.items():
            s_views[cat_index.get(cat, _OTHER_CAT)] += n
        settled = queries.session_dwell(profile, key)
        if settled:
            for cat, ms in settled.items():
                s_dwell[cat_index.get(cat, _OTHER_CAT)] += ms
    for cat, (n, ms) in profile.page_totals.items():
        i = cat_index.get(cat, _OTHER_CAT)
        t_views[i] += n
        t_dwell[i] += ms
    # Time on the pages still in recent_pages: the gap to the next one (profile.dwell_ms).
    previous = 0
    following = -1
    max_gap, cap, other = DWELL_MAX_GAP_MS, DWELL_CAP_MS, _OTHER_CAT
    for page in reversed(profile.recent_pages):  # newest first
        ts = page["ts"]
        if ts > now:
            continue
        if following >= 0:
            gap = following - ts
            if 0 < gap <= max_gap:
                cat = page["category"]
                if cat:
                    ms = gap if gap < cap else cap
                    i = cat_index.get(cat, other)
                    t_dwell[i] += ms
                    if start <= ts <= last:
                        s_dwell[i] += ms
        following = ts
        if not previous and ts < now:  # the newest page before now
            previous = ts
    views_table, seconds_table = _VIEWS, _SECONDS
    for i in _CAT_RANGE:
        n = s_views[i]
        total = t_views[i]
        if n:
            out[i] = views_table[n] if 0 < n < _TABLE else _views(n)
        if total != n:
            out[_B_VIEWS + i] = _views(total - n)
        ms = s_dwell[i]
        total = t_dwell[i]
        if ms:
            out[_S_DWELL + i] = seconds_table[ms // 1000] if 0 < ms < 65_536_000 else _seconds(ms)
        if total != ms:
            out[_B_DWELL + i] = _seconds(total - ms)
    # What the visit is about, whatever its length: the share of this session's page views per
    # category. A linear model cannot form it from the log-scaled counts.
    session_views = sum(s_views)
    if session_views > 0:
        for i in _CAT_RANGE:
            n = s_views[i]
            if n > 0:
                out[_SHARE + i] = _q(n / session_views)

    # Event-type timestamps: windows of counts, and the previous event for recency.
    times = profile.event_times  # type -> times, oldest first (queries.times_of, in bulk)
    for series in times.values():
        for t in reversed(series):
            if t < now:
                if t > previous:
                    previous = t
                break
    if times:
        day_ago = now - DAY_MS
        week_ago = now - 7 * DAY_MS
        get = times.get
        form_starts = _count_since(get("form_start"), day_ago, now)
        if form_starts:
            out[_FORM_STARTS] = _lg(form_starts, _INV_10)
            form_submits = _count_since(get("form_submit"), day_ago, now)
            if form_starts > form_submits:
                out[_FORMS_ABANDONED] = _lg(form_starts - form_submits, _INV_10)
        for index, kind, since in ((_SEARCHES, "search", day_ago),
                                   (_ADD_TO_CART, "add_to_cart", day_ago),
                                   (_LOGINS, "login", week_ago),
                                   (_PURCHASES, "purchase", now - 30 * DAY_MS)):
            series = get(kind)
            if series:
                count = _count_since(series, since, now)
                if count:
                    out[index] = _lg(count, _INV_10)

    # Contact centre: count in 7 days and what the last contact was about.
    contacts_7d = 0
    last_contact = None
    week_ago = now - 7 * DAY_MS
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
        out[_CONTACT_AGE] = 1.0
    else:
        out[_CONTACTS_7D] = _lg(contacts_7d, _INV_10)
        out[_LAST_REASON + _REASON_INDEX.get(last_contact.get("reason"), _OTHER_REASON)] = 1.0
        sentiment = last_contact.get("sentiment") or 0.0
        if sentiment < 0:
            out[_NEGATIVE] = _q(-sentiment)
        elif sentiment > 0:
            out[_POSITIVE] = _q(sentiment)
        out[_CONTACT_AGE] = _lg((now - last_contact["ts"]) / DAY_MS, _INV_CONTACT_AGE)

    out[_RECENCY] = _lg((now - previous) / 1000, _INV_RECENCY) if previous else 1.0
    if profile.first_seen_ts:
        out[_TENURE] = _lg((now - profile.first_seen_ts) / DAY_MS, _INV_TENURE)
    if current is not None:
        out[_SESSIONS_BEFORE] = _lg(profile.sessions - 1, _INV_SESSIONS)
    else:
        out[_SESSIONS_BEFORE] = _lg(profile.sessions, _INV_SESSIONS)
    if profile.customer_id is not None:
        out[_IDENTIFIED] = 1.0
    if profile.logged_in:
        out[LOGGED_IN] = 1.0
    angle = (now % DAY_MS) * _TWO_PI_PER_DAY_MS
    out[_HOUR_SIN] = _q((math.sin(angle) + 1.0) * 0.5)
    out[_HOUR_COS] = _q((math.cos(angle) + 1.0) * 0.5)
    if (now // DAY_MS + 3) % 7 >= 5:  # 1970-01-01 was a Thursday; Monday is 0
        out[_WEEKEND] = 1.0
    return out


class SparseVector(NamedTuple):
    """The non-zero features of a vector: their indexes (ascending) and their values.

    What scoring and packing read: about 24 of the 80 features of a person are non-zero.
    """

    index: list[int]
    values: list[float]


_RANGE = range(N_FEATURES)


def sparse(features: Sequence[float]) -> SparseVector:
    """The non-zero features of a vector of :func:`extract_features`.

    >>> sparse([0.0, 0.5, 0.0, 1.0])
    SparseVector(index=[1, 3], values=[0.5, 1.0])
    """
    return SparseVector(list(compress(_RANGE, features)), list(compress(features, features)))


def as_dict(features: Sequence[float]) -> dict[str, float]:
    """A River input: the non-zero features by name (River treats an absent feature as 0).

    >>> as_dict([0.0] * (N_FEATURES - 1) + [0.5])
    {'share_other': 0.5}
    """
    return dict(zip(compress(FEATURE_NAMES, features), compress(features, features), strict=False))


# The text of each feature index and of each quantised value (the values of a vector of
# extract_features are exactly these floats): packing is table lookups, not number formatting.
_INDEX_TEXT = [f"{i}," for i in range(N_FEATURES)]
_VALUE_TEXT = {q / PACK_SCALE: str(q) for q in range(1, int(MAX_VALUE * PACK_SCALE) + 1)}


def pack(features: Sequence[float] | SparseVector) -> str:
    """The stored form of a vector: its non-zero features as comma-separated
    ``index,thousandths`` pairs (``""`` for all zeros).

    Lossless on vectors of :func:`extract_features` (already quantised). A string, not a list:
    a profile holding a few of them is decoded and encoded at every event, and one string is
    far cheaper to decode than the ~50 integers it holds (see docs/intent-scoring.md).

    >>> pack([0.0, 0.123, 1.0])
    '1,123,2,1000'
    """
    index_text, value_text = _INDEX_TEXT, _VALUE_TEXT
    if not isinstance(features, SparseVector):
        features = sparse(features)  # only the non-zero features are walked in Python
    index, values = features
    try:  # the common case, every value one of the table's (about 5 us for 30 features)
        return ",".join([index_text[i] + value_text[v] for i, v in zip(index, values, strict=True)])
    except KeyError:
        return ",".join([index_text[i] + (value_text.get(v) or str(round(v * PACK_SCALE)))
                         for i, v in zip(index, values, strict=True)])


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
