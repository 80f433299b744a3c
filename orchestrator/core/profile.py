"""The live profile of one person, how an event changes it, and how two profiles merge.

A profile is plain data (a slotted dataclass) that round-trips through JSON, so that the table
can store it as bytes and a test can build one by hand. ``apply_event`` updates a profile the
runtime owns (decoded fresh from the table for each event), so it mutates in place rather than
copying a few dozen fields per event.

**Order does not matter.** Records of one person can arrive reordered (two input topics, a
re-keyed hop at login) or twice (a redelivery after a crash). Every part of the profile is
therefore kept in a form whose result does not depend on the order in which events arrive:

- sets bounded to their newest members by event time (pages, contacts, event times, replay
  guard, visitors, sessions) — "the N newest" of a set is the same whatever the order;
- registers settled by event time, last writer wins with the event id as the tie-break
  (logged in or out, consent);
- minimum / maximum (first and last seen, cooldown clocks) and counts of distinct events.

Exactness has bounds: an event is recognised as already applied while it is among the
:data:`REPLAY_GUARD` newest events of the person (by event time) — a redelivery after a crash
replays the last second or so of records, far inside that window — and a late event of a
session older than the :data:`SESSIONS_KEPT` newest counts that session again.

**Sessions** are keyed by the event's ``session_id``. An event without one falls into a fixed
window of ``session_gap_ms`` (30 minutes by default) of event time: unlike gap-based
sessionisation, a window does not depend on which events arrived first.

:func:`merge_profiles` joins two profiles of the same person (the anonymous history of a visitor
carried into the customer's profile at login) with the same rules, so a merge gives the profile
that one would have had if all the events had gone to it.
"""

from __future__ import annotations

import bisect
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
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
# Sessions kept with their topic counts; older ones only count towards ``sessions``.
SESSIONS_KEPT = 6
# Visitor ids (devices, browsers) remembered per person.
VISITORS_KEPT = 8
# Events recognised as already applied: the newest by event time. A redelivery after a crash
# replays the records since the last commit (about a second), far fewer than this per person.
REPLAY_GUARD = 32
# Timestamps kept per event type other than page_view (page views are in recent_pages): what
# rules' counts in time windows, "since" and "stop_after" read. Types are a closed set (unknown
# clickstream types are "other"), so this is bounded too.
EVENT_TIMES_PER_TYPE = 10
# Sends remembered per cap key for per-day / per-week caps: at most this many, none older than
# SENT_LOG_MS before the newest.
SENT_LOG_PER_KEY = 32
SENT_LOG_MS = 7 * 24 * 3600 * 1000
# Feedback that arrived before the action it names was recorded (reordered), kept to be joined.
EARLY_OUTCOMES = 8
# Feedback outcomes ranked: a later stage of the funnel wins whatever the arrival order.
OUTCOME_RANK = {"shown": 1, "dismissed": 2, "clicked": 3, "converted": 4}


