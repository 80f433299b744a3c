"""The profile's state: small named types, each with one way to grow (``add``) and one way to
meet another copy of itself (``join``).

:mod:`.fold` applies an event with the ``add`` of every part and merges two profiles with the
``join`` of every part, so an order-independent rule (which session is evicted, which login
wins, which feedback outcome counts) is written once, here. The types:

- :class:`Register` — last writer wins, keyed by (time, tie-break id): logged in or out, consent;
- :class:`Session` and :class:`SessionLog` — a session's span and topic views, and the newest
  :data:`SESSIONS_KEPT` sessions (older ones only counted);
- :class:`Outcome` — feedback on an action, ranked by funnel stage, then time;
- :class:`NewestEntries`, :class:`NewestTimes`, :class:`NewestKeys` and :class:`ReplayGuard` —
  sets bounded to their newest members by event time ("the N newest" of a set is the same
  whatever the order the members came in). These hold no data: they are the policy (bound and
  order) of a plain list or dict in the profile, which stays plain so that readers and the
  store see named entries (``{"ts", "url", "category"}``) and no conversion per flush.

:class:`Profile` holds them. Its stored layout (:meth:`Profile.to_layout` /
:meth:`Profile.from_layout`) is the one the profile store has always written, so a worker's
RocksDB and changelog keep decoding (``tests/unit/test_profile_layout.py``).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

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
#: Session keys of fixed windows of event time (events without a session id) start with this.
WINDOW_PREFIX = "~"

T = TypeVar("T")


# ---------------------------------------------------------------- registers

@dataclass(frozen=True, slots=True)
class Register(Generic[T]):
    """A value set by the newest writer, keyed by ``(ts, tie)`` (tie: a hash of the event id).

    Immutable, so two profiles may share one after a merge.
    """

    ts: int
    tie: int
    value: T

    @staticmethod
    def add(current: Register[T] | None, ts: int, tie: int, value: T) -> Register[T] | None:
        """``current`` or, when ``(ts, tie)`` is newer, a register holding ``value``."""
        if current is None or (ts, tie) > (current.ts, current.tie):
            return Register(ts, tie, value)
        return current

    @staticmethod
    def join(mine: Register[T] | None, theirs: Register[T] | None) -> Register[T] | None:
        """The newer of two registers (either may be unset)."""
        if theirs is None:
            return mine
        if mine is None or (theirs.ts, theirs.tie) > (mine.ts, mine.tie):
            return theirs
        return mine


@dataclass(frozen=True, slots=True)
class Consent:
    """What the person agreed to: service messages, marketing."""

    service: bool
    marketing: bool

    def allows(self, category: str) -> bool:
        """Whether messages of ``category`` (``service`` or ``marketing``) may be sent."""
        if category == "service":
            return self.service
        return category == "marketing" and self.marketing

    def to_dict(self) -> dict[str, bool]:
        return {"service": self.service, "marketing": self.marketing}


#: Consent until the person says otherwise.
DEFAULT_CONSENT = Consent(service=True, marketing=False)


# ---------------------------------------------------------------- sessions

class Session:
    """One session: its first and last event time and page views per category."""

    __slots__ = ("last", "start", "views")

    def __init__(self, start: int, last: int, views: dict[str, int] | None = None) -> None:
        self.start = start
        self.last = last
        self.views: dict[str, int] = views if views is not None else {}

    def add(self, ts: int) -> None:
        if ts < self.start:
            self.start = ts
        if ts > self.last:
            self.last = ts

    def count_view(self, category: str) -> None:
        self.views[category] = self.views.get(category, 0) + 1

    def join(self, other: Session) -> None:
        """Widen to ``other``'s span and add its views: a login splits one session between the
        anonymous and the known profile, and the two halves' views add up."""
        self.add(other.start)
        self.add(other.last)
        views = self.views
        for category, n in other.views.items():
            views[category] = views.get(category, 0) + n

    def copy(self) -> Session:
        return Session(self.start, self.last, dict(self.views))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Session) and (self.start, self.last, self.views) == \
            (other.start, other.last, other.views)

    def __repr__(self) -> str:
        return f"Session(start={self.start}, last={self.last}, views={self.views})"


