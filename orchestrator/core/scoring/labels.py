"""Delayed labels: keep what was scored, settle it when the outcome comes or its horizon passes.

The pending snapshots of one person live in that person's profile as plain JSON-able data::

    pending = {"purchase_intent": [[snapshot_ts, packed_features], ...], ...}

``snapshot_ts`` is epoch ms (event time); ``packed_features`` is :func:`.features.pack` of the
feature vector (ints, thousandths, fixed order). Lists are sorted by ``snapshot_ts``; an intent
with nothing pending has no key. The functions here mutate ``pending`` in place.

Label policy (why: docs/intent-scoring.md):

- a snapshot is taken at most once per ``min_gap_ms`` of event time and at most ``bound`` are
  pending per intent; when full, new moments are skipped, never older ones evicted. Both
  decisions use only what is known at that moment, so the sample is not biased by outcomes;
- **positive**: an outcome event with ``snapshot_ts <= event_ts <= snapshot_ts + horizon``
  settles every such snapshot of that intent. An outcome older than a snapshot does not label
  it (reordered events), and a settled snapshot is gone, so a replayed outcome settles nothing;
- **negative**: a snapshot whose ``snapshot_ts + horizon`` is before the event-time watermark
  passed to :func:`settle_expired` (strictly before, so an outcome exactly at the deadline
  still counts if it arrives while the watermark is there).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from orchestrator.core.scoring.features import LOGGED_IN, pack
from orchestrator.core.scoring.intents import IntentSpec

#: Pending snapshots, per intent name: [[snapshot_ts, packed features], ...] sorted by ts.
Pending = dict[str, list[list]]

DEFAULT_MIN_GAP_MS = 5 * 60 * 1000
DEFAULT_BOUND = 4


class SettledLabel(NamedTuple):
    """One learned fact: the features at ``snapshot_ts`` and whether the outcome followed."""

    intent: str
    features: list[int]  # packed, as stored
    label: bool
    snapshot_ts: int
    settled_ts: int


def applies(spec: IntentSpec, features: Sequence[float]) -> bool:
    """Whether ``spec`` is scored and learned for a person with this (plain or packed) vector."""
    return not (spec.only_anonymous and features[LOGGED_IN])


def snapshot(pending: Pending, spec: IntentSpec, ts: int, features: Sequence[float], *,
             min_gap_ms: int = DEFAULT_MIN_GAP_MS, bound: int = DEFAULT_BOUND) -> bool:
    """Keep ``features`` (a plain vector) at event time ``ts`` to be labelled later.

    Returns whether it was kept: not when the intent does not apply to the person, when
    ``bound`` snapshots are pending, or when another is within ``min_gap_ms`` of ``ts``
    (either side: a late event is held to the same spacing).
    """
    if not applies(spec, features):
        return False
    return _keep(pending, spec.name, ts, features, None, min_gap_ms, bound)


def _keep(pending: Pending, name: str, ts: int, features: Sequence[float] | None,
          packed: list[int] | None, min_gap_ms: int, bound: int) -> bool:
    # Shared by snapshot() and the scorer, which packs a vector once for all intents.
    snaps = pending.get(name)
    if snaps is None:
        pending[name] = [[ts, packed if packed is not None else pack(features or ())]]
        return True
    if len(snaps) >= bound:
        return False
    for snap_ts, _ in snaps:
        if -min_gap_ms < ts - snap_ts < min_gap_ms:
            return False
    snaps.append([ts, packed if packed is not None else pack(features or ())])
    if ts < snaps[-2][0]:  # a late event: keep the list sorted by time
        snaps.sort(key=_ts_of)
    return True


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
        for snap in snaps:
            snap_ts = snap[0]
            if snap_ts <= event_ts <= snap_ts + horizon:
                settled.append(SettledLabel(spec.name, snap[1], True, snap_ts, event_ts))
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
        for snap_ts, packed in snaps:  # sorted: the expired ones are a prefix
            if snap_ts + horizon >= watermark_ts:
                break
            settled.append(SettledLabel(name, packed, False, snap_ts, watermark_ts))
            expired += 1
        if expired == len(snaps):
            del pending[name]
        elif expired:
            del snaps[:expired]
    return settled


def earliest_deadline(pending: Pending, specs: Iterable[IntentSpec]) -> int | None:
    """The earliest ``snapshot_ts + horizon`` pending (for a sweep index), or None if none.

    :func:`settle_expired` settles that snapshot once the watermark is past this time.
    """
    best: int | None = None
    if not pending:
        return best
    for spec in specs:
        snaps = pending.get(spec.name)
        if snaps:
            deadline = snaps[0][0] + spec.horizon_ms
            if best is None or deadline < best:
                best = deadline
    return best