@dataclass(slots=True)
class Profile:
    """Everything the engine keeps about one person.

    Derived views (``logged_in``, ``visitor_id``, ``sessions``, ``session_id``,
    ``session_started_ts``, ``session_topic_views``) are properties over the stored state.
    """

    person_id: str
    customer_id: str | None = None
    #: visitor id -> last seen (event time); the newest VISITORS_KEPT.
    visitors: dict[str, int] = field(default_factory=dict)
    #: [ts, tie-break, logged in?] of the newest event that said whether the person is logged in.
    login: list[Any] | None = None
    first_seen_ts: int = 0
    last_seen_ts: int = 0
    events_seen: int = 0
    #: session key -> [start ts, last ts, {page category: views}]; the newest SESSIONS_KEPT.
    session_log: dict[str, list[Any]] = field(default_factory=dict)
    #: sessions no longer in ``session_log``.
    sessions_before: int = 0
    recent_pages: list[dict[str, Any]] = field(default_factory=list)
    recent_contacts: list[dict[str, Any]] = field(default_factory=list)
    recent_actions: list[dict[str, Any]] = field(default_factory=list)
    consent: dict[str, bool] = field(default_factory=lambda: {"service": True, "marketing": False})
    #: [ts, tie-break] of the consent_updated event that set ``consent`` (None: the default).
    consent_at: list[int] | None = None
    last_sent: dict[str, int] = field(default_factory=dict)
    #: [ts, crc32(event identity)] of the newest REPLAY_GUARD events, sorted.
    seen: list[list[int]] = field(default_factory=list)
    event_times: dict[str, list[int]] = field(default_factory=dict)
    sent_log: dict[str, list[int]] = field(default_factory=dict)
    #: action id -> [outcome, ts] for feedback that came before its action was recorded.
    early_outcomes: dict[str, list[Any]] = field(default_factory=dict)
    #: visitor ids whose anonymous profile has been merged in (a merge is applied once).
    merged_from: list[str] = field(default_factory=list)
    #: intent -> feature snapshots waiting for their label (see orchestrator.core.scoring).
    pending: dict[str, list[Any]] = field(default_factory=dict)
    #: intent -> the latest score (None: the model is not trusted yet), as of ``scored_ts``.
    scores: dict[str, float | None] = field(default_factory=dict)
    scored_ts: int = 0
    # ---- page statistics for the intent features (see the "page statistics" block below) ----
    #: page category -> [views, settled time on page in ms] over the person's whole history.
    page_totals: dict[str, list[int]] = field(default_factory=dict)
    #: session key -> {page category: settled time on page in ms} (sessions in ``session_log``).
    session_dwell: dict[str, dict[str, int]] = field(default_factory=dict)

    # ------------------------------------------------------------ derived views

    @property
    def logged_in(self) -> bool:
        return bool(self.login[2]) if self.login else False

    @property
    def visitor_id(self) -> str | None:
        """The visitor id seen most recently (the device in use)."""
        if not self.visitors:
            return None
        return max(self.visitors.items(), key=lambda item: (item[1], item[0]))[0]

    @property
    def sessions(self) -> int:
        return self.sessions_before + len(self.session_log)

    def current_session(self) -> tuple[str, list[Any]] | None:
        """The session with the newest activity (ties: the later start, then the key)."""
        if not self.session_log:
            return None
        return max(self.session_log.items(), key=lambda item: (item[1][1], item[1][0], item[0]))

    @property
    def session_id(self) -> str | None:
        current = self.current_session()
        if current is None or current[0].startswith(WINDOW_PREFIX):
            return None
        return current[0]

    @property
    def session_started_ts(self) -> int:
        current = self.current_session()
        return current[1][0] if current else 0

    @property
    def session_topic_views(self) -> dict[str, int]:
        current = self.current_session()
        return current[1][2] if current else {}

    # ------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        known = {k: v for k, v in data.items() if k in _PROFILE_FIELDS}
        return cls(**known)


_PROFILE_FIELDS = frozenset(Profile.__dataclass_fields__)
WINDOW_PREFIX = "~"


def event_identity(event: Event) -> str:
    """A stable id for recognising a replayed record (feedback has no event id of its own)."""
    if isinstance(event, ActionFeedbackEvent):
        return f"feedback:{event.action_id}:{event.outcome}"
    return event.event_id


def _tiebreak(identity: str) -> int:
    return zlib.crc32(identity.encode())


def apply_event(profile: Profile, event: Event, session_gap_ms: int = SESSION_GAP_MS) -> bool:
    """Fold ``event`` into ``profile``; return False (and change nothing) for a replay.

    The result does not depend on the order of events (see the module docstring).
    """
    tie = _tiebreak(event_identity(event))
    stamp = [event.ts, tie]
    seen = profile.seen
    at = bisect.bisect_left(seen, stamp)
    if at < len(seen) and seen[at] == stamp:
        return False
    seen.insert(at, stamp)
    if len(seen) > REPLAY_GUARD:
        del seen[0]
    profile.events_seen += 1
    if profile.first_seen_ts == 0 or event.ts < profile.first_seen_ts:
        profile.first_seen_ts = event.ts
    profile.last_seen_ts = max(profile.last_seen_ts, event.ts)

    if isinstance(event, ClickstreamEvent):
        _apply_clickstream(profile, event, tie, session_gap_ms)
    elif isinstance(event, ContactCentreEvent):
        _apply_contact(profile, event, tie)
    else:
        _apply_feedback(profile, event)
    kind = event_type(event)
    if kind != "page_view":
        _insert_newest(profile.event_times.setdefault(kind, []), event.ts, EVENT_TIMES_PER_TYPE)
    return True


