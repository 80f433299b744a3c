"""How an event changes a profile (:func:`apply_event`) and how two profiles merge
(:func:`merge_profiles`), each part by the ``add`` and ``join`` of its type (:mod:`.state`).

``apply_event`` updates a profile the runtime owns (decoded from the table, held until the
partition is written), so it mutates in place rather than copying a few dozen fields per event.

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
carried into the customer's profile at login) with the same joins, so a merge gives the profile
that one would have had if all the events had gone to it.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Mapping
from typing import Any

from orchestrator.core.events import (
    ActionFeedbackEvent,
    ClickstreamEvent,
    ContactCentreEvent,
    Event,
    event_type,
)
from orchestrator.core.profile.pending import join as join_pending
from orchestrator.core.profile.state import (
    ACTIONS,
    CONTACTS,
    EARLY_OUTCOMES,
    EVENT_TIMES,
    GUARD,
    PAGES,
    RECENT_ACTIONS,
    RECENT_PAGES,
    SENT_LOG_MS,
    SENT_LOG_PER_KEY,
    SESSION_GAP_MS,
    VISITORS,
    WINDOW_PREFIX,
    Consent,
    Outcome,
    Profile,
    Register,
    Shared,
    join_outcome_into,
    multiset_union,
)


def event_identity(event: Event) -> str:
    """A stable id for recognising a replayed record (feedback has no event id of its own)."""
    if isinstance(event, ActionFeedbackEvent):
        return f"feedback:{event.action_id}:{event.outcome}"
    return event.event_id


def _tiebreak(identity: str) -> int:
    return zlib.crc32(identity.encode())


def effective_ts(event_ts: int, broker_ts: int | None) -> int:
    """The time a privacy decision goes by: the event's own ``ts``, but never later than the
    broker received it (a producer clock running ahead must not outrank a later record)."""
    return event_ts if broker_ts is None or broker_ts > event_ts else broker_ts


def erased_before(profile: Profile | None, event_ts: int, broker_ts: int | None) -> bool:
    """Whether a record is from before the person's erasure (and must not bring them back)."""
    return profile is not None and profile.erased_ts > effective_ts(event_ts, broker_ts)


def erasure_marker(person_id: str, erased_ts: int, profile: Profile | None = None) -> Profile:
    """What is kept of a person erased at broker time ``erased_ts``: the id and that time."""
    previous = profile.erased_ts if profile is not None else 0
    return Profile(person_id=person_id, erased_ts=max(erased_ts, previous))


def is_erasure_marker(profile: Profile) -> bool:
    """A profile that holds nothing but an erasure (no event since): no person to show."""
    return profile.erased_ts > 0 and profile.events_seen == 0


def apply_event(profile: Profile, event: Event, session_gap_ms: int = SESSION_GAP_MS,
                broker_ts: int | None = None) -> bool:
    """Fold ``event`` into ``profile``; return False (and change nothing) for a replay.

    The result does not depend on the order of events (see the module docstring). Consent goes
    by :func:`effective_ts` of the event and ``broker_ts`` (the Kafka timestamp of its record;
    None: the event's ``ts``).
    """
    tie = _tiebreak(event_identity(event))
    if not GUARD.add(profile.seen, event.ts, tie):
        return False
    profile.events_seen += 1
    if profile.first_seen_ts == 0 or event.ts < profile.first_seen_ts:
        profile.first_seen_ts = event.ts
    if event.ts > profile.last_seen_ts:
        profile.last_seen_ts = event.ts

    if isinstance(event, ClickstreamEvent):
        _apply_clickstream(profile, event, tie, session_gap_ms, broker_ts)
    elif isinstance(event, ContactCentreEvent):
        _apply_contact(profile, event, tie, broker_ts)
    else:
        _note_outcome(profile, event.action_id, Outcome(event.outcome, event.ts))
    kind = event_type(event)
    if kind != "page_view":
        times = profile.event_times.get(kind)
        if times is None:
            times = profile.event_times[kind] = []
        EVENT_TIMES.add(times, event.ts)
    return True


def _apply_clickstream(profile: Profile, event: ClickstreamEvent, tie: int, session_gap_ms: int,
                       broker_ts: int | None) -> None:
    VISITORS.add(profile.visitors, event.visitor_id, event.ts)
    key = event.session_id if event.session_id is not None \
        else f"{WINDOW_PREFIX}{event.ts // session_gap_ms}"
    session = profile.session_log.add(key, event.ts)
    if event.customer_id is not None:
        _set_customer(profile, event.customer_id)
    logged_in = _login_state(event)
    if logged_in is not None:
        profile.login = Register.add(profile.login, event.ts, tie, logged_in)
    if event.consent is not None:
        _set_consent(profile, event.consent, effective_ts(event.ts, broker_ts), tie)
    page = event.page
    if page is not None and event.type == "page_view":
        if page.category:
            session.count_view(page.category)
        _add_page(profile, {"ts": event.ts, "url": page.url, "category": page.category})
    _prune_session_dwell(profile)


def _login_state(event: ClickstreamEvent) -> bool | None:
    """What this event says about being logged in (None: nothing)."""
    if event.type == "logout":
        return False
    if event.customer_id is not None:
        return True
    return None


