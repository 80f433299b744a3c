"""How event_to_action.py --interleave orders systems and joins their single-rate sweeps."""

from __future__ import annotations

from benchmarks.interleave import joined_sweep, rotated


def test_the_order_moves_by_one_system_per_rate_and_comes_round_again() -> None:
    systems = ["floor", "quix", "engine-1", "engine-2"]
    firsts = [rotated(systems, rate_index)[0] for rate_index in range(6)]
    assert firsts == ["floor", "quix", "engine-1", "engine-2", "floor", "quix"]
    assert all(sorted(rotated(systems, n)) == sorted(systems) for n in range(6))
    assert rotated([], 3) == []


def part(tag: str, rate: float, saturated: bool) -> dict:
    return {"system": "engine-1", "load": "new-visitors", "tag": tag, "settings": {"tag": tag},
            "warm_up": {"rate": rate}, "rows": [{"offered_rate": rate, "saturated": saturated}],
            "saturated_at": rate if saturated else None,
            "highest_unsaturated_rate": None if saturated else rate}


def test_single_rate_sweeps_join_into_one_sweep_in_rate_order() -> None:
    joined = joined_sweep([part("r-1", 250, False), part("r-5", 1000, False),
                           part("r-9", 2000, True)])
    assert [row["offered_rate"] for row in joined["rows"]] == [250, 1000, 2000]
    assert joined["saturated_at"] == 2000 and joined["highest_unsaturated_rate"] == 1000
    assert joined["tag"] == ["r-1", "r-5", "r-9"]
    assert [w["rate"] for w in joined["warm_up"]] == [250, 1000, 2000]
    assert joined["settings"] == {"tag": "r-1"} and joined["interleaved"] is True


def test_a_joined_sweep_that_never_saturated_says_so() -> None:
    joined = joined_sweep([part("r-1", 250, False)])
    assert joined["saturated_at"] is None and joined["highest_unsaturated_rate"] == 250