def _apply_clickstream(profile: Profile, event: ClickstreamEvent, tie: int, session_gap_ms: int) -> None:
    _note_visitor(profile.visitors, event.visitor_id, event.ts)
    key = event.session_id if event.session_id is not None \
        else f"{WINDOW_PREFIX}{event.ts // session_gap_ms}"
    session = profile.session_log.get(key)
    if session is None:
        session = profile.session_log[key] = [event.ts, event.ts, {}]
        if len(profile.session_log) > SESSIONS_KEPT:
            oldest = min(profile.session_log.items(), key=lambda item: (item[1][0], item[0]))[0]
            del profile.session_log[oldest]
            profile.sessions_before += 1
    else:
        session[0] = min(session[0], event.ts)
        session[1] = max(session[1], event.ts)
    if event.customer_id is not None:
        _set_customer(profile, event.customer_id)
    logged_in = _login_state(event)
    if logged_in is not None and (profile.login is None or [event.ts, tie] > profile.login[:2]):
        profile.login = [event.ts, tie, logged_in]
    if event.consent is not None:
        _set_consent(profile, event.consent.service, event.consent.marketing, event.ts, tie)
    page = event.page
    if page is not None and event.type == "page_view":
        if page.category:
            views = session[2]
            views[page.category] = views.get(page.category, 0) + 1
        _add_page(profile, {"ts": event.ts, "url": page.url, "category": page.category})
    _prune_session_dwell(profile)


def _login_state(event: ClickstreamEvent) -> bool | None:
    """What this event says about being logged in (None: nothing)."""
    if event.type == "logout":
        return False
    if event.customer_id is not None:
        return True
    return None


def _apply_contact(profile: Profile, event: ContactCentreEvent, tie: int) -> None:
    _set_customer(profile, event.customer_id)
    if event.consent is not None:
        _set_consent(profile, event.consent.service, event.consent.marketing, event.ts, tie)
    if event.channel is not None:
        _insert_entry(profile.recent_contacts, {
            "ts": event.ts, "type": event.type, "channel": event.channel,
            "reason": event.reason, "sentiment": event.sentiment,
        }, RECENT_CONTACTS, _contact_order)


def _apply_feedback(profile: Profile, event: ActionFeedbackEvent) -> None:
    _note_outcome(profile, event.action_id, event.outcome, event.ts)


def _note_outcome(profile: Profile, action_id: str, outcome: str, ts: int) -> None:
    for sent in profile.recent_actions:
        if sent["action_id"] == action_id:
            _set_outcome(sent, outcome, ts)
            return
    early = profile.early_outcomes
    known = early.get(action_id)
    if known is None or _outcome_key(outcome, ts) > _outcome_key(known[0], known[1]):
        early[action_id] = [outcome, ts]
    if len(early) > EARLY_OUTCOMES:
        del early[min(early, key=lambda action_id: (early[action_id][1], action_id))]


def _outcome_key(outcome: str | None, ts: int) -> tuple[int, int]:
    return (OUTCOME_RANK.get(outcome or "", 0), ts)


def _set_outcome(sent: dict[str, Any], outcome: str, ts: int) -> None:
    if _outcome_key(outcome, ts) > _outcome_key(sent.get("outcome"), sent.get("outcome_ts", 0)):
        sent["outcome"] = outcome
        sent["outcome_ts"] = ts


def _set_customer(profile: Profile, customer_id: str) -> None:
    # The smallest id wins so that the result does not depend on order; a person has one
    # customer id (identity resolution never sends two customers' events to one profile).
    if profile.customer_id is None or customer_id < profile.customer_id:
        profile.customer_id = customer_id


