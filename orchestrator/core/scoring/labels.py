"""Delayed labels: keep what was scored, settle it when the outcome comes or its horizon passes.

Every event is a decision point: rules decide on it with the scores served there. The labels
are therefore taken from those same moments, as a bounded sample of each person's events.
The pending moments of one person live in that person's profile as plain JSON-able data, each
moment once with the intents it is pending for (the layout: :mod:`orchestrator.core.profile.pending`)::

    pending = {"_intents": ["purchase_intent", ...], "_moments": [[ts, mask, packed], ...]}

``ts`` is epoch ms (event time) of the event the vector was scored at; ``packed`` is
:func:`.features.pack` of exactly the vector that was scored (lossless: the features are
quantised before scoring); bit ``i`` of ``mask`` says the moment is pending for ``_intents[i]``.
A person with nothing pending has ``pending == {}``. The functions here mutate ``pending`` in
place, and read the previous layout (one list per intent) too, converting it on first use.

Which moments are kept (why: docs/intent-scoring.md):

- each event gets a priority ``u`` in [0, 1) from a hash of its time (:func:`priority`); it is a
  candidate for an intent when ``u < spec.sample_rate``. The same ``u`` for every intent, so
  the intents' samples overlap (and share their stored moments);
- per intent at most ``spec.max_pending`` moments are pending: those with the smallest ``u``
  (a bottom-k sample). That is a uniform random sample of the person's candidate moments
  across the whole session and beyond, decided by time alone -- never by outcome, so the labels
  are not biased by it -- and the same whatever order the events arrive in;
- **positive**: an outcome event with ``snapshot_ts <= event_ts <= snapshot_ts + horizon``
  decides every such moment of that intent (:func:`settle_on_event`). An outcome older than a
  snapshot does not label it (reordered events), and a decided moment is not decided again;
- **negative**: a moment without its outcome whose ``snapshot_ts + horizon`` is before the
  event-time watermark passed to :func:`settle_expired` (strictly before, so an outcome exactly
  at the deadline still counts if it arrives while the watermark is there);
- **learned when the horizon ends, either way**: :func:`settle_expired` returns the positives
  and the negatives of the moments whose horizon is over. A positive is known sooner, but
  learning it sooner than the negatives of the same moments makes every feature that grows with
  time (tenure, earlier sessions and pages) look like a sign of the outcome: the model would
  always have learned the positives of the last horizon and the negatives of the one before.

Memory per person: at most ``max_pending`` open moments per intent and as many decided positive
ones waiting for their horizon, each moment stored once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from orchestrator.core.profile.pending import (
    clear,
    moment_at,
    moments_of,
    note_seen,
    prune,
    seen_mask,
    seen_weight,
    start,
)
from orchestrator.core.scoring.features import LOGGED_IN, pack
from orchestrator.core.scoring.intents import IntentSpec

#: A person's pending moments (the profile's ``pending``; layout in
#: :mod:`orchestrator.core.profile.pending`).
Pending = dict[str, Any]

_MASK64 = (1 << 64) - 1


#: Largest weight a label gets (see :func:`sample_weight`).
MAX_WEIGHT = 8.0


class SettledLabel(NamedTuple):
    """One learned fact: the features at ``snapshot_ts`` and whether the outcome followed;
    ``weight``: how many of the person's moments it stands for (see :func:`sample_weight`)."""

    intent: str
    features: str  # packed, as stored (shared by the intents of the moment)
    label: bool
    snapshot_ts: int
    settled_ts: int
    weight: float = 1.0


def sample_weight(spec: IntentSpec, snaps: Sequence[Sequence[Any]]) -> float:
    """How many candidate moments each of ``snaps`` (the intent's pending moments, each with its
    time first) stands for.

    While fewer than ``max_pending`` are pending, every candidate was kept: 1. When the list is
    full, the person had more candidates than it holds: with the largest priority kept ``tau``
    (priorities are uniform below ``sample_rate``), about ``sample_rate / tau`` candidates per
    kept moment. Weighting by it makes a busy person's moments count as often as the scores
    served to them (every event), not as often as a quiet person's; it is also what makes the
    sample fair although a moment can be dropped later by the person's later activity (each
    kept moment is weighted by the inverse of its chance to be kept). At most
    :data:`MAX_WEIGHT`; 1 when ``spec.weighted`` is off.
    """
    if not spec.weighted or len(snaps) < spec.max_pending:
        return 1.0
    tau = max(priority(snap[0]) for snap in snaps)
    if tau <= 0.0:
        return MAX_WEIGHT
    return min(MAX_WEIGHT, max(1.0, spec.sample_rate / tau))


def applies(spec: IntentSpec, features: Sequence[float]) -> bool:
    """Whether ``spec`` is scored and learned for a person with this feature vector.

    The one place that decides it: scoring, snapshots and learning all ask here.
    """
    return not (spec.only_anonymous and features[LOGGED_IN])


