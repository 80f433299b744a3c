"""Faust's Kafka consumer with a cheaper hand-over of each fetched record.

Faust's fetch loop (``Consumer._drain_messages``) hands every record to the conductor with
``await self.wait_first(callback(message), self.suspend_flow.wait())``, so that a hand-over
blocked on a full stream queue is abandoned when a rebalance suspends the flow. mode's
``wait_first`` makes four tasks per call (the callback, the suspend flag, the service's stopped
and crashed flags), waits for the first and cancels the other three: per record, well over the
cost of the hand-over itself, which almost never blocks.

:class:`FastHandoverConsumer` runs the callback's first step inline instead. When it completes
without suspending — the stream queue had room — that is the result, and no task was made.
When it suspends, the started callback is handed to mode's ``wait_first`` as it is, so a
rebalance abandons it exactly as before.

It also refuses to commit records it never handed to a stream. Faust's fetch loop treats a jump
in a partition's offsets (the next record handed over is not the one after the last) as a gap
that holds no records -- as compaction or transaction markers leave -- and marks the gap
acknowledged, so the next commit passes it. But Faust also drops fetched records on its way
(a rebalance or a recovery that pauses and resumes partitions while a fetch is in hand), and then
the jump hides records that exist and were never processed: a worker restarted in the middle of
a stream committed 812 records of one partition that no stream had seen (the two-worker fault
test, ``tests/integration/test_faults_two_workers.py``). Here a jump is not trusted: the
partition is fetched again from the first missing offset (:class:`FetchRewinds`), and only what
the broker really does not hold is taken as a gap.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Coroutine, Generator, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults

log = logging.getLogger(__name__)


class _Started(Awaitable[Any]):
    """A coroutine that has run its first step and is suspended on ``pending``; awaiting this
    drives it on to the end, as the task that would have run it from the start."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Generator[Any, None, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                yield pending  # what the coroutine waits for: the task running this waits too
            except BaseException as exc:  # cancellation or a thrown error goes on to the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(None)
                except StopIteration as stop:
                    return stop.value


class InlineFirstStep:
    """A mode service's ``wait_first`` that first runs its first coroutine one step inline.

    Same outcome as mode's: it returns once the first coroutine is done or another waitable
    is; it only skips the tasks when the first one finishes in its first step.
    """

    suspend_flow: Any  # faust's consumer: set while a rebalance suspends the flow

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        first = coros[0] if coros else None
        if (timeout is not None or not isinstance(first, Coroutine)
                or self.suspend_flow.is_set() or self.should_stop):  # type: ignore[attr-defined]
            return await super().wait_first(*coros, timeout=timeout)  # type: ignore[misc]
        try:
            pending = first.send(None)
        except BaseException as exc:  # done (StopIteration) or failed in its first step
            for other in coros[1:]:
                if isinstance(other, Coroutine):
                    other.close()  # never awaited: close it, no "never awaited" warning
            if isinstance(exc, StopIteration):
                return WaitResults([first], [exc.value], False)
            raise
        return await super().wait_first(_Started(first, pending), *coros[1:])  # type: ignore[misc]


@dataclass(slots=True)
class _Rewind:
    start: int  # the first offset missing: fetched again from here
    jumped_to: int  # the offset the fetch had jumped to
    passed_jump: bool = False  # the record that showed the jump has been held back


@dataclass(frozen=True, slots=True)
class Admission:
    """What to do with one fetched record: hand it to the streams or hold it back, and which
    offsets, if any, the broker was shown not to hold (a real gap, ``[start, end]``)."""

    deliver: bool
    real_gap: tuple[int, int] | None = None


_DELIVER = Admission(True)
_HOLD_BACK = Admission(False)


class FetchRewinds:
    """Per partition: is it being fetched again after a jump over records that exist, and what
    to do with each record meanwhile. Pure bookkeeping; the consumer does the seeking.

    ``jumped(tp, start, to)`` says that offsets ``start .. to - 1`` are records that were
    fetched and never handed over: the partition is fetched again from ``start`` (a jump during
    such a refetch starts it again). Meanwhile records of the partition are held back until the
    refetch returns: the first record at or before ``to`` after the jumping record itself.
    Offsets between ``start`` and that record are not held by the broker (a real gap); records
    past ``to`` are what the old fetch still had in hand and come again in order.
    """

    def __init__(self) -> None:
        self._rewinds: dict[Hashable, _Rewind] = {}

    def rewinding(self, tp: Hashable) -> bool:
        return tp in self._rewinds

    def jumped(self, tp: Hashable, start: int, to: int) -> None:
        """Records ``start .. to - 1`` were skipped: fetch the partition again from ``start``."""
        self._rewinds[tp] = _Rewind(start, to)

    def admit(self, tp: Hashable, offset: int) -> Admission:
        rewind = self._rewinds.get(tp)
        if rewind is None:
            return _DELIVER
        if not rewind.passed_jump and offset == rewind.jumped_to:
            rewind.passed_jump = True  # the record that showed the jump: it comes again
            return _HOLD_BACK
        if offset <= rewind.jumped_to:
            # The fetch from the start is back (or one from further back, after a seek to the
            # committed offset): what lies between the start and this record does not exist.
            del self._rewinds[tp]
            return Admission(True, (rewind.start, offset - 1) if offset > rewind.start else None)
        return _HOLD_BACK  # what the jumping fetch still had in hand: it comes again

    def forget(self, tps: Any) -> None:
        """Partitions taken away (a rebalance seeks them to their committed offsets anyway)."""
        for tp in tps:
            self._rewinds.pop(tp, None)