def _set_consent(profile: Profile, service: bool, marketing: bool, ts: int, tie: int) -> None:
    if profile.consent_at is None or [ts, tie] > profile.consent_at:
        profile.consent = {"service": service, "marketing": marketing}
        profile.consent_at = [ts, tie]


def _note_visitor(visitors: dict[str, int], visitor_id: str, ts: int) -> None:
    visitors[visitor_id] = max(visitors.get(visitor_id, ts), ts)
    if len(visitors) > VISITORS_KEPT:
        del visitors[min(visitors.items(), key=lambda item: (item[1], item[0]))[0]]


def _page_order(page: dict[str, Any]) -> tuple[Any, ...]:
    return (page["ts"], page["url"], page["category"] or "")


def _contact_order(contact: dict[str, Any]) -> tuple[Any, ...]:
    return (contact["ts"], contact["type"], contact["channel"], contact["reason"] or "",
            contact["sentiment"] if contact["sentiment"] is not None else -2.0)


def _action_order(action: dict[str, Any]) -> tuple[Any, ...]:
    return (action["ts"], action["action_id"])


def _insert_entry(entries: list[dict[str, Any]], entry: dict[str, Any], bound: int,
                  order: Any) -> None:
    """Insert keeping ``entries`` sorted by ``order`` and only the ``bound`` newest."""
    key = order(entry)
    at = len(entries)
    while at > 0 and order(entries[at - 1]) > key:  # nearly always appends: events come in order
        at -= 1
    entries.insert(at, entry)
    if len(entries) > bound:
        del entries[: len(entries) - bound]


def _insert_newest(times: list[int], ts: int, bound: int) -> None:
    bisect.insort(times, ts)
    if len(times) > bound:
        del times[: len(times) - bound]


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
    bisect.insort(times, event_ts)
    _trim_sent_log(times)
    entry: dict[str, Any] = {
        "action_id": action_record["action_id"], "action": action_record["action"],
        "channel": action_record["channel"], "ts": event_ts, "outcome": None,
    }
    # Why it was sent, for the customer context: the rule, its payload's reason, the scores seen.
    why = {"rule": action_record.get("rule"), "reason": action_record.get("payload", {}).get("reason"),
           "scores": dict(action_record.get("scores") or {})}
    entry.update((key, value) for key, value in why.items() if value)
    if holdout:
        entry["holdout"] = True
    early = profile.early_outcomes.pop(entry["action_id"], None)
    if early is not None:
        _set_outcome(entry, early[0], early[1])
    _insert_entry(profile.recent_actions, entry, RECENT_ACTIONS, _action_order)


def note_scores(profile: Profile, scores: Mapping[str, float | None], ts: int) -> bool:
    """Keep ``scores`` computed at event time ``ts`` unless the profile holds newer ones.

    The latest scores are a last-writer-wins register on event time; scores of the same
    millisecond are ordered by their content (a missing intent first, then None, NaN, then the
    probability), so the register holds the same scores whatever order they were noted in, and
    :func:`merge_profiles` is a join for it. Returns whether ``scores`` were kept.

    >>> profile = Profile(person_id="c-1")
    >>> note_scores(profile, {"churn_risk": 0.2}, 1_700_000_000_000)
    True
    >>> note_scores(profile, {"churn_risk": None}, 1_700_000_000_000)  # same ms: a float wins
    False
    >>> note_scores(profile, {"churn_risk": None}, 1_700_000_000_001)  # newer wins
    True
    """
    if (ts, _scores_order(scores)) > (profile.scored_ts, _scores_order(profile.scores)):
        profile.scores, profile.scored_ts = dict(scores), ts
        return True
    return False


def _scores_order(scores: Mapping[str, float | None]) -> tuple[tuple[str, tuple[int, float]], ...]:
    """A total order of score dicts (None and NaN do not compare with a float; their ranks do)."""
    return tuple(sorted((intent, _score_rank(score)) for intent, score in scores.items()))


