"""Send persona traffic to Kafka at a fixed rate."""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer

from orchestrator.core.events import Source
from orchestrator.runtime.kafka_security import client_options
from orchestrator.runtime.settings import Settings
from orchestrator.simulate.personas import Step, new_journey

MALFORMED_SAMPLES = (
    b"{not json",
    b'{"event_id": "x", "type": "page_view"}',
    b'{"event_id": "x", "type": "page_view", "ts": 12, "visitor_id": "v-bad"}',
    b"[1, 2, 3]",
)


@dataclass
class SentRecord:
    persona: str
    topic: str
    key: str
    event_id: str | None
    malformed: bool


class TrafficPlan:
    """Interleaves many personas' journeys; each call to :meth:`next_step` gives the next record.

    Pure apart from its seeded random generator and the ``now`` it is given.
    """

    def __init__(self, seed: int, think_scale: float = 1.0, persona: str | None = None) -> None:
        self.rng = random.Random(seed)
        self.think_scale = think_scale
        self.persona = persona
        self._due: list[tuple[float, int, str, object]] = []
        self._seq = 0

    def next_step(self, now: float) -> tuple[str, Step]:
        while not self._due or self._due[0][0] > now:
            name, journey = new_journey(self.rng, self.persona)
            self._push(now, name, journey)
            if self._due[0][0] <= now:
                break
        _due, _, name, journey = heapq.heappop(self._due)
        step = next(journey, None)  # type: ignore[call-overload]
        if step is None:
            return self.next_step(now)
        self._push(now + step.think_s * self.think_scale, name, journey)
        return name, step

    def _push(self, due: float, name: str, journey: object) -> None:
        self._seq += 1
        heapq.heappush(self._due, (due, self._seq, name, journey))


async def run_traffic(
    settings: Settings, *, rate: float, duration: float, seed: int = 7,
    malformed: float = 0.0, think_scale: float = 1.0, persona: str | None = None,
    on_sent: Callable[[SentRecord], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Produce about ``rate`` records per second for ``duration`` seconds; return how many."""
    topics = {Source.CLICKSTREAM: settings.topic_clickstream,
              Source.CONTACT_CENTRE: settings.topic_contact_centre}
    plan = TrafficPlan(seed, think_scale, persona)
    rng = random.Random(seed + 1)
    producer = AIOKafkaProducer(**client_options(settings), linger_ms=0, acks=1)
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < duration and not (stop and stop.is_set()):
            target = started + sent / rate
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            name, step = plan.next_step(time.monotonic())
            topic = topics[step.source]
            if malformed and rng.random() < malformed:
                # A bad record in addition to the journey's step (not instead of it), so the
                # journeys stay whole and only the dead-letter topic sees the difference.
                await producer.send(topic, value=rng.choice(MALFORMED_SAMPLES), key=step.key.encode())
                sent += 1
                if on_sent is not None:
                    on_sent(SentRecord(name, topic, step.key, None, True))
            record = dict(step.value, ts=time.time_ns() // 1_000_000)
            await producer.send(topic, value=orjson.dumps(record), key=step.key.encode())
            sent += 1
            if on_sent is not None:
                on_sent(SentRecord(name, topic, step.key, record["event_id"], False))
        await producer.flush()
    finally:
        await producer.stop()
    return sent