class SessionLog:
    """The newest :data:`SESSIONS_KEPT` sessions by key, and how many older ones there were."""

    __slots__ = ("before", "by_key")

    def __init__(self, by_key: dict[str, Session] | None = None, before: int = 0) -> None:
        self.by_key: dict[str, Session] = by_key if by_key is not None else {}
        self.before = before

    @property
    def count(self) -> int:
        return self.before + len(self.by_key)

    def add(self, key: str, ts: int) -> Session:
        """The session ``key`` widened to ``ts`` (new if unknown). A new session older than the
        kept ones is counted and evicted at once: the session returned is then detached."""
        session = self.by_key.get(key)
        if session is None:
            session = self.by_key[key] = Session(ts, ts)
            self._evict()
        else:
            session.add(ts)
        return session

    def join(self, other: SessionLog) -> None:
        by_key = self.by_key
        for key, theirs in other.by_key.items():
            mine = by_key.get(key)
            if mine is None:
                by_key[key] = theirs.copy()
            else:
                mine.join(theirs)
        self.before += other.before
        self._evict()

    def _evict(self) -> None:
        # The oldest by start (then key) go first, whatever order the sessions arrived in.
        by_key = self.by_key
        while len(by_key) > SESSIONS_KEPT:
            del by_key[min(by_key.items(), key=lambda item: (item[1].start, item[0]))[0]]
            self.before += 1

    def current(self) -> tuple[str, Session] | None:
        """The session with the newest activity (ties: the later start, then the key)."""
        by_key = self.by_key
        if len(by_key) < 2:  # most people have one session: no max over one
            return next(iter(by_key.items()), None)
        return max(by_key.items(), key=lambda item: (item[1].last, item[1].start, item[0]))

    def at(self, ts: int) -> str | None:
        """The kept session a moment belongs to; the smallest key on a tie."""
        found = None
        for key, session in self.by_key.items():
            if session.start <= ts <= session.last and (found is None or key < found):
                found = key
        return found

    def __len__(self) -> int:
        return len(self.by_key)

    def __contains__(self, key: object) -> bool:
        return key in self.by_key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SessionLog) and (self.by_key, self.before) == (other.by_key, other.before)

    def __repr__(self) -> str:
        return f"SessionLog({self.by_key!r}, before={self.before})"


# ---------------------------------------------------------------- feedback outcomes

