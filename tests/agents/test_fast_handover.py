"""The consumer's hand-over of a fetched record: inline when it can, mode's wait otherwise."""

from __future__ import annotations

import asyncio

import pytest
from mode import Service

from orchestrator.runtime.faust_consumer import InlineFirstStep

pytestmark = pytest.mark.agents


class HandingOver(InlineFirstStep, Service):
    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()


async def tasks_made_during(awaitable) -> tuple[object, int]:
    made = 0
    original = asyncio.get_running_loop().create_task

    def counting(*args, **kwargs):
        nonlocal made
        made += 1
        return original(*args, **kwargs)

    loop = asyncio.get_running_loop()
    loop.create_task = counting  # type: ignore[method-assign]
    try:
        result = await awaitable
    finally:
        del loop.create_task
    return result, made


async def test_a_hand_over_that_does_not_block_makes_no_task() -> None:
    service = HandingOver()
    delivered = []

    async def deliver(value: int) -> int:
        delivered.append(value)
        return value * 2

    result, made = await tasks_made_during(
        service.wait_first(deliver(21), service.suspend_flow.wait()))

    assert delivered == [21]
    assert result.results == [42] and not result.stopped
    assert made == 0


async def test_a_hand_over_that_blocks_finishes_when_its_wait_ends() -> None:
    service = HandingOver()
    room = asyncio.Event()
    steps = []

    async def deliver() -> str:
        steps.append("started")
        await room.wait()
        steps.append("finished")
        return "delivered"

    waiting = asyncio.ensure_future(service.wait_first(deliver(), service.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    assert steps == ["started"] and not waiting.done()
    room.set()
    result = await asyncio.wait_for(waiting, 1)

    assert steps == ["started", "finished"]
    assert result.results == ["delivered"]


async def test_a_blocked_hand_over_is_abandoned_when_the_flow_is_suspended() -> None:
    service = HandingOver()
    cancelled = asyncio.Event()

    async def deliver() -> None:
        try:
            await asyncio.Event().wait()  # a full queue that never drains
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.ensure_future(service.wait_first(deliver(), service.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    service.suspend_flow.set()
    await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(cancelled.wait(), 1)

    assert waiting.result().results[0] is True  # the suspend flag's wait won


async def test_an_error_in_the_first_step_reaches_the_caller() -> None:
    service = HandingOver()

    async def deliver() -> None:
        raise ValueError("undecodable")

    with pytest.raises(ValueError, match="undecodable"):
        await service.wait_first(deliver(), service.suspend_flow.wait())


async def test_an_error_after_blocking_reaches_the_caller() -> None:
    service = HandingOver()
    room = asyncio.Event()

    async def deliver() -> None:
        await room.wait()
        raise ValueError("late")

    waiting = asyncio.ensure_future(service.wait_first(deliver(), service.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    room.set()
    with pytest.raises(ValueError, match="late"):
        await asyncio.wait_for(waiting, 1)


async def test_while_suspended_it_waits_as_mode_does() -> None:
    service = HandingOver()
    service.suspend_flow.set()

    async def deliver() -> str:
        return "delivered"

    result, made = await tasks_made_during(
        service.wait_first(deliver(), service.suspend_flow.wait()))

    assert made > 0  # mode's own wait, with its tasks
    assert "delivered" in result.results