@lru_cache(maxsize=1 << 16)
def priority(ts: int) -> float:
    """A pseudo-random number in [0, 1) fixed by the event time (splitmix64 of ``ts``).

    >>> priority(1_780_000_000_000) == priority(1_780_000_000_000)
    True
    >>> 0.0 <= priority(1) < 1.0
    True
    """
    z = (ts + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return ((z ^ (z >> 31)) >> 11) / float(1 << 53)


def _bit(table: list[str], name: str) -> int:
    # The intent's bit in the masks, 0 when the intent has nothing pending.
    for i, known in enumerate(table):
        if known == name:
            return 1 << i
    return 0


def snapshot(pending: Pending, specs: Iterable[IntentSpec], ts: int, features: Sequence[float], *,
             packed: str | None = None) -> list[str]:
    """Offer the moment ``ts`` with its scored vector ``features`` to every intent in ``specs``.

    Returns the intents that keep it. An intent keeps it when it applies to the person, the
    moment is a candidate (``priority(ts) < spec.sample_rate``), the intent has no moment at
    ``ts`` pending already, and it is among the ``spec.max_pending`` smallest priorities pending
    for that intent (the largest is then dropped). The moment is stored once for all the
    intents that keep it. ``packed`` (``pack(features)``) may be passed to spare packing.
    """
    u = priority(ts)
    kept: list[str] = []
    laid = None
    moment = None
    at_ts = 0  # the intents that have a moment at ts pending already
    dropped = False
    for spec in specs:
        if u >= spec.sample_rate or not applies(spec, features):
            continue
        if laid is None:
            laid = start(pending)
            for m in laid[1]:
                if m[0] == ts:
                    at_ts |= m[1]
        table, moments = laid
        name = spec.name
        bit = _bit(table, name)
        if bit:
            if at_ts & bit:
                continue
            bound = spec.max_pending
            # The sample: moments whose label is still open (one whose outcome was seen only
            # waits for its horizon and is not dropped for a new one).
            mine = [m for m in moments if m[1] & bit and not (len(m) > 3 and m[3] & bit)]
            if len(mine) >= bound:
                if len(mine) > bound:  # over the bound after a merge of two profiles
                    mine.sort(key=_priority_of)
                    while len(mine) > bound:
                        clear(mine.pop(), bit)
                        dropped = True
                worst = max(mine, key=_priority_of)  # the one a new moment would replace
                if _priority_of(worst) <= (u, ts):
                    continue
                clear(worst, bit)
                dropped = True
        else:
            table.append(name)
            bit = 1 << (len(table) - 1)
        if moment is None:
            moment = moment_at(moments, ts, pack(features) if packed is None else packed)
        moment[1] |= bit
        kept.append(name)
    if dropped or (laid is not None and not kept):
        prune(pending)
    return kept


def _priority_of(moment: Sequence[Any]) -> tuple[float, int]:
    return (priority(moment[0]), moment[0])


def settle_on_event(pending: Pending, specs: Iterable[IntentSpec], event_type: str,
                    event_ts: int) -> list[SettledLabel]:
    """The outcome ``event_type`` at ``event_ts``: the moments of intents with that outcome,
    taken at or before ``event_ts`` and at most one horizon before it, are positive.

    Their label is decided but not returned: it is learned when the moment's horizon ends
    (:func:`settle_expired`), as a negative would be, so that both classes are learned at the
    same age (learning positives sooner than negatives makes whatever grows with time -- tenure,
    earlier sessions -- look like a sign of the outcome; docs/intent-scoring.md). Returned are
    only the positives beyond ``max_pending`` waiting for one intent (several outcomes inside one
    horizon), oldest first: those are learned now, to keep the profile bounded; and, for an
    intent whose ``learn_positive_at`` is ``"outcome"``, every positive it decides. A replayed
    outcome decides nothing twice.
    """
    settled: list[SettledLabel] = []
    if not pending:
        return settled
    laid = None
    for spec in specs:
        if event_type not in spec.outcome_event_types:
            continue
        if laid is None:
            laid = moments_of(pending)
            if laid is None:
                return settled
        table, moments = laid
        bit = _bit(table, spec.name)
        if not bit:
            continue
        horizon = spec.horizon_ms
        # The sample closes for the moments the outcome decides: each stands for as many moments
        # as the sample held then, whatever happens to the others before its horizon ends.
        sample = [m for m in moments if m[1] & bit and not seen_mask(m) & bit]
        decided = [m for m in sample if m[0] <= event_ts <= m[0] + horizon]
        if not decided:
            continue
        weight = sample_weight(spec, sample)
        if spec.learn_positive_at == "outcome":  # learned now, as configured
            for m in decided:
                settled.append(SettledLabel(spec.name, m[2], True, m[0], event_ts, weight))
                clear(m, bit)
            continue
        for m in decided:
            note_seen(m, bit, weight)
        seen = [m for m in moments if seen_mask(m) & bit]
        for m in seen[:max(0, len(seen) - spec.max_pending)]:
            settled.append(SettledLabel(spec.name, m[2], True, m[0], event_ts, seen_weight(m, bit)))
            clear(m, bit)
    if settled:
        prune(pending)
    return settled


class _SpecIndex(NamedTuple):
    by_name: dict[str, IntentSpec]
    horizons: dict[str, int]  # ms
    shortest_ms: int


_INDEXES: dict[int, tuple[Any, _SpecIndex]] = {}


def _index(specs: Iterable[IntentSpec]) -> _SpecIndex:
    # The specs by name and their horizons, remembered per specs object: the scorer and the
    # sweeps pass the same tuple at every call, and this runs at every event of a person with
    # something pending.
    found = _INDEXES.get(id(specs))
    if found is not None and found[0] is specs:
        return found[1]
    listed = tuple(specs)
    index = _SpecIndex({spec.name: spec for spec in listed},
                       {spec.name: spec.horizon_ms for spec in listed},
                       min((spec.horizon_ms for spec in listed), default=0))
    if isinstance(specs, tuple):
        if len(_INDEXES) >= 64:
            _INDEXES.clear()
        _INDEXES[id(specs)] = (specs, index)  # the object is held, so its id is not reused
    return index


def _any_due(moments: list[Any], known: list[tuple[int, str, int]], watermark_ts: int) -> bool:
    # Whether any intent's earliest moment (the first with its bit: moments are sorted by
    # time) has passed its horizon.
    for bit, _, horizon in known:
        for m in moments:
            if m[1] & bit:
                if m[0] + horizon < watermark_ts:
                    return True
                break
    return False


def _by_intent_then_time(item: tuple[int, str, list[Any]]) -> tuple[int, int]:
    return item[0], item[2][0]


def settle_expired(pending: Pending, specs: Iterable[IntentSpec],
                   watermark_ts: int) -> list[SettledLabel]:
    """The labels of the moments whose horizon (per intent) ended before the event-time
    ``watermark_ts``: positive when the intent's outcome was seen in it
    (:func:`settle_on_event`), otherwise negative.

    They stop being pending for that intent, and moments stop being pending for an intent not
    in ``specs`` (an intent taken out of the configuration), unlabelled. Pass the full set of
    specs. To wait for late outcomes, pass a watermark lowered by the allowed lateness.
    """
    settled: list[SettledLabel] = []
    if not pending:
        return settled
    laid = moments_of(pending)
    if laid is None:
        return settled
    table, moments = laid
    index = _index(specs)
    horizons = index.horizons
    # The intents of the table by bit, with their horizon; an intent not configured any more
    # has none, and its bit is cleared below.
    known: list[tuple[int, str, int]] = []
    unknown = 0
    for i, name in enumerate(table):
        horizon = horizons.get(name)
        if horizon is None:
            unknown |= 1 << i
        else:
            known.append((1 << i, name, horizon))
    if not unknown and not _any_due(moments, known, watermark_ts):
        return settled  # the common case at an event
    expired: list[tuple[int, str, list[Any]]] = []
    deadline = watermark_ts - index.shortest_ms
    for m in moments:  # sorted by time: nothing is due after the first moment inside every horizon
        ts = m[0]
        if ts >= deadline:
            break
        mask = m[1]
        for bit, name, horizon in known:
            if mask & bit and ts + horizon < watermark_ts:
                expired.append((bit, name, m))
    if unknown:
        for m in moments:
            if m[1] & unknown:
                clear(m, unknown)
    expired.sort(key=_by_intent_then_time)
    # Weights: of a positive, the one recorded when its outcome came; of a negative, by the
    # intent's open sample now (before any of it is settled).
    weights: dict[int, float] = {}
    labelled = []
    for bit, name, m in expired:
        if seen_mask(m) & bit:
            labelled.append((bit, name, m, True, seen_weight(m, bit)))
            continue
        if bit not in weights:
            weights[bit] = sample_weight(index.by_name[name], [
                o for o in moments if o[1] & bit and not seen_mask(o) & bit])
        labelled.append((bit, name, m, False, weights[bit]))
    for bit, name, m, positive, weight in labelled:
        settled.append(SettledLabel(name, m[2], positive, m[0], watermark_ts, weight))
        clear(m, bit)
    prune(pending)
    return settled


def earliest_deadline(pending: Pending, specs: Iterable[IntentSpec]) -> int | None:
    """The earliest ``snapshot_ts + horizon`` pending (for a sweep index), or None if none.

    :func:`settle_expired` settles that moment once the watermark is past this time.
    """
    best: int | None = None
    if not pending:
        return best
    laid = moments_of(pending)
    if laid is None:
        return best
    table, moments = laid
    by_name = _index(specs).by_name
    for i, name in enumerate(table):
        spec = by_name.get(name)
        if spec is None:
            continue
        bit = 1 << i
        for m in moments:  # sorted by time: the first of the intent is its earliest
            if m[1] & bit:
                deadline = m[0] + spec.horizon_ms
                if best is None or deadline < best:
                    best = deadline
                break
    return best
