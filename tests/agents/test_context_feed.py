"""The customer-context feed: one record per changed person per flush, tombstones for the erased."""

from __future__ import annotations

import asyncio

from orchestrator.core.profile import Profile
from orchestrator.runtime.context_feed import ContextPublisher
from orchestrator.runtime.metrics import EngineMetrics
from tests.agents.conftest import RecordingEmitter

NOW = 1_800_000_000_000


def publisher(emitter: RecordingEmitter) -> ContextPublisher:
    return ContextPublisher(emitter=emitter, topic="customer-context", metrics=EngineMetrics(),
                            clock_ms=lambda: NOW, model_versions=lambda person_id: {"churn_risk": "v1"})


async def test_several_changes_of_one_person_between_flushes_give_one_record_of_the_latest() -> None:
    emitter = RecordingEmitter()
    feed = publisher(emitter)
    feed.changed(Profile(person_id="c1", events_seen=1), kafka_ts=NOW - 50)
    feed.changed(Profile(person_id="c1", events_seen=2), kafka_ts=NOW - 10)
    feed.changed(Profile(person_id="c2", events_seen=1), kafka_ts=NOW - 5)
    assert await feed.flush() == 2
    by_person = {key: value for _, key, value in emitter.sent}
    assert by_person[b"c1"]["events_seen"] == 2
    assert by_person[b"c1"]["updated_ts"] == NOW
    assert await feed.flush() == 0  # nothing changed since


async def test_latency_is_measured_from_the_oldest_unpublished_change() -> None:
    emitter = RecordingEmitter()
    feed = publisher(emitter)
    feed.changed(Profile(person_id="c1"), kafka_ts=NOW - 400)
    feed.changed(Profile(person_id="c1"), kafka_ts=NOW - 100)
    await feed.flush()
    assert feed.metrics.event_to_context._sum.get() == 0.4


async def test_an_erased_person_gets_a_tombstone_even_after_a_change_in_the_same_interval() -> None:
    emitter = RecordingEmitter()
    feed = publisher(emitter)
    feed.changed(Profile(person_id="c1"), kafka_ts=NOW)
    feed.erased("c1", kafka_ts=NOW)
    await feed.flush()
    assert emitter.sent == [("customer-context", b"c1", None)]


async def test_the_feed_keeps_flushing_until_told_to_stop_and_retries_a_failed_send() -> None:
    class Flaky(RecordingEmitter):
        failed = False

        async def send(self, topic, key, value, on_delivered=None, on_failed=None):  # type: ignore[no-untyped-def]
            if not self.failed:
                self.failed = True
                raise ConnectionError("broker went away")
            await super().send(topic, key, value, on_delivered)

    emitter = Flaky()
    feed = publisher(emitter)
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run_every(0.01, stop.is_set))
    feed.changed(Profile(person_id="c1"), kafka_ts=NOW)
    await asyncio.sleep(0.05)
    feed.changed(Profile(person_id="c2"), kafka_ts=NOW)
    for _ in range(100):
        if len(emitter.sent) >= 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert [key for _, key, _ in emitter.sent] == [b"c1", b"c2"]  # c1's again after the failure


async def test_a_tombstone_the_broker_refuses_is_sent_again_until_it_is_taken() -> None:
    class Refusing(RecordingEmitter):
        refusals = 2

        async def send(self, topic, key, value, on_delivered=None, on_failed=None):  # type: ignore[no-untyped-def]
            if self.refusals:
                self.refusals -= 1
                on_failed(RuntimeError("not leader"))  # the broker's answer, after the send
                return
            await super().send(topic, key, value, on_delivered)

    emitter = Refusing()
    feed = publisher(emitter)
    feed.erased("c1", kafka_ts=NOW)
    for _ in range(3):
        await feed.flush()

    assert emitter.sent == [("customer-context", b"c1", None)]
    assert feed.waiting == 0


async def test_a_newer_change_wins_over_the_retry_of_an_older_one() -> None:
    class RefusingOnce(RecordingEmitter):
        refused: list[bytes] = []

        async def send(self, topic, key, value, on_delivered=None, on_failed=None):  # type: ignore[no-untyped-def]
            if not self.refused:
                self.refused.append(key)
                await super().send(topic, key, value, on_delivered)  # sent, then refused late
                self.late_failure = on_failed
                return
            await super().send(topic, key, value, on_delivered)

    emitter = RefusingOnce()
    feed = publisher(emitter)
    feed.erased("c1", kafka_ts=NOW)
    await feed.flush()
    feed.changed(Profile(person_id="c1"), kafka_ts=NOW + 1)  # came back after the erasure
    emitter.late_failure(RuntimeError("timed out"))
    await feed.flush()

    assert [value is None for _, _, value in emitter.sent] == [True, False]


async def test_a_large_flush_lets_other_tasks_run_between_its_slices() -> None:
    emitter = RecordingEmitter()
    feed = publisher(emitter)
    for n in range(100):
        feed.changed(Profile(person_id=f"c{n}"), kafka_ts=NOW)
    seen_during: list[int] = []

    async def agent() -> None:  # stands for the agent, which runs whenever the flush yields
        while len(emitter.sent) < 100:
            seen_during.append(len(emitter.sent))
            await asyncio.sleep(0)

    other = asyncio.ensure_future(agent())
    await asyncio.sleep(0)
    assert await feed.flush() == 100
    await other
    assert any(0 < sent < 100 for sent in seen_during)
