"""``event_to_action.py --interleave``: the systems measured rate by rate, in a moving order.

Run one system's whole sweep after another's and the last system always meets the broker after
the others' heaviest rates, and every system meets a different stretch of a noisy machine.
Interleaved, each rate is run by every system within the same minutes, and the order moves by one
system per rate.
"""

from __future__ import annotations

from typing import Any


def rotated(systems: list[str], by: int) -> list[str]:
    """``systems`` starting at position ``by`` (modulo their number), in the same cyclic order.

    >>> rotated(["floor", "quix", "engine-1"], 1), rotated(["floor", "quix", "engine-1"], 3)
    (['quix', 'engine-1', 'floor'], ['floor', 'quix', 'engine-1'])
    """
    start = by % len(systems) if systems else 0
    return systems[start:] + systems[:start]


def joined_sweep(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One system's sweep over several rates from the single-rate sweeps of ``--interleave``."""
    rows = [row for part in parts for row in part["rows"]]
    return {**parts[0], "tag": [part["tag"] for part in parts],
            "warm_up": [part["warm_up"] for part in parts], "rows": rows,
            "saturated_at": next((r["offered_rate"] for r in rows if r["saturated"]), None),
            "highest_unsaturated_rate": max((r["offered_rate"] for r in rows if not r["saturated"]),
                                            default=None),
            "interleaved": True}
