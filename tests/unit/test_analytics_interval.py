"""The Wilson interval of a proportion and Newcombe's interval of a difference of two, against
the published values and the properties any such interval must have."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.analytics import newcombe_interval, wilson_interval

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in
# Medicine 17: 857-872, Table I, method 3 (score interval without continuity correction).
WILSON_PUBLISHED = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0000, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]
# Newcombe (1998), "Interval estimation for the difference between independent proportions",
# Statistics in Medicine 17: 873-890, Table II, method 10 (hybrid score), examples (a)-(h).
NEWCOMBE_PUBLISHED = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "published"), WILSON_PUBLISHED)
def test_wilson_interval_gives_the_published_values(counts: tuple[int, int],
                                                    published: tuple[float, float]) -> None:
    assert wilson_interval(*counts) == pytest.approx(published, abs=5e-5)


@pytest.mark.parametrize(("counts", "published"), NEWCOMBE_PUBLISHED)
def test_newcombe_interval_gives_the_published_values(counts: tuple[int, int, int, int],
                                                      published: tuple[float, float]) -> None:
    assert newcombe_interval(*counts) == pytest.approx(published, abs=5e-5)


def test_a_proportion_of_no_trials_could_be_anything() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("counts", [(-1, 5), (6, 5), (1, -1)])
def test_impossible_counts_are_refused(counts: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        wilson_interval(*counts)


def test_a_difference_needs_a_trial_in_both_groups() -> None:
    with pytest.raises(ValueError):
        newcombe_interval(3, 10, 0, 0)


proportions = st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@given(proportions)
def test_wilson_interval_holds_the_estimate_inside_zero_to_one(counts: tuple[int, int]) -> None:
    x, n = counts
    low, high = wilson_interval(x, n)
    assert 0.0 <= low <= x / n <= high <= 1.0
    assert low < high


@given(proportions, proportions)
def test_newcombe_interval_holds_the_difference_and_turns_round_with_the_groups(
        first: tuple[int, int], second: tuple[int, int]) -> None:
    (x1, n1), (x2, n2) = first, second
    low, high = newcombe_interval(x1, n1, x2, n2)
    assert -1.0 <= low <= x1 / n1 - x2 / n2 <= high <= 1.0
    back_low, back_high = newcombe_interval(x2, n2, x1, n1)
    assert (back_low, back_high) == pytest.approx((-high, -low), abs=1e-12)


@given(st.integers(1, 400))
def test_newcombe_interval_narrows_as_the_groups_grow(n: int) -> None:
    small = newcombe_interval(3 * n, 10 * n, 2 * n, 10 * n)
    large = newcombe_interval(12 * n, 40 * n, 8 * n, 40 * n)
    assert large[1] - large[0] < small[1] - small[0]
