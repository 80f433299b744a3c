"""How long the broker may hold a fetch: batched while records flow, long while the worker idles.

Two costs pull against each other (``docs/hot-path.md``, "Fetch rounds"):

- **Under traffic** a fetch that the broker answers as soon as one record is there
  (``fetch_min_bytes`` 1) brings one or two records: at a few hundred records per second most
  records then cost a fetch round of their own -- a request naming every assigned partition,
  its response decoded in Python, a hand-over between the consumer's thread and the agent's.
  Asking for a few kilobytes, with a short wait as the bound (``CONSUMER_FETCH_MIN_BYTES``,
  ``CONSUMER_FETCH_MAX_WAIT_MS``), lets each fetch carry a batch for a few milliseconds of
  latency. The wait must stay short: aiokafka leaves partitions whose records are still
  buffered out of the fetch in flight, so a busy partition can wait for that fetch to return.
- **While idle** the same short wait would make the consumer fetch two hundred times a second
  for nothing. With no input records for ``idle_after_s``, a fetch waits up to
  ``CONSUMER_IDLE_FETCH_MAX_WAIT_MS`` (20) for a single byte: the first record of new traffic
  ends it at once, and the fetches after it are busy ones. The idle wait cannot be long either:
  the fetch built right after the first records came (before they were handed over) leaves
  their partition out, and that partition's next record waits for it.

:class:`FetchPacing` decides; the worker applies its answer to the consumer's fetcher
(``faust_internals.set_fetch_limits``) when it changes.
"""

from __future__ import annotations

from typing import NamedTuple


class FetchLimits(NamedTuple):
    max_wait_ms: int
    min_bytes: int


class FetchPacing:
    """The fetch limits for the next fetch, from when input records last came.

    >>> pacing = FetchPacing(busy=FetchLimits(5, 16384), idle=FetchLimits(20, 1), idle_after_s=1.0)
    >>> pacing.after_fetch(records=3, now=10.0)
    FetchLimits(max_wait_ms=5, min_bytes=16384)
    >>> pacing.after_fetch(records=0, now=10.5)
    FetchLimits(max_wait_ms=5, min_bytes=16384)
    >>> pacing.after_fetch(records=0, now=11.5)
    FetchLimits(max_wait_ms=20, min_bytes=1)
    """

    __slots__ = ("_last_records", "busy", "idle", "idle_after_s")

    def __init__(self, busy: FetchLimits, idle: FetchLimits, idle_after_s: float) -> None:
        self.busy, self.idle, self.idle_after_s = busy, idle, idle_after_s
        self._last_records: float | None = None

    def after_fetch(self, records: int, now: float) -> FetchLimits:
        """The limits for the next fetch, given the input records this one brought at ``now``
        (monotonic seconds). A worker that has seen no record yet counts as idle."""
        if records:
            self._last_records = now
        last = self._last_records
        return self.busy if last is not None and now - last < self.idle_after_s else self.idle
