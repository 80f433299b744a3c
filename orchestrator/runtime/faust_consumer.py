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
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Generator
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults


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


class FastHandoverConsumer(InlineFirstStep, faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with :class:`InlineFirstStep`."""


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport with :class:`FastHandoverConsumer`."""

    Consumer = FastHandoverConsumer