def _apply_contact(profile: Profile, event: ContactCentreEvent, tie: int, broker_ts: int | None) -> None:
    _set_customer(profile, event.customer_id)
    if event.consent is not None:
        _set_consent(profile, event.consent, effective_ts(event.ts, broker_ts), tie)
    if event.channel is not None:
        CONTACTS.add(profile.recent_contacts, {
            "ts": event.ts, "type": event.type, "channel": event.channel,
            "reason": event.reason, "sentiment": event.sentiment,
        })


def _note_outcome(profile: Profile, action_id: str, outcome: Outcome) -> None:
    """Join feedback into the action it names, or keep it until that action is recorded."""
    for sent in profile.recent_actions:
        if sent["action_id"] == action_id:
            join_outcome_into(sent, outcome.outcome, outcome.ts)
            return
    early = profile.early_outcomes
    early[action_id] = Outcome.join(early.get(action_id), outcome)
    if len(early) > EARLY_OUTCOMES:
        del early[min(early, key=lambda action_id: (early[action_id].ts, action_id))]


def _set_customer(profile: Profile, customer_id: str) -> None:
    # The smallest id wins so that the result does not depend on order; a person has one
    # customer id (identity resolution never sends two customers' events to one profile).
    if profile.customer_id is None or customer_id < profile.customer_id:
        profile.customer_id = customer_id


def _set_consent(profile: Profile, given: Any, ts: int, tie: int) -> None:
    profile.consent = Register.add(profile.consent, ts, tie, Consent(given.service, given.marketing))


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
    why = {"rule": action_record.get("rule"),
           "reason": (action_record.get("payload") or {}).get("reason"),
           "scores": dict(action_record.get("scores") or {})}
    entry.update((key, value) for key, value in why.items() if value)
    if holdout:
        entry["holdout"] = True
    early = profile.early_outcomes.pop(entry["action_id"], None)
    if early is not None:
        join_outcome_into(entry, early.outcome, early.ts)
    ACTIONS.add(profile.recent_actions, entry)


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
    scored_ts = profile.scored_ts
    # The content order is needed only to break a tie of the same millisecond (rare: it runs
    # on every event otherwise, two sorts per event for nothing).
    if ts > scored_ts or (ts == scored_ts
                          and _scores_order(scores) > _scores_order(profile.scores)):
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
    as the replay guards tell (:func:`.state.join_counts`); the latest scores are a register
    (:func:`note_scores`), total even where a score is None on one side and a number on the
    other.
    """
    shared = GUARD.shared(target.seen, other.seen)
    target.events_seen += other.events_seen - GUARD.overlap(target.seen, other.seen)
    target.seen = GUARD.join(target.seen, other.seen)
    if other.customer_id is not None:
        _set_customer(target, other.customer_id)
    VISITORS.join(target.visitors, other.visitors)
    target.login = Register.join(target.login, other.login)
    if other.first_seen_ts and (not target.first_seen_ts or other.first_seen_ts < target.first_seen_ts):
        target.first_seen_ts = other.first_seen_ts
    target.last_seen_ts = max(target.last_seen_ts, other.last_seen_ts)
    target.session_log.join(other.session_log)
    _merge_pages(target, other, shared)
    target.recent_contacts = CONTACTS.join(target.recent_contacts, other.recent_contacts, shared)
    _merge_actions(target, other)
    target.consent = Register.join(target.consent, other.consent)
    for key, ts in other.last_sent.items():
        target.last_sent[key] = max(target.last_sent.get(key, 0), ts)
    for kind, times in other.event_times.items():
        target.event_times[kind] = EVENT_TIMES.join(target.event_times.get(kind, []), times, shared)
    for key, times in other.sent_log.items():
        merged = multiset_union(target.sent_log.get(key, []), times, SENT_LOG_PER_KEY)
        _trim_sent_log(merged)
        target.sent_log[key] = merged
    for action_id, outcome in other.early_outcomes.items():
        _note_outcome(target, action_id, outcome)
    if target.pending or other.pending:
        join_pending(target.pending, other.pending)  # the union of the moments, in one form
    target.merged_from = sorted(set(target.merged_from) | set(other.merged_from))
    note_scores(target, other.scores, other.scored_ts)
    target.erased_ts = max(target.erased_ts, other.erased_ts)
    return target


def _merge_actions(target: Profile, other: Profile) -> None:
    by_id = {a["action_id"]: a for a in target.recent_actions}
    for action in other.recent_actions:
        mine = by_id.get(action["action_id"])
        if mine is None:
            by_id[action["action_id"]] = dict(action)
        elif action.get("outcome") is not None:
            join_outcome_into(mine, action["outcome"], action.get("outcome_ts", 0))
    target.recent_actions = sorted(by_id.values(), key=ACTIONS.order)[-RECENT_ACTIONS:]


# ---------------------------------------------------------------- page statistics
# Per-category page views and time on page, for the intent features
# (orchestrator.core.scoring.features). Kept apart from the rest of the fold on purpose: the
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
    PAGES.add(pages, entry)
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
    pages = PAGES.join(target.recent_pages, other.recent_pages, shared,
                       bound=len(target.recent_pages) + len(other.recent_pages))
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
        key = profile.session_log.at(page["ts"])
        if key is not None:
            by_cat = profile.session_dwell.setdefault(key, {})
            by_cat[category] = by_cat.get(category, 0) + ms


def _prune_session_dwell(profile: Profile) -> None:
    dwell = profile.session_dwell
    if dwell:
        sessions = profile.session_log
        for key in [k for k in dwell if k not in sessions]:
            del dwell[key]
