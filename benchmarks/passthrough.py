"""The floor: a bare aiokafka consume -> produce, no decoding, no state.

Copies every record from one topic to another with the input record's Kafka timestamp in a
header, so the measurer can compute the same latency it computes for the engine.

    python benchmarks/passthrough.py BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def passthrough(bootstrap: str, source: str, sink: str, group: str) -> None:
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=True)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=-1)
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    await producer.send(sink, value=record.value, key=record.key,
                                        headers=[("trigger_ts", str(record.timestamp).encode())])
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(passthrough(*sys.argv[1:5]))
