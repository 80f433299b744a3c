"""Delayed labels: keep what was scored, settle it when the outcome comes or its horizon passes.

Every event is a decision point: rules decide on it with the scores served there. The labels
are therefore taken from those same moments, as a bounded sample of each person's events.
The pending snapshots of one person live in that person's profile as plain JSON-able data::

    pending = {"~v": [[ts, packed_features], ...],        # the vectors, shared by the intents
               "purchase_intent": [[ts], ...], ...}       # per intent: the moments waiting

``ts`` is epoch ms (event time) of the event the vector was scored at; ``packed_features`` is
:func:`.features.pack` of exactly the vector that was scored. Every list is sorted by ``ts``; an
intent with nothing pending has no key, and a vector no intent waits for is dropped, so a
person with nothing pending has ``pending == {}``. The functions here mutate ``pending``.

Which moments are kept (why: docs/intent-scoring.md):

- each event gets a priority ``u`` in [0, 1) from a hash of its time (:func:`priority`); it is a
  candidate when ``u < sample_rate``, the same events for every intent, so one stored vector
  usually serves all four;
- per intent at most ``bound`` moments are pending: those with the smallest ``u`` (a bottom-k
  sample). A uniform random sample of the person's candidate moments, across the whole session
  and beyond, decided by time alone -- never by outcome, so the labels are not biased -- and
  the same whatever order the events arrive in (the sample of a set, like the rest of the
  profile);
- **positive**: an outcome event with ``snapshot_ts <= event_ts <= snapshot_ts + horizon``
  settles every such moment of that intent. An outcome older than a snapshot does not label
  it (reordered events), and a settled moment is gone, so a replayed outcome settles nothing;
- **negative**: a moment whose ``snapshot_ts + horizon`` is before the event-time watermark
  passed to :func:`settle_expired` (strictly before, so an outcome exactly at the deadline
  still counts if it arrives while the watermark is there).

Memory per person: at most ``bound`` moments per intent, and at most ``bound`` x intents stored
vectors (fewer in practice: the intents share them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from orchestrator.core.scoring.features import LOGGED_IN, pack
from orchestrator.core.scoring.intents import IntentSpec

#: Pending snapshots: VECTORS -> [[ts, packed], ...]; intent name -> [[ts], ...]; sorted by ts.
Pending = dict[str, list[list]]

#: The key of the shared vectors in ``pending`` (intent names cannot start with "~").
VECTORS = "~v"
#: Moments pending per intent at most.
DEFAULT_BOUND = 8
#: Share of events that are candidates for a label (the same events for every intent).
DEFAULT_SAMPLE_RATE = 0.25

_MASK64 = (1 << 64) - 1


class SettledLabel(NamedTuple):
    """One learned fact: the features at ``snapshot_ts`` and whether the outcome followed."""

    intent: str
    features: list[int]  # packed, as stored
    label: bool
    snapshot_ts: int
    settled_ts: int


def applies(spec: IntentSpec, features: Sequence[float]) -> bool:
    """Whether ``spec`` is scored and learned for a person with this (plain or packed) vector.

    The one place that decides it: scoring, snapshots and learning all ask here.
    """
    return not (spec.only_anonymous and features[LOGGED_IN])


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


def snapshot(pending: Pending, specs: Iterable[IntentSpec], ts: int, features: Sequence[float], *,
             bound: int = DEFAULT_BOUND, sample_rate: float = DEFAULT_SAMPLE_RATE,
             packed: list[int] | None = None) -> list[str]:
    """Offer the moment ``ts`` with its scored vector ``features`` to every intent in ``specs``.

    Returns the intents that keep it. An intent keeps it when it applies to the person, the
    moment is a candidate (``priority(ts) < sample_rate``), it is not pending already, and it is
    among the ``bound`` smallest priorities pending for that intent (the largest is then
    dropped). ``packed`` (``pack(features)``) may be passed to spare packing it again.
    """
    u = priority(ts)
    if u >= sample_rate:
        return []
    kept: list[str] = []
    for spec in specs:
        if not applies(spec, features):
            continue
        moments = pending.get(spec.name)
        if moments is None:
            pending[spec.name] = [[ts]]
            kept.append(spec.name)
            continue
        if any(m[0] == ts for m in moments):
            continue
        while len(moments) > bound:  # over the bound after a merge of two profiles
            worst = max(moments, key=_priority_of)
            moments.remove(worst)
            _release(pending, worst[0])
        if len(moments) >= bound:
            worst = max(moments, key=_priority_of)
            if priority(worst[0]) <= u:
                continue
            moments.remove(worst)
            _release(pending, worst[0])
        moments.append([ts])
        if len(moments) > 1 and ts < moments[-2][0]:
            moments.sort(key=_ts_of)
        kept.append(spec.name)
    if kept:
        vectors = pending.setdefault(VECTORS, [])
        if not any(v[0] == ts for v in vectors):
            vectors.append([ts, packed if packed is not None else pack(features)])
            if len(vectors) > 1 and ts < vectors[-2][0]:
                vectors.sort(key=_ts_of)
    return kept


def _priority_of(moment: list) -> tuple[float, int]:
    return (priority(moment[0]), moment[0])


def _ts_of(item: list) -> int:
    return item[0]


def _vector(pending: Pending, ts: int) -> list[int] | None:
    for v in pending.get(VECTORS, ()):
        if v[0] == ts:
            return v[1]
    return None


def _release(pending: Pending, ts: int) -> None:
    """Drop the vector at ``ts`` unless another intent still waits for it."""
    for name, moments in pending.items():
        if name != VECTORS and any(m[0] == ts for m in moments):
            return
    vectors = pending.get(VECTORS)
    if vectors is not None:
        vectors[:] = [v for v in vectors if v[0] != ts]
        if not vectors:
            del pending[VECTORS]


def _settle(pending: Pending, name: str, moments: list[list], label: bool, settled_ts: int,
            out: list[SettledLabel]) -> None:
    for moment in moments:
        vector = _vector(pending, moment[0])
        if vector is not None:
            out.append(SettledLabel(name, vector, label, moment[0], settled_ts))


def _gc(pending: Pending) -> None:
    """Drop the vectors no intent waits for (and the vectors key when none are left)."""
    vectors = pending.get(VECTORS)
    if vectors is None:
        return
    waiting = {m[0] for name, moments in pending.items() if name != VECTORS for m in moments}
    kept = [v for v in vectors if v[0] in waiting]
    if kept:
        if len(kept) != len(vectors):
            pending[VECTORS] = kept
    else:
        del pending[VECTORS]


def settle_on_event(pending: Pending, specs: Iterable[IntentSpec], event_type: str,
                    event_ts: int) -> list[SettledLabel]:
    """Positive labels: moments of intents whose outcome is ``event_type``, taken at or before
    ``event_ts`` and at most one horizon before it. They are removed from ``pending``."""
    settled: list[SettledLabel] = []
    if not pending:
        return settled
    for spec in specs:
        if event_type not in spec.outcome_event_types:
            continue
        moments = pending.get(spec.name)
        if not moments:
            continue
        horizon = spec.horizon_ms
        hit = [m for m in moments if m[0] <= event_ts <= m[0] + horizon]
        if not hit:
            continue
        _settle(pending, spec.name, hit, True, event_ts, settled)
        keep = [m for m in moments if not (m[0] <= event_ts <= m[0] + horizon)]
        if keep:
            pending[spec.name] = keep
        else:
            del pending[spec.name]
    if settled:
        _gc(pending)
    return settled


def settle_expired(pending: Pending, specs: Iterable[IntentSpec],
                   watermark_ts: int) -> list[SettledLabel]:
    """Negative labels: moments whose horizon ended before the event-time ``watermark_ts``.

    They are removed from ``pending``, and so is anything pending for an intent not in
    ``specs`` (an intent taken out of the configuration), which is not labelled. Pass the full
    set of specs. To wait for late outcomes, pass a watermark lowered by the allowed lateness.
    """
    settled: list[SettledLabel] = []
    if not pending:
        return settled
    by_name = {spec.name: spec for spec in specs}
    changed = False
    for name in list(pending):
        if name == VECTORS:
            continue
        spec = by_name.get(name)
        if spec is None:
            del pending[name]
            changed = True
            continue
        moments = pending[name]
        horizon = spec.horizon_ms
        expired = 0
        for moment in moments:  # sorted: the expired ones are a prefix
            if moment[0] + horizon >= watermark_ts:
                break
            expired += 1
        if expired:
            _settle(pending, name, moments[:expired], False, watermark_ts, settled)
            changed = True
            if expired == len(moments):
                del pending[name]
            else:
                del moments[:expired]
    if changed or (VECTORS in pending and len(pending) == 1):
        _gc(pending)
    return settled


def earliest_deadline(pending: Pending, specs: Iterable[IntentSpec]) -> int | None:
    """The earliest ``snapshot_ts + horizon`` pending (for a sweep index), or None if none.

    :func:`settle_expired` settles that moment once the watermark is past this time.
    """
    best: int | None = None
    if not pending:
        return best
    for spec in specs:
        moments = pending.get(spec.name)
        if moments:
            deadline = moments[0][0] + spec.horizon_ms
            if best is None or deadline < best:
                best = deadline
    return best
