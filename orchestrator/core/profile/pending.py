"""The intent models' pending snapshots as a profile stores them: each sampled moment once.

The scoring core (:mod:`orchestrator.core.scoring.labels`) keeps a bounded sample of a person's
moments -- the feature vector scored at an event -- until each intent that keeps it learns its
label. The same moment is usually kept by several intents (they share one sample priority), so
it is stored once, with the intents it is pending for. The stored layout (**layout 2**)::

    {"_intents": ["purchase_intent", "churn_risk", ...],
     "_moments": [[1780003600000, 3, "3,120,14,693,..."], ...]}

- ``_intents``: the intent names the masks refer to: bit ``i`` of a mask is ``_intents[i]``;
- ``_moments``: ``[ts, mask, packed]`` per moment, sorted by ``(ts, packed)``: the event time
  (epoch ms) the vector was scored at, the intents it is still pending for (never 0), and the
  vector as :func:`orchestrator.core.scoring.features.pack` writes it (its non-zero features as
  comma-separated ``index,thousandths`` pairs). A string rather than a JSON list: the profile is
  decoded and encoded at every event of the person, and one string per moment costs a fraction
  of the ~50 integers of a list (docs/intent-scoring.md, "Labels at decision points"). Two more
  elements when the outcome of some intent has been seen for the moment (its label is positive;
  it is learned when its horizon ends, like a negative): the mask of those intents, and the
  weight of each one's label, fixed when the outcome came, in the order of their bits;
- nothing pending: ``{}``.

**Layout 1** (before): ``{intent: [[ts, [index, thousandths, ...]], ...]}``, the same vector once
per intent. It is still read: :func:`moments_of` converts it in place the first time the scoring
core or a merge touches it; until then a stored profile is written back byte for byte. The two
are told apart by their keys: a name starting with ``_`` is not a valid intent name.

What a pending dict *means* is a set of ``(intent, ts, packed)`` entries, each with whether its
outcome has been seen and the label's weight then (:func:`entries`), the same in both layouts.
:func:`join` (used by ``merge_profiles``) is the union of those sets (an outcome seen in either
is seen, with the larger weight) and writes it in one canonical form, so merging is
commutative, associative and idempotent whatever the layouts and the order of the moments in
the inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The keys of layout 2 (not valid intent names, so never the keys of layout 1).
INTENTS = "_intents"
MOMENTS = "_moments"

Moment = list[Any]  # [ts, mask, packed] or [ts, mask, packed, outcomes seen mask, their weights]
Entry = tuple[str, int, str]  # (intent, ts, packed)


def packed_text(packed: str | Iterable[int]) -> str:
    """A packed vector as layout 2 stores it (layout 1 stored the list of integers).

    >>> packed_text([3, 120, 14, 693]), packed_text("3,120")
    ('3,120,14,693', '3,120')
    """
    if isinstance(packed, str):
        return packed
    return ",".join(map(str, packed))


def moments_of(pending: dict[str, Any]) -> tuple[list[str], list[Moment]] | None:
    """The intent table and the moments of ``pending`` (layout 2, mutable in place), or None when
    nothing is pending. A layout-1 dict (or one holding both, e.g. written by an older worker
    after a newer one) is converted in place first."""
    moments = pending.get(MOMENTS)
    if moments is None or len(pending) != 2:
        if not pending:
            return None
        _upgrade(pending)
        moments = pending.get(MOMENTS)
        if moments is None:
            return None
    if not moments:
        pending.clear()
        return None
    return pending[INTENTS], moments


def start(pending: dict[str, Any]) -> tuple[list[str], list[Moment]]:
    """The intent table and moments of ``pending``, made empty ones when nothing is pending
    (for adding a moment; :func:`prune` empties ``pending`` again if none is added)."""
    laid = moments_of(pending)
    if laid is None:
        table: list[str] = []
        moments: list[Moment] = []
        pending[INTENTS] = table
        pending[MOMENTS] = moments
        return table, moments
    return laid


def moment_at(moments: list[Moment], ts: int, packed: str) -> Moment:
    """The moment ``(ts, packed)`` of ``moments``, inserted in order with an empty mask if absent."""
    # Moments are few (a dozen at most, as a rule) and a new one is usually the newest: look
    # from the end.
    at = len(moments)
    while at and (moments[at - 1][0], moments[at - 1][2]) >= (ts, packed):
        at -= 1
        if moments[at][0] == ts and moments[at][2] == packed:
            return moments[at]
    moment: Moment = [ts, 0, packed]
    moments.insert(at, moment)
    return moment


def seen_mask(moment: Moment) -> int:
    """The intents whose outcome has been seen for ``moment``."""
    return moment[3] if len(moment) > 3 else 0


def _slot(seen: int, bit: int) -> int:
    # Where the weight of ``bit`` is in the weights of a moment: after those of lower bits seen.
    return (seen & (bit - 1)).bit_count()


def seen_weight(moment: Moment, bit: int) -> float:
    """The weight recorded when the outcome of the intent ``bit`` was seen for ``moment``."""
    return moment[4][_slot(moment[3], bit)]


def note_seen(moment: Moment, bit: int, weight: float) -> None:
    """Record that the outcome of the intent ``bit`` has been seen for ``moment``, with the
    weight of its label (how many moments it stands for, fixed when the outcome came)."""
    if len(moment) <= 3:
        moment.extend((bit, [weight]))
        return
    if moment[3] & bit:
        return
    moment[4].insert(_slot(moment[3], bit), weight)
    moment[3] |= bit


def clear(moment: Moment, bits: int) -> None:
    """``moment`` is no longer pending for the intents ``bits`` (:func:`prune` drops it when it
    is pending for none)."""
    moment[1] &= ~bits
    if len(moment) > 3 and moment[3] & bits:
        seen, weights = moment[3], moment[4]
        for i in reversed(range(seen.bit_length())):
            bit = 1 << i
            if seen & bit & bits:
                del weights[_slot(seen, bit)]
        seen &= ~bits
        if seen:
            moment[3] = seen
        else:
            del moment[3:]


def prune(pending: dict[str, Any]) -> None:
    """Drop the moments no intent keeps any more; ``pending`` becomes ``{}`` when none is left."""
    moments = pending.get(MOMENTS)
    if moments is None:
        return
    kept = [m for m in moments if m[1]]
    if kept:
        if len(kept) != len(moments):
            moments[:] = kept
    else:
        pending.clear()


def pending_of(pending: dict[str, Any], intent: str) -> list[tuple[int, str]]:
    """The moments pending for ``intent``: ``(ts, packed)`` sorted by time (either layout; not
    mutated)."""
    return sorted((ts, packed) for name, ts, packed in entries(pending) if name == intent)


def outcomes_seen_of(pending: dict[str, Any], intent: str) -> list[int]:
    """The times of the moments pending for ``intent`` whose outcome has been seen (positive,
    waiting for their horizon to end), sorted."""
    return sorted(ts for (name, ts, _), weight in entries(pending).items()
                  if weight is not None and name == intent)


def entries(pending: dict[str, Any]) -> dict[Entry, float | None]:
    """What ``pending`` holds: ``(intent, ts, packed)`` -> None while the intent's outcome has not
    been seen for it, else the weight recorded then (either layout; not mutated)."""
    out: dict[Entry, float | None] = {}
    table = pending.get(INTENTS) or []
    for moment in pending.get(MOMENTS) or []:
        ts, mask, packed = moment[0], moment[1], packed_text(moment[2])
        seen = seen_mask(moment)
        for i, name in enumerate(table):
            bit = 1 << i
            if mask & bit:
                out[(name, ts, packed)] = seen_weight(moment, bit) if seen & bit else None
    for name, snapshots in pending.items():
        if name not in (INTENTS, MOMENTS):
            for ts, packed in snapshots:
                out.setdefault((name, ts, packed_text(packed)), None)
    return out


def from_entries(found: Mapping[Entry, float | None] | Iterable[Entry]) -> dict[str, Any]:
    """The canonical layout-2 dict of entries (with the weight recorded when each one's outcome
    was seen, or None; an iterable of entries: none seen): intents sorted by name, moments by
    ``(ts, packed)``, the outcomes seen written only when there are some; ``{}`` for none."""
    if not isinstance(found, Mapping):
        found = dict.fromkeys(found)
    if not found:
        return {}
    table = sorted({name for name, _, _ in found})
    bits = {name: 1 << i for i, name in enumerate(table)}
    moments: dict[tuple[int, str], Moment] = {}
    for (name, ts, packed), weight in sorted(found.items(), key=lambda item: item[0]):
        moment = moments.setdefault((ts, packed), [ts, 0, packed])
        moment[1] |= bits[name]
        if weight is not None:
            note_seen(moment, bits[name], weight)
    return {INTENTS: table, MOMENTS: [moments[key] for key in sorted(moments)]}


def join(target: dict[str, Any], other: dict[str, Any]) -> None:
    """Merge ``other`` into ``target`` in place: the union of their entries, an outcome seen in
    either seen in the result (with the larger weight if both saw it), in canonical form.

    Commutative, associative and idempotent in what is pending, and the written form depends
    only on that (not on the layouts or the order of the inputs). A moment pending in either
    profile stays pending, as when the snapshots of two profiles were appended per intent.
    """
    merged = entries(target)
    for entry, weight in entries(other).items():
        mine = merged.get(entry)
        merged[entry] = weight if mine is None else mine if weight is None else max(mine, weight)
    merged_layout = from_entries(merged)
    target.clear()
    target.update(merged_layout)


def _upgrade(pending: dict[str, Any]) -> None:
    # Layout-1 entries (keys that are intent names) become moments of layout 2; moments already
    # in layout 2 keep their place. Not canonical (the intents keep the order met), which only
    # join needs.
    old = [(name, snapshots) for name, snapshots in pending.items() if name not in (INTENTS, MOMENTS)]
    table, moments = pending.get(INTENTS), pending.get(MOMENTS)
    if table is None or moments is None:
        table, moments = [], []
    for name, _ in old:
        del pending[name]
    for name, snapshots in old:
        if name not in table:
            table.append(name)
        bit = 1 << table.index(name)
        for ts, packed in snapshots:
            moment_at(moments, ts, packed_text(packed))[1] |= bit
    if moments:
        pending[INTENTS] = table
        pending[MOMENTS] = moments
    else:
        pending.clear()