def _score_rank(score: float | None) -> tuple[int, float]:
    if score is None:
        return (0, 0.0)
    if score != score:  # NaN
        return (1, 0.0)
    return (2, score)


def _trim_sent_log(times: list[int]) -> None:
    horizon = times[-1] - SENT_LOG_MS
    del times[: max(len(times) - SENT_LOG_PER_KEY, sum(1 for t in times if t <= horizon))]


# ---------------------------------------------------------------- merge

def merge_profiles(target: Profile, other: Profile) -> Profile:
    """Join ``other`` (e.g. a visitor's anonymous profile) into ``target``, in place.

    Commutative in everything but the person id (``target`` keeps its own), and exact for
    events within the replay guard: an event both profiles hold counts once. Session topic
    counts of a session both profiles saw are added (a login splits a session between the
    anonymous and the known profile); a merge record is applied once per visitor (see
    ``merged_from``), which is what makes a redelivered merge harmless. Entries alike at one
    millisecond (a page loaded in two tabs) count as often as the events behind them, as far
    as the replay guards tell (:func:`_join_counts`); the latest scores are a register
    (:func:`note_scores`), total even where a score is None on one side and a number on the
    other.
    """
    shared = _shared_events(target.seen, other.seen)
    overlap = len({tuple(s) for s in target.seen} & {tuple(s) for s in other.seen})
    target.events_seen += other.events_seen - overlap
    target.seen = _newest_union(target.seen, other.seen, REPLAY_GUARD)
    if other.customer_id is not None:
        _set_customer(target, other.customer_id)
    for visitor_id, ts in other.visitors.items():
        _note_visitor(target.visitors, visitor_id, ts)
    if other.login is not None and (target.login is None or other.login > target.login):
        target.login = list(other.login)
    if other.first_seen_ts and (not target.first_seen_ts or other.first_seen_ts < target.first_seen_ts):
        target.first_seen_ts = other.first_seen_ts
    target.last_seen_ts = max(target.last_seen_ts, other.last_seen_ts)
    _merge_sessions(target, other)
    _merge_pages(target, other, shared)
    target.recent_contacts = _merge_entries(target.recent_contacts, other.recent_contacts,
                                            RECENT_CONTACTS, _contact_order, shared)
    _merge_actions(target, other)
    if other.consent_at is not None and (target.consent_at is None or other.consent_at > target.consent_at):
        target.consent = dict(other.consent)
        target.consent_at = list(other.consent_at)
    for key, ts in other.last_sent.items():
        target.last_sent[key] = max(target.last_sent.get(key, 0), ts)
    for kind, times in other.event_times.items():
        target.event_times[kind] = _merge_times(target.event_times.get(kind, []), times,
                                                EVENT_TIMES_PER_TYPE, shared)
    for key, times in other.sent_log.items():
        merged = _multiset_union(target.sent_log.get(key, []), times, SENT_LOG_PER_KEY)
        _trim_sent_log(merged)
        target.sent_log[key] = merged
    for action_id, (outcome, ts) in other.early_outcomes.items():
        _note_outcome(target, action_id, outcome, ts)
    for intent, snapshots in other.pending.items():
        mine = target.pending.setdefault(intent, [])
        for snapshot in snapshots:
            if snapshot not in mine:
                mine.append(snapshot)
        mine.sort()  # by time, then features: snapshots of the same ms in one order
    target.merged_from = sorted(set(target.merged_from) | set(other.merged_from))
    note_scores(target, other.scores, other.scored_ts)
    return target


def _merge_sessions(target: Profile, other: Profile) -> None:
    log = target.session_log
    for key, (start, last, views) in other.session_log.items():
        mine = log.get(key)
        if mine is None:
            log[key] = [start, last, dict(views)]
            continue
        mine[0], mine[1] = min(mine[0], start), max(mine[1], last)
        for category, n in views.items():
            mine[2][category] = mine[2].get(category, 0) + n
    target.sessions_before += other.sessions_before
    while len(log) > SESSIONS_KEPT:
        del log[min(log.items(), key=lambda item: (item[1][0], item[0]))[0]]
        target.sessions_before += 1


