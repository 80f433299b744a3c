"""Confidence intervals for a proportion and for a difference of two proportions.

:func:`wilson_interval` is the Wilson score interval of one proportion; :func:`newcombe_interval`
is Newcombe's hybrid score interval for ``p1 - p2`` of two independent proportions (method 10
of Newcombe 1998, "Interval estimation for the difference between independent proportions",
Statistics in Medicine 17: 873-890), built from the two Wilson intervals. Both stay inside
[0, 1] and [-1, 1], behave at 0 and n (where the normal approximation's interval collapses), and
need only the standard library.

>>> [round(v, 4) for v in wilson_interval(81, 263)]
[0.2553, 0.3662]
>>> [round(v, 4) for v in newcombe_interval(56, 70, 48, 80)]
[0.0524, 0.3339]
"""

from __future__ import annotations

import math
from statistics import NormalDist

#: z for a two-sided 95 % interval (1.959963984540054).
Z95 = NormalDist().inv_cdf(0.975)


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` of ``successes / trials``; (0, 1) when
    ``trials`` is 0 (nothing is known).

    >>> wilson_interval(0, 20)[0], round(wilson_interval(0, 20)[1], 4)
    (0.0, 0.1611)
    """
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    denominator = 1 + z2 / trials
    low = 0.0 if successes == 0 else (centre - spread) / denominator
    high = 1.0 if successes == trials else (centre + spread) / denominator
    return max(0.0, low), min(1.0, high)


def newcombe_interval(successes_1: int, trials_1: int, successes_2: int, trials_2: int,
                      z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval ``(low, high)`` of ``p1 - p2``.

    With ``(l1, u1)`` and ``(l2, u2)`` the Wilson intervals of the two proportions and
    ``d = p1 - p2``: ``low = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)``,
    ``high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)``. Both groups need a trial.

    >>> [round(v, 4) for v in newcombe_interval(0, 10, 0, 20)]
    [-0.1611, 0.2775]
    """
    if trials_1 <= 0 or trials_2 <= 0:
        raise ValueError("both groups need at least one trial")
    p1, p2 = successes_1 / trials_1, successes_2 / trials_2
    l1, u1 = wilson_interval(successes_1, trials_1, z)
    l2, u2 = wilson_interval(successes_2, trials_2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, low), min(1.0, high)
