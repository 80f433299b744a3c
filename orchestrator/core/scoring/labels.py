"""Delayed labels: keep what was scored, settle it when the outcome comes or its horizon passes.

Every event is a decision point: rules decide on it with the scores served there. The labels
are therefore taken from those same moments, as a bounded sample of each person's events.
The pending snapshots of one person live in that person's profile as plain JSON-able data::

    pending = {"purchase_intent": [[snapshot_ts, packed_features], ...], ...}

``snapshot_ts`` is epoch ms (event time) of the event the vector was scored at;
``packed_features`` is :func:`.features.pack` of exactly the vector that was scored (lossless:
the features are quantised before scoring). Lists are sorted by ``snapshot_ts``; an intent with
nothing pending has no key, so a person with nothing pending has ``pending == {}``. The
functions here mutate ``pending`` in place.

Which moments are kept (why: docs/intent-scoring.md):

- each event gets a priority ``u`` in [0, 1) from a hash of its time (:func:`priority`); it is a
  candidate for an intent when ``u < spec.sample_rate``. The same ``u`` for every intent, so
  the intents' samples overlap;
- per intent at most ``spec.max_pending`` moments are pending: those with the smallest ``u``
  (a bottom-k sample). That is a uniform random sample of the person's candidate moments
  across the whole session and beyond, decided by time alone -- never by outcome, so the labels
  are not biased by it -- and the same whatever order the events arrive in;
- **positive**: an outcome event with ``snapshot_ts <= event_ts <= snapshot_ts + horizon``
  settles every such moment of that intent. An outcome older than a snapshot does not label
  it (reordered events), and a settled moment is gone, so a replayed outcome settles nothing;
- **negative**: a moment whose ``snapshot_ts + horizon`` is before the event-time watermark
  passed to :func:`settle_expired` (strictly before, so an outcome exactly at the deadline
  still counts if it arrives while the watermark is there).

Memory per person: at most ``max_pending`` snapshots per intent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

from orchestrator.core.scoring.features import LOGGED_IN, pack
from orchestrator.core.scoring.intents import IntentSpec

#: Pending snapshots, per intent name: [[snapshot_ts, packed features], ...] sorted by ts.
Pending = dict[str, list[list]]

_MASK64 = (1 << 64) - 1


#: Largest weight a label gets (see :func:`sample_weight`).
MAX_WEIGHT = 8.0


class SettledLabel(NamedTuple):
    """One learned fact: the features at ``snapshot_ts`` and whether the outcome followed;
    ``weight``: how many of the person's moments it stands for (see :func:`sample_weight`)."""

    intent: str
    features: list[int]  # packed, as stored
    label: bool
    snapshot_ts: int
    settled_ts: int
    weight: float = 1.0


def sample_weight(spec: IntentSpec, snaps: list[list]) -> float:
    """How many candidate moments each of ``snaps`` (the intent's pending list) stands for.

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


def snapshot(pending: Pending, specs: Iterable[IntentSpec], ts: int, features: Sequence[float], *,
             packed: list[int] | None = None) -> list[str]:
    """Offer the moment ``ts`` with its scored vector ``features`` to every intent in ``specs``.

    Returns the intents that keep it. An intent keeps it when it applies to the person, the
    moment is a candidate (``priority(ts) < spec.sample_rate``), it is not pending already, and
    it is among the ``spec.max_pending`` smallest priorities pending for that intent (the
    largest is then dropped). ``packed`` (``pack(features)``) may be passed to spare packing.
    """
    u = priority(ts)
    kept: list[str] = []
    for spec in specs:
        if u >= spec.sample_rate or not applies(spec, features):
            continue
        snaps = pending.get(spec.name)
        if snaps is None:
            if packed is None:
                packed = pack(features)
            pending[spec.name] = [[ts, packed]]
            kept.append(spec.name)
            continue
        if any(snap[0] == ts for snap in snaps):
            continue
        bound = spec.max_pending
        while len(snaps) > bound:  # over the bound after a merge of two profiles
            snaps.remove(max(snaps, key=_priority_of))
        if len(snaps) >= bound:
            worst = max(snaps, key=_priority_of)
            if _priority_of(worst) <= (u, ts):
                continue
            snaps.remove(worst)
        if packed is None:
            packed = pack(features)
        snaps.append([ts, packed])
        if len(snaps) > 1 and ts < snaps[-2][0]:
            snaps.sort(key=_ts_of)
        kept.append(spec.name)
    return kept


def _priority_of(snap: list) -> tuple[float, int]:
    return (priority(snap[0]), snap[0])


def _ts_of(snap: list) -> int:
    return snap[0]


def settle_on_event(pending: Pending, specs: Iterable[IntentSpec], event_type: str,
                    event_ts: int) -> list[SettledLabel]:
    """Positive labels: snapshots of intents whose outcome is ``event_type``, taken at or before
    ``event_ts`` and at most one horizon before it. They are removed from ``pending``."""
    settled: list[SettledLabel] = []
    if not pending:
        return settled
    for spec in specs:
        if event_type not in spec.outcome_event_types:
            continue
        snaps = pending.get(spec.name)
        if not snaps:
            continue
        horizon = spec.horizon_ms
        keep = []
        weight = sample_weight(spec, snaps)
        for snap in snaps:
            snap_ts = snap[0]
            if snap_ts <= event_ts <= snap_ts + horizon:
                settled.append(SettledLabel(spec.name, snap[1], True, snap_ts, event_ts, weight))
            else:
                keep.append(snap)
        if len(keep) != len(snaps):
            if keep:
                pending[spec.name] = keep
            else:
                del pending[spec.name]
    return settled


def settle_expired(pending: Pending, specs: Iterable[IntentSpec],
                   watermark_ts: int) -> list[SettledLabel]:
    """Negative labels: snapshots whose horizon ended before the event-time ``watermark_ts``.

    They are removed from ``pending``, and so is anything pending for an intent not in
    ``specs`` (an intent taken out of the configuration), which is not labelled. Pass the full
    set of specs. To wait for late outcomes, pass a watermark lowered by the allowed lateness.
    """
    settled: list[SettledLabel] = []
    if not pending:
        return settled
    by_name = {spec.name: spec for spec in specs}
    for name in list(pending):
        spec = by_name.get(name)
        if spec is None:
            del pending[name]
            continue
        snaps = pending[name]
        horizon = spec.horizon_ms
        expired = 0
        weight = 1.0
        for snap_ts, packed in snaps:  # sorted: the expired ones are a prefix
            if snap_ts + horizon >= watermark_ts:
                break
            if not expired:
                weight = sample_weight(spec, snaps)
            settled.append(SettledLabel(name, packed, False, snap_ts, watermark_ts, weight))
            expired += 1
        if expired == len(snaps):
            del pending[name]
        elif expired:
            del snaps[:expired]
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