def outcome_rank(outcome: str | None, ts: int) -> tuple[int, int]:
    """How far down the funnel an outcome is (then how late): the larger wins."""
    return (OUTCOME_RANK.get(outcome or "", 0), ts)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Feedback on an action: ``shown`` < ``dismissed`` < ``clicked`` < ``converted``, then time."""

    outcome: str
    ts: int

    @staticmethod
    def join(mine: Outcome | None, theirs: Outcome) -> Outcome:
        if mine is None or outcome_rank(theirs.outcome, theirs.ts) > outcome_rank(mine.outcome, mine.ts):
            return theirs
        return mine


def join_outcome_into(entry: dict[str, Any], outcome: str, ts: int) -> None:
    """Keep the better outcome on a recent-action entry (``outcome``, ``outcome_ts``)."""
    if outcome_rank(outcome, ts) > outcome_rank(entry.get("outcome"), entry.get("outcome_ts", 0)):
        entry["outcome"] = outcome
        entry["outcome_ts"] = ts


# ---------------------------------------------------------------- bounded newest sets

#: How many events of one millisecond both sides of a join hold (None: a replay guard no longer
#: reaches back to it, so it cannot be told). See :meth:`ReplayGuard.shared`.
Shared = Callable[[int], "int | None"]


def join_counts(mine: Counter[Any], theirs: Counter[Any], shared: Shared,
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


@dataclass(frozen=True, slots=True)
class NewestEntries:
    """The ``bound`` newest entries of a list kept sorted by ``order`` (which starts with ts)."""

    bound: int
    order: Callable[[dict[str, Any]], tuple[Any, ...]]

    def add(self, entries: list[dict[str, Any]], entry: dict[str, Any]) -> None:
        order = self.order
        key = order(entry)
        at = len(entries)
        while at > 0 and order(entries[at - 1]) > key:  # nearly always appends: events come in order
            at -= 1
        entries.insert(at, entry)
        if len(entries) > self.bound:
            del entries[: len(entries) - self.bound]

    def join(self, mine: list[dict[str, Any]], theirs: list[dict[str, Any]], shared: Shared,
             bound: int | None = None) -> list[dict[str, Any]]:
        """Both lists' entries, an entry of an event both sides hold once; the newest ``bound``
        (default: this set's bound)."""
        entries: dict[tuple[Any, ...], dict[str, Any]] = {}
        counts: list[Counter[tuple[Any, ...]]] = [Counter(), Counter()]
        for side, entries_of_side in enumerate((mine, theirs)):
            for entry in entries_of_side:
                key = tuple(self.order(entry))
                counts[side][key] += 1
                entries.setdefault(key, entry)
        joined = join_counts(counts[0], counts[1], shared, lambda key: key[0])
        merged = [dict(entries[key]) for key in sorted(joined) for _ in range(joined[key])]
        return merged[-(self.bound if bound is None else bound):]


@dataclass(frozen=True, slots=True)
class NewestTimes:
    """The ``bound`` newest event times of a sorted list (a multiset: two events of one ms)."""

    bound: int

    def add(self, times: list[int], ts: int) -> None:
        bisect.insort(times, ts)
        if len(times) > self.bound:
            del times[: len(times) - self.bound]

    def join(self, mine: list[int], theirs: list[int], shared: Shared) -> list[int]:
        counts = join_counts(Counter(mine), Counter(theirs), shared, lambda ts: ts)
        return sorted(counts.elements())[-self.bound:]


@dataclass(frozen=True, slots=True)
class NewestKeys:
    """The ``bound`` keys of a dict ``key -> ts`` with the newest times (ties: the larger key)."""

    bound: int

    def add(self, stamps: dict[str, int], key: str, ts: int) -> None:
        known = stamps.get(key)
        if known is None or ts > known:
            stamps[key] = ts
        if len(stamps) > self.bound:
            del stamps[min(stamps.items(), key=lambda item: (item[1], item[0]))[0]]

    def join(self, stamps: dict[str, int], theirs: dict[str, int]) -> None:
        for key, ts in theirs.items():
            self.add(stamps, key, ts)


class ReplayGuard:
    """The ``[ts, tie]`` stamps of a person's :data:`REPLAY_GUARD` newest events, sorted.

    A policy over the profile's ``seen`` list (stored as it is): it recognises an event applied
    before, and tells a join which events both sides hold.
    """

    __slots__ = ()

    @staticmethod
    def add(seen: list[list[int]], ts: int, tie: int) -> bool:
        """Note the event; False when it is already there (a replay)."""
        stamp = [ts, tie]
        at = bisect.bisect_left(seen, stamp)
        if at < len(seen) and seen[at] == stamp:
            return False
        seen.insert(at, stamp)
        if len(seen) > REPLAY_GUARD:
            del seen[0]
        return True

    @staticmethod
    def join(mine: list[list[int]], theirs: list[list[int]]) -> list[list[int]]:
        union = {tuple(s) for s in mine} | {tuple(s) for s in theirs}
        return [list(s) for s in sorted(union)][-REPLAY_GUARD:]

    @staticmethod
    def overlap(mine: list[list[int]], theirs: list[list[int]]) -> int:
        """How many events both guards hold."""
        return len({tuple(s) for s in mine} & {tuple(s) for s in theirs})

    @staticmethod
    def shared(mine: list[list[int]], theirs: list[list[int]]) -> Shared:
        """What the two guards tell about the events both profiles hold, per event time.

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


def multiset_union(mine: Iterable[int], theirs: Iterable[int], bound: int) -> list[int]:
    """Each value as many times as the side that has it most often (a join, so idempotent)."""
    return sorted((Counter(mine) | Counter(theirs)).elements())[-bound:]


def _page_order(page: dict[str, Any]) -> tuple[Any, ...]:
    return (page["ts"], page["url"], page["category"] or "")


def _contact_order(contact: dict[str, Any]) -> tuple[Any, ...]:
    return (contact["ts"], contact["type"], contact["channel"], contact["reason"] or "",
            contact["sentiment"] if contact["sentiment"] is not None else -2.0)


def _action_order(action: dict[str, Any]) -> tuple[Any, ...]:
    return (action["ts"], action["action_id"])


#: One more page than kept: the page leaving settles its time on page (see ``fold``).
PAGES = NewestEntries(RECENT_PAGES + 1, _page_order)
CONTACTS = NewestEntries(RECENT_CONTACTS, _contact_order)
ACTIONS = NewestEntries(RECENT_ACTIONS, _action_order)
EVENT_TIMES = NewestTimes(EVENT_TIMES_PER_TYPE)
VISITORS = NewestKeys(VISITORS_KEPT)
GUARD = ReplayGuard()


# ---------------------------------------------------------------- the profile

@dataclass(slots=True)
class Profile:
    """Everything the engine keeps about one person.

    Derived views (``logged_in``, ``visitor_id``, ``sessions``, ``session_id``,
    ``session_started_ts``, ``session_topic_views``) are properties over the stored state; what
    other modules read is in :mod:`orchestrator.core.profile.queries`.
    """

    person_id: str
    customer_id: str | None = None
    #: visitor id -> last seen (event time); the newest VISITORS_KEPT.
    visitors: dict[str, int] = field(default_factory=dict)
    #: Logged in or not, as said by the newest event that said so (None: never said).
    login: Register[bool] | None = None
    first_seen_ts: int = 0
    last_seen_ts: int = 0
    events_seen: int = 0
    session_log: SessionLog = field(default_factory=SessionLog)
    recent_pages: list[dict[str, Any]] = field(default_factory=list)
    recent_contacts: list[dict[str, Any]] = field(default_factory=list)
    recent_actions: list[dict[str, Any]] = field(default_factory=list)
    #: The newest consent_updated (None: nothing said, :data:`DEFAULT_CONSENT` holds).
    consent: Register[Consent] | None = None
    last_sent: dict[str, int] = field(default_factory=dict)
    #: [ts, crc32(event identity)] of the newest REPLAY_GUARD events, sorted (:class:`ReplayGuard`).
    seen: list[list[int]] = field(default_factory=list)
    event_times: dict[str, list[int]] = field(default_factory=dict)
    sent_log: dict[str, list[int]] = field(default_factory=dict)
    #: action id -> feedback that came before its action was recorded.
    early_outcomes: dict[str, Outcome] = field(default_factory=dict)
    #: visitor ids whose anonymous profile has been merged in (a merge is applied once).
    merged_from: list[str] = field(default_factory=list)
    #: Sampled moments (feature vectors) waiting for their intents' labels; layout in
    #: :mod:`.pending` (written by orchestrator.core.scoring).
    pending: dict[str, Any] = field(default_factory=dict)
    #: intent -> the latest score (None: the model is not trusted yet), as of ``scored_ts``.
    scores: dict[str, float | None] = field(default_factory=dict)
    scored_ts: int = 0
    #: page category -> [views, settled time on page in ms] over the person's whole history.
    page_totals: dict[str, list[int]] = field(default_factory=dict)
    #: session key -> {page category: settled time on page in ms} (sessions in ``session_log``).
    session_dwell: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Broker time of the newest erasure of this person (0: never erased). Records from before
    #: it are dropped (see ``fold.erased_before``); a profile holding only this is a marker.
    erased_ts: int = 0

    # ------------------------------------------------------------ derived views

    @property
    def logged_in(self) -> bool:
        return self.login is not None and self.login.value

    @property
    def visitor_id(self) -> str | None:
        """The visitor id seen most recently (the device in use)."""
        if not self.visitors:
            return None
        return max(self.visitors.items(), key=lambda item: (item[1], item[0]))[0]

    @property
    def sessions(self) -> int:
        return self.session_log.count

    @property
    def sessions_before(self) -> int:
        """Sessions no longer in ``session_log``."""
        return self.session_log.before

    def current_session(self) -> tuple[str, Session] | None:
        return self.session_log.current()

    @property
    def session_id(self) -> str | None:
        current = self.session_log.current()
        if current is None or current[0].startswith(WINDOW_PREFIX):
            return None
        return current[0]

    @property
    def session_started_ts(self) -> int:
        current = self.session_log.current()
        return current[1].start if current else 0

    @property
    def session_topic_views(self) -> dict[str, int]:
        current = self.session_log.current()
        return current[1].views if current else {}

    # ------------------------------------------------------------ stored layout

    def to_layout(self) -> dict[str, Any]:
        """The stored layout, JSON-able, sharing this profile's lists (encode it at once)."""
        login, consent = self.login, self.consent
        return {
            "person_id": self.person_id,
            "customer_id": self.customer_id,
            "visitors": self.visitors,
            "login": None if login is None else [login.ts, login.tie, login.value],
            "first_seen_ts": self.first_seen_ts,
            "last_seen_ts": self.last_seen_ts,
            "events_seen": self.events_seen,
            "session_log": {key: [s.start, s.last, s.views] for key, s in self.session_log.by_key.items()},
            "sessions_before": self.session_log.before,
            "recent_pages": self.recent_pages,
            "recent_contacts": self.recent_contacts,
            "recent_actions": self.recent_actions,
            "consent": (DEFAULT_CONSENT if consent is None else consent.value).to_dict(),
            "consent_at": None if consent is None else [consent.ts, consent.tie],
            "last_sent": self.last_sent,
            "seen": self.seen,
            "event_times": self.event_times,
            "sent_log": self.sent_log,
            "early_outcomes": {key: [o.outcome, o.ts] for key, o in self.early_outcomes.items()},
            "merged_from": self.merged_from,
            "pending": self.pending,
            "scores": self.scores,
            "scored_ts": self.scored_ts,
            "page_totals": self.page_totals,
            "session_dwell": self.session_dwell,
            # Written only when set, so a never-erased profile keeps the earlier bytes.
            **({"erased_ts": self.erased_ts} if self.erased_ts else {}),
        }

    @classmethod
    def from_layout(cls, data: dict[str, Any]) -> Profile:
        """A profile from its stored layout (fields it does not know are ignored, missing ones
        take their defaults). Takes ownership of ``data``'s lists and dicts."""
        login = data.get("login")
        consent_at = data.get("consent_at")
        consent = data.get("consent") or {}
        return cls(
            person_id=data["person_id"],
            customer_id=data.get("customer_id"),
            visitors=data.get("visitors") or {},
            login=None if not login else Register(login[0], login[1], bool(login[2])),
            first_seen_ts=data.get("first_seen_ts", 0),
            last_seen_ts=data.get("last_seen_ts", 0),
            events_seen=data.get("events_seen", 0),
            session_log=SessionLog(
                {key: Session(start, last, views)
                 for key, (start, last, views) in (data.get("session_log") or {}).items()},
                data.get("sessions_before", 0)),
            recent_pages=data.get("recent_pages") or [],
            recent_contacts=data.get("recent_contacts") or [],
            recent_actions=data.get("recent_actions") or [],
            consent=None if not consent_at else Register(
                consent_at[0], consent_at[1],
                Consent(bool(consent.get("service")), bool(consent.get("marketing")))),
            last_sent=data.get("last_sent") or {},
            seen=data.get("seen") or [],
            event_times=data.get("event_times") or {},
            sent_log=data.get("sent_log") or {},
            early_outcomes={key: Outcome(outcome, ts)
                            for key, (outcome, ts) in (data.get("early_outcomes") or {}).items()},
            merged_from=data.get("merged_from") or [],
            pending=data.get("pending") or {},
            scores=data.get("scores") or {},
            scored_ts=data.get("scored_ts", 0),
            page_totals=data.get("page_totals") or {},
            session_dwell=data.get("session_dwell") or {},
            erased_ts=data.get("erased_ts", 0),
        )

    def to_dict(self) -> dict[str, Any]:
        """The stored layout as a fresh dict (nothing shared with the profile)."""
        return orjson.loads(orjson.dumps(self.to_layout()))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        return cls.from_layout(data)
