"""The load generator of event_to_action.py, in a process of its own.

Sends one load shape (benchmarks/loads.py) at a fixed offered rate for a fixed time. Each record
gets ``ts`` = the wall-clock millisecond it is handed to the producer, which is also its Kafka
timestamp; the microsecond it was handed over is remembered for every trigger record (the start
of that trigger's latency). The producer batches (``linger_ms``, default 1 ms) and no delivery
is awaited one by one: records due at the same moment are sent together, and the flush at the
end waits for all of them.

Protocol with the harness: the single argument is a JSON object of settings (bootstrap, topics
by source, load, rate, duration, seed, id_tag, linger_ms, out). Once its producer is connected
the generator prints ``ready``; it starts on a ``go`` line on stdin; at the end it writes its
report (records sent, seconds, how far it fell behind its schedule, its own CPU time, and the
send time of every trigger by event id) as JSON to ``out`` and prints ``done``.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loads import make_load

BATCH_MAX = 1000  # records sent back to back before the loop looks at the clock again


class CachedPartitioner:
    """Kafka's default partitioner (murmur2 of the key), remembered per key: a visitor sends
    several records, and murmur2 in pure Python is a good part of a send's cost."""

    def __init__(self) -> None:
        self.default = DefaultPartitioner()
        self.cache: dict[tuple[bytes, int], int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return self.default(key, all_partitions, available)
        slot = (key, len(all_partitions))
        partition = self.cache.get(slot)
        if partition is None:
            if len(self.cache) > 200_000:
                self.cache.clear()
            partition = self.cache[slot] = self.default(key, all_partitions, available)
        return partition


async def generate(cfg: dict[str, Any]) -> dict[str, Any]:
    topics: dict[str, str] = cfg["topics"]
    rate, duration = float(cfg["rate"]), float(cfg["duration"])
    load = make_load(cfg["load"], random.Random(cfg["seed"]), rate, id_tag=cfg.get("id_tag", ""))
    producer = AIOKafkaProducer(bootstrap_servers=cfg["bootstrap"], linger_ms=cfg["linger_ms"],
                                acks=1, max_batch_size=65536, partitioner=CachedPartitioner())
    await producer.start()
    failures = 0

    def delivered(fut: asyncio.Future[Any]) -> None:
        nonlocal failures
        if fut.cancelled() or fut.exception() is not None:
            failures += 1

    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # "go"
    triggers: dict[str, int] = {}
    sent, behind_max = 0, 0.0
    by_topic: dict[str, int] = {}
    cpu0 = time.process_time()
    started = time.monotonic()
    try:
        while True:
            elapsed = time.monotonic() - started
            if elapsed >= duration:
                break
            due = int(elapsed * rate) + 1 - sent
            if due <= 0:
                await asyncio.sleep(min(0.002, (sent - elapsed * rate) / rate))
                continue
            behind_max = max(behind_max, (due - 1) / rate)
            for _ in range(min(due, BATCH_MAX)):
                source, key, value, is_trigger = next(load)
                send_us = time.time_ns() // 1000
                ts = send_us // 1000
                value["ts"] = ts
                topic = topics[source]
                fut = await producer.send(topic, orjson.dumps(value), key=key.encode(),
                                          timestamp_ms=ts)
                fut.add_done_callback(delivered)
                if is_trigger:
                    triggers[value["event_id"]] = send_us
                by_topic[topic] = by_topic.get(topic, 0) + 1
                sent += 1
        took = time.monotonic() - started
        await producer.flush()
        flushed = time.monotonic() - started
    finally:
        await producer.stop()
    cpu = time.process_time() - cpu0
    return {"sent": sent, "took_s": round(took, 4), "flushed_s": round(flushed, 4),
            "sent_rate": round(sent / took, 1), "by_topic": by_topic,
            "max_behind_schedule_ms": round(behind_max * 1000, 1),
            "send_failures": failures, "cpu_s": round(cpu, 3),
            "cpu_percent": round(100 * cpu / flushed, 1), "triggers": triggers}


def main() -> None:
    cfg = json.loads(sys.argv[1])
    report = asyncio.run(generate(cfg))
    Path(cfg["out"]).write_bytes(orjson.dumps(report))
    print("done", flush=True)


if __name__ == "__main__":
    main()
