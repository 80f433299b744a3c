"""The floor: a bare aiokafka consume -> produce, no decoding, no state.

Copies every record (value and key as they are) from one topic to another, with the input
record's Kafka timestamp in a ``trigger_ts`` header. The measurer of event_to_action.py matches a
copy to its input by the ``event_id`` in the copied value; context_latency.py uses the header.

    python benchmarks/passthrough.py BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP [LINGER_MS]

LINGER_MS (default 0) is the producer's linger, as the engine's ``producer_linger_ms``.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def passthrough(bootstrap: str, source: str, sink: str, group: str,
                      linger_ms: str = "0") -> None:
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=True)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=float(linger_ms), acks=-1)
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
    asyncio.run(passthrough(*sys.argv[1:6]))
