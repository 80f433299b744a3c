"""How long the broker may hold a fetch: prompt at light load, batched under heavy load.

Two costs pull against each other (``docs/hot-path.md``, "Fetch rounds"):

- A fetch the broker answers as soon as one record is there (``fetch_min_bytes`` 1) brings one
  or two records: the lowest latency, and a fetch round per record. A round -- a request
  naming every assigned partition, its response decoded in Python, a hand-over between the
  consumer's thread and the agent's -- costs the worker about as much CPU as deciding a record.
- Asking for a few kilobytes with a short bound on the wait (``CONSUMER_BATCH_FETCH_MIN_BYTES``,
  ``CONSUMER_BATCH_FETCH_MAX_WAIT_MS``, 5 ms) makes each fetch carry what arrived in those
  milliseconds: at most about 200 rounds a second whatever the rate, for a few milliseconds of
  latency per fetch (a logged-in visitor's record is fetched twice, its hop).

Measured (``docs/hot-path.md``, "Fetch rounds"): at 100 new visitors a second batched fetches
cost more CPU than prompt ones (about 200 rounds a second against 100) and 3 ms more at p50; at
250 new visitors or 200 logged-in customers a second (400 records with their hops) they cost a
third less CPU (42-54 % of a core against 63-82 %) for 3-4 ms more at p50 and the same p99.

So the consumer fetches promptly (``CONSUMER_FETCH_MIN_BYTES`` 1, at most
``CONSUMER_FETCH_MAX_WAIT_MS``) until the agent's records (inputs and person-events hops) reach
``CONSUMER_BATCH_FROM_RATE`` (200) per second, and in batches from there on (back below 80 % of
that rate). From ``CONSUMER_BUSY_FROM_RATE`` (800) a batched fetch waits only
``CONSUMER_BUSY_FETCH_MAX_WAIT_MS`` (2 ms): a worker that busy gathers records while it works
anyway, so the shorter wait costs it little CPU, and its records queue less (measured in
``docs/hot-path.md``, "Sixth look": at 1,000/s a lower p50 always and a lower p99 mostly, for
2-9 points of a core; at 600/s no lower p99 for 10 points more). An idle worker fetches promptly
too: the first record of new traffic ends a fetch at once. No wait may be long: aiokafka leaves
partitions whose records are still buffered out of the fetch in flight, so a busy partition's
next records can wait for that fetch to return.

:class:`FetchPacing` decides from the input records of each fetch; the worker applies its
answer to the consumer's fetcher (``faust_internals.set_fetch_limits``) when it changes.
"""

from __future__ import annotations

from typing import NamedTuple

#: The rate is measured over windows of this many seconds.
RATE_WINDOW_S = 1.0
#: Batched fetches stop below this share of the rate that started them (no flapping).
HYSTERESIS = 0.8


class FetchLimits(NamedTuple):
    max_wait_ms: int
    min_bytes: int


class FetchPacing:
    """The fetch limits for the next fetch, from the input rate of the last full second.

    Up to three tiers: prompt below ``batch_from_rate``, ``batched`` from it, and ``busy`` (a
    shorter wait) from ``busy_from_rate`` when given. A tier is left when the rate falls below
    :data:`HYSTERESIS` of the rate that enters it.

    >>> pacing = FetchPacing(prompt=FetchLimits(20, 1), batched=FetchLimits(5, 16384),
    ...                      batch_from_rate=500)
    >>> pacing.after_fetch(records=300, now=10.0)   # the first window starts
    FetchLimits(max_wait_ms=20, min_bytes=1)
    >>> pacing.after_fetch(records=400, now=11.0)   # 700 records in that second
    FetchLimits(max_wait_ms=5, min_bytes=16384)
    >>> pacing.after_fetch(records=0, now=13.5)     # none for 2.5 s
    FetchLimits(max_wait_ms=20, min_bytes=1)
    """

    __slots__ = ("_count", "_level", "_limits", "_thresholds", "_window_start")

    def __init__(self, prompt: FetchLimits, batched: FetchLimits, batch_from_rate: float,
                 busy: FetchLimits | None = None, busy_from_rate: float | None = None) -> None:
        # Level n (0: prompt) fetches with _limits[n]; the rate _thresholds[n - 1] enters it.
        self._limits: tuple[FetchLimits, ...] = (prompt, batched)
        self._thresholds: tuple[float, ...] = (batch_from_rate,)
        if busy is not None and busy_from_rate is not None:
            self._limits += (busy,)
            self._thresholds += (max(busy_from_rate, batch_from_rate),)
        self._window_start: float | None = None
        self._count = 0
        self._level = 0

    def after_fetch(self, records: int, now: float) -> FetchLimits:
        """The limits for the next fetch, given the records a fetch brought at ``now``
        (monotonic seconds). The tier changes at most once per :data:`RATE_WINDOW_S`."""
        start = self._window_start
        if start is None:
            self._window_start, self._count = now, records
        else:
            self._count += records
            elapsed = now - start
            if elapsed >= RATE_WINDOW_S:
                rate = self._count / elapsed
                level = 0
                for n, threshold in enumerate(self._thresholds, start=1):
                    if rate >= threshold * (HYSTERESIS if self._level >= n else 1.0):
                        level = n
                self._level = level
                self._window_start, self._count = now, 0
        return self._limits[self._level]