def first_skipped(fetched: Sequence[int], last_handed_over: int | None) -> int | None:
    """The first offset of a fetch (in offset order) after the last record handed over (None:
    nothing was skipped): where the partition must be fetched from next. Records are handed
    over in offset order, so what lies after the last one handed over was not."""
    if not fetched or (last_handed_over is not None and fetched[-1] <= last_handed_over):
        return None  # the usual case: the whole fetch went through
    floor = -1 if last_handed_over is None else last_handed_over
    return next(o for o in fetched if o > floor)


class _ReadOffsets(dict):  # type: ignore[type-arg]
    """Faust's map of the last offset handed over per partition (``Consumer._read_offset``),
    which does not move while the partition is being fetched again: the fetch loop sets it for
    records that were held back too."""

    def __init__(self, rewinds: FetchRewinds) -> None:
        super().__init__()
        self._rewinds = rewinds

    def __missing__(self, tp: Any) -> None:
        return None

    def __setitem__(self, tp: Any, offset: Any) -> None:
        if not self._rewinds.rewinding(tp):
            super().__setitem__(tp, offset)

    def after_seek(self, tp: Any, position: int) -> None:
        """The partition was sought to ``position``: the record before it counts as the last
        handed over. (Faust records the position itself, so a record at the position that is
        dropped on its way goes unnoticed: the next one shows no jump.)"""
        super().__setitem__(tp, position - 1)


class FastHandoverConsumer(InlineFirstStep, faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with :class:`InlineFirstStep`, which fetches a partition again
    instead of committing records it never handed over (see the module's docstring).

    It knows each fetch (``_wait_next_records``) and which of its records reached the streams.
    A jump over records of the fetch in hand is a rewind (:class:`FetchRewinds`); records of a
    fetch dropped at its end (Faust stops iterating a fetch when a rebalance starts or a
    partition is paused) are fetched again from the first of them once the fetch is done. A jump
    over offsets that no fetch held is a real gap, and Faust's own gap handling takes it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rewinds = FetchRewinds()
        self._read_offset = _ReadOffsets(self.rewinds)
        #: The fetch being handed over: partition -> its records (aiokafka's), in offset order.
        self._fetched: dict[Any, list[Any]] = {}
        self._rewound: set[Any] = set()  # partitions sought back during this fetch
        deliver = self.callback

        async def admitted(message: Any) -> Any:
            tp = message.tp
            admission = self.rewinds.admit(tp, message.offset)
            if not admission.deliver:
                return None
            if admission.real_gap is not None:
                start, end = admission.real_gap
                await faust_aiokafka.Consumer._add_gap(self, tp, start, end)
            return await deliver(message)

        self.callback = admitted

    async def _wait_next_records(self, timeout: float) -> Any:
        records, active = await super()._wait_next_records(timeout)
        self._fetched = records or {}
        self._rewound = set()
        on_fetched = getattr(self.app, "on_fetched", None)
        if on_fetched is not None:
            on_fetched(self._fetched)  # the app paces the next fetches (runtime/fetch_pacing.py)
        return records, active

    async def getmany(self, timeout: float) -> Any:
        async for item in super().getmany(timeout):
            yield item
        await self._fetch_again_what_was_dropped()

    async def _fetch_again_what_was_dropped(self) -> None:
        if not self.flow_active:  # a rebalance: every partition is sought to its commit anyway
            self._fetched = {}
            return
        assignment = self.assignment()
        for tp, fetched in self._fetched.items():
            if tp in self._rewound or tp not in assignment or not self.app.topics.acks_enabled_for(tp.topic):
                continue
            last = dict.get(self._read_offset, tp)
            if not fetched or (last is not None and fetched[-1].offset <= last):
                continue  # the usual case: the whole fetch went through
            start = first_skipped([r.offset for r in fetched], last)
            if start is not None:
                self._note_rewind(tp, start, fetched[-1].offset + 1)
                await self._seek(tp, start)  # the read offset stays: the last handed over
        self._fetched = {}

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        # Faust calls this with the first offset missing and the offset of the record that
        # showed the jump; its own version marks both acknowledged.
        if tp in self._rewound:
            return  # the rest of the fetch that jumped: held back, it comes again
        fetched = self._fetched.get(tp, ())
        if any(offset_from <= r.offset < offset_to for r in fetched):
            self.rewinds.jumped(tp, offset_from, offset_to)
            self._rewound.add(tp)
            self._note_rewind(tp, offset_from, offset_to)
            await self._seek(tp, offset_from)
        elif not self.rewinds.rewinding(tp):
            await super()._add_gap(tp, offset_from, offset_to)
        # else: a refetch jumped over offsets no fetch held; the admission marks them

    def _note_rewind(self, tp: Any, start: int, end: int) -> None:
        log.warning("records %d..%d of %s were fetched but never handed to the streams; "
                    "fetching them again", start, end - 1, tp)
        on_rewind = getattr(self.app, "on_fetch_rewind", None)
        if on_rewind is not None:
            on_rewind(tp, start, end)

    async def seek(self, partition: Any, offset: int) -> None:
        await super().seek(partition, offset)
        self._read_offset.after_seek(partition, offset)

    async def perform_seek(self) -> None:
        await super().perform_seek()  # every assigned partition to its committed offset
        read = self._read_offset
        for tp, committed in list(self._committed_offset.items()):
            if committed is not None and read.get(tp) == committed:
                read.after_seek(tp, committed)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.rewinds.forget(revoked)
        await super().on_partitions_revoked(revoked)


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport with :class:`FastHandoverConsumer`."""

    Consumer = FastHandoverConsumer

