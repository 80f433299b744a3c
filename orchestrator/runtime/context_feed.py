"""Publishing the live customer context: one compacted record per person, coalesced.

The processor marks a person as changed after each event; :meth:`ContextPublisher.flush`, run
every ``context_flush_ms`` by the worker, publishes one record per changed person (however many
events changed them since the last flush) and a tombstone for each erased person. Rendering
happens at flush time from the profile object saved last, so a burst of events for one person
costs one record and one rendering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

import orjson

from orchestrator.core.context import context_record
from orchestrator.core.profile import Profile
from orchestrator.runtime.metrics import EngineMetrics
from orchestrator.runtime.processing import Emitter, observe_on_delivery

log = logging.getLogger(__name__)

#: Records rendered and sent between two yields to the event loop during a flush.
FLUSH_SLICE = 32


class ContextPublisher:
    """Changed people waiting to be published, and the flush that publishes them."""

    def __init__(self, *, emitter: Emitter, topic: str, metrics: EngineMetrics,
                 clock_ms: Callable[[], int],
                 model_versions: Callable[[str], dict[str, str]] = lambda person_id: {}) -> None:
        self.emitter = emitter
        self.topic = topic
        self.metrics = metrics
        self.clock_ms = clock_ms
        self.model_versions = model_versions
        # person id -> (latest profile or None for erased, Kafka ts of the oldest unpublished change)
        self._pending: dict[str, tuple[Profile | None, int]] = {}
        # person id -> events set when that person's record (or tombstone) is published: the
        # console's live streams (runtime/console.py) wait on them
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._updates = metrics.context_published.labels("update")
        self._tombstones = metrics.context_published.labels("tombstone")

    def _delivered(self, since_kafka_ts: int) -> Callable[[], None]:
        return observe_on_delivery(self.metrics.event_to_context, self.clock_ms, since_kafka_ts)

    def changed(self, profile: Profile, kafka_ts: int) -> None:
        """``profile`` (as saved) must be published; the change came from a record at ``kafka_ts``."""
        previous = self._pending.get(profile.person_id)
        self._pending[profile.person_id] = (profile, previous[1] if previous else kafka_ts)

    def erased(self, person_id: str, kafka_ts: int) -> None:
        """The person is gone: publish a tombstone (and forget any update not yet published)."""
        previous = self._pending.get(person_id)
        self._pending[person_id] = (None, previous[1] if previous else kafka_ts)

    @contextlib.contextmanager
    def watching(self, person_id: str) -> Iterator[asyncio.Event]:
        """An event set each time a record of ``person_id`` is published here (the caller
        clears it), for as long as the ``with`` block runs."""
        published = asyncio.Event()
        self._watchers.setdefault(person_id, set()).add(published)
        try:
            yield published
        finally:
            watchers = self._watchers[person_id]
            watchers.discard(published)
            if not watchers:
                del self._watchers[person_id]

    def _notify(self, person_id: str) -> None:
        for published in self._watchers.get(person_id, ()):
            published.set()

    @property
    def waiting(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Publish every pending person; return how many records were sent.

        Every :data:`FLUSH_SLICE` records it yields to the event loop, so that the agent's
        records are handled between slices instead of waiting for the whole flush (hundreds of
        records under load, several milliseconds)."""
        if not self._pending:
            return 0
        pending, self._pending = self._pending, {}
        now = self.clock_ms()
        for n, (person_id, (profile, since)) in enumerate(pending.items(), 1):
            if n % FLUSH_SLICE == 0:
                await asyncio.sleep(0)
            key = person_id.encode()
            value = None if profile is None else orjson.dumps(
                context_record(profile, now, self.model_versions(person_id)))
            retry = self._retry(person_id, profile, since)
            try:
                await self.emitter.send(self.topic, key, value, self._delivered(since), retry)
            except Exception as exc:  # refused before sending: the next flush tries again
                retry(exc)
                continue
            (self._tombstones if profile is None else self._updates).inc()
            if self._watchers:
                self._notify(person_id)
        return len(pending)

    def _retry(self, person_id: str, profile: Profile | None, since: int
               ) -> Callable[[BaseException], None]:
        """What a failed send does: the record is due again at the next flush (unless a newer
        change of the person is due by then), so a tombstone is retried until acknowledged."""

        def again(exc: BaseException) -> None:
            self.metrics.context_retries.inc()
            if person_id not in self._pending:
                self._pending[person_id] = (profile, since)

        return again

    async def run_every(self, interval_s: float, stopping: Callable[[], bool]) -> None:
        """Flush on a fixed schedule until ``stopping()``: every ``interval_s`` from the start,
        not ``interval_s`` after the previous flush ended, so that a flush that takes long under
        load does not stretch the period (a late flush starts at once and the next is due on
        the original grid)."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not stopping():
            due += interval_s
            try:
                await self.flush()
            except Exception:  # a failed send must not end the feed; the next flush retries
                log.exception("publishing customer context failed")
            now = loop.time()
            if now < due:
                await asyncio.sleep(due - now)
            else:
                due = now  # behind: flush again right away, and keep the grid from here
                await asyncio.sleep(0)