def _merge_actions(target: Profile, other: Profile) -> None:
    by_id = {a["action_id"]: a for a in target.recent_actions}
    for action in other.recent_actions:
        mine = by_id.get(action["action_id"])
        if mine is None:
            by_id[action["action_id"]] = dict(action)
        elif action.get("outcome") is not None:
            _set_outcome(mine, action["outcome"], action.get("outcome_ts", 0))
    target.recent_actions = sorted(by_id.values(), key=_action_order)[-RECENT_ACTIONS:]


#: How many events of one millisecond both profiles hold (None: a replay guard no longer
#: reaches back to it, so it cannot be told).
Shared = Callable[[int], "int | None"]


def _shared_events(mine: list[list[int]], theirs: list[list[int]]) -> Shared:
    """What the two replay guards tell about the events both profiles hold, per event time.

    A guard that never dropped an event knows all of its profile's events; a full one knows
    those after its oldest entry's millisecond.
    """
    both = Counter(ts for ts, _ in {tuple(s) for s in mine} & {tuple(s) for s in theirs})
    reaches_back_to = max(_guard_start(mine), _guard_start(theirs))

    def shared(ts: int) -> int | None:
        return both[ts] if ts > reaches_back_to else None

    return shared


def _guard_start(seen: list[list[int]]) -> float:
    return seen[0][0] if len(seen) >= REPLAY_GUARD else float("-inf")


def _join_counts(mine: Counter[Any], theirs: Counter[Any], shared: Shared,
                 ts_of: Callable[[Any], int]) -> Counter[Any]:
    """How many times each item (e.g. a page entry) is held once two profiles are joined.

    Items of one millisecond are alike when several events of that ms gave the same entry (two
    tabs loading one page); whether both sides' copies come from the same events is told by the
    replay guards: none shared -> both sides' copies count; all of one side's shared -> the
    larger side's; in between, as few as the shared events allow. Where the guards do not
    reach, a copy on both sides counts once.
    """
    joined: Counter[Any] = Counter()
    for item in mine.keys() | theirs.keys():
        a, b = mine[item], theirs[item]
        both = shared(ts_of(item))
        joined[item] = max(a, b) if both is None else max(a, b, a + b - both)
    return joined


def _merge_entries(mine: list[dict[str, Any]], theirs: list[dict[str, Any]], bound: int,
                   order: Any, shared: Shared) -> list[dict[str, Any]]:
    """The ``bound`` newest entries of both lists (each entry's order key starts with its ts)."""
    entries: dict[tuple[Any, ...], dict[str, Any]] = {}
    counts: list[Counter[tuple[Any, ...]]] = [Counter(), Counter()]
    for side, entries_of_side in enumerate((mine, theirs)):
        for entry in entries_of_side:
            key = tuple(order(entry))
            counts[side][key] += 1
            entries.setdefault(key, entry)
    joined = _join_counts(counts[0], counts[1], shared, lambda key: key[0])
    return [dict(entries[key]) for key in sorted(joined) for _ in range(joined[key])][-bound:]


def _merge_times(mine: list[int], theirs: list[int], bound: int, shared: Shared) -> list[int]:
    """The ``bound`` newest event times of both lists, an event both hold counted once."""
    return sorted(_join_counts(Counter(mine), Counter(theirs), shared, lambda ts: ts).elements())[-bound:]


def _newest_union(mine: list[list[int]], theirs: list[list[int]], bound: int) -> list[list[int]]:
    return [list(s) for s in sorted({tuple(s) for s in mine} | {tuple(s) for s in theirs})][-bound:]


def _multiset_union(mine: list[int], theirs: list[int], bound: int) -> list[int]:
    """Each value as many times as the side that has it most often (a join, so idempotent)."""
    return sorted((Counter(mine) | Counter(theirs)).elements())[-bound:]


# ---------------------------------------------------------------- page statistics
# Per-category page views and time on page, for the intent features
# (orchestrator.core.scoring.features). Kept apart from the rest of the profile on purpose: the
# rest of the module calls only _add_page (apply) and _merge_pages (merge).
#
# Time on page is the gap to the person's next page view, capped at DWELL_CAP_MS, and 0 when no
# page view follows within DWELL_MAX_GAP_MS (the visit ended there). While a page is among the
# RECENT_PAGES newest, its time is read from ``recent_pages`` itself (features do that); when it
# leaves them, its time -- now fixed by its successor, the oldest page kept -- is added to
# ``page_totals`` and to its session's ``session_dwell``. That is exact, whatever the order of
# arrival, for pages that arrive within RECENT_PAGES pages of their place in event time (the
# same kind of bound as the replay guard); a page later than that is counted, its time is not.

#: Longest time on one page counted (a tab left open is not reading).
DWELL_CAP_MS = 10 * 60 * 1000
#: A page view followed by no other within this long ended the visit: no time on page.
DWELL_MAX_GAP_MS = SESSION_GAP_MS


def dwell_ms(ts: int, next_ts: int) -> int:
    """Time on a page viewed at ``ts`` whose next page view is at ``next_ts``."""
    gap = next_ts - ts
    if gap <= 0 or gap > DWELL_MAX_GAP_MS:
        return 0
    return gap if gap < DWELL_CAP_MS else DWELL_CAP_MS


def _add_page(profile: Profile, entry: dict[str, Any]) -> None:
    """Insert a page view into ``recent_pages``, count it, and settle the time of pages leaving."""
    category = entry["category"]
    if category:
        totals = profile.page_totals.get(category)
        if totals is None:
            profile.page_totals[category] = [1, 0]
        else:
            totals[0] += 1
    pages = profile.recent_pages
    _insert_entry(pages, entry, RECENT_PAGES + 1, _page_order)
    if len(pages) > RECENT_PAGES:
        _settle_pages(profile, pages[:-RECENT_PAGES], pages[-RECENT_PAGES])
        del pages[:-RECENT_PAGES]


def _merge_pages(target: Profile, other: Profile, shared: Shared) -> None:
    for category, (views, dwell) in other.page_totals.items():
        mine = target.page_totals.setdefault(category, [0, 0])
        mine[0] += views
        mine[1] += dwell
    for key, dwell in other.session_dwell.items():
        mine_by_cat = target.session_dwell.setdefault(key, {})
        for category, ms in dwell.items():
            mine_by_cat[category] = mine_by_cat.get(category, 0) + ms
    pages = _merge_entries(target.recent_pages, other.recent_pages,
                           len(target.recent_pages) + len(other.recent_pages), _page_order, shared)
    if len(pages) > RECENT_PAGES:
        _settle_pages(target, pages[:-RECENT_PAGES], pages[-RECENT_PAGES])
    target.recent_pages = pages[-RECENT_PAGES:]
    _prune_session_dwell(target)


def _settle_pages(profile: Profile, leaving: list[dict[str, Any]], first_kept: dict[str, Any]) -> None:
    """Add the time of pages leaving ``recent_pages`` (oldest first) to the totals."""
    following = [*leaving[1:], first_kept]
    for page, successor in zip(leaving, following, strict=True):
        category = page["category"]
        if not category:
            continue
        ms = dwell_ms(page["ts"], successor["ts"])
        if not ms:
            continue
        profile.page_totals.setdefault(category, [0, 0])[1] += ms
        key = _session_at(profile, page["ts"])
        if key is not None:
            by_cat = profile.session_dwell.setdefault(key, {})
            by_cat[category] = by_cat.get(category, 0) + ms


def _session_at(profile: Profile, ts: int) -> str | None:
    """The session (of ``session_log``) that a moment belongs to; the smallest key on a tie."""
    found = None
    for key, (start, last, _views) in profile.session_log.items():
        if start <= ts <= last and (found is None or key < found):
            found = key
    return found


def _prune_session_dwell(profile: Profile) -> None:
    dwell = profile.session_dwell
    if dwell:
        for key in [k for k in dwell if k not in profile.session_log]:
            del dwell[key]
