"""Which partition a key lives on: the contract that puts all of a person on one worker."""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2


# aiokafka's murmur2 is pure Python (a few µs a key); the context feed asks for the same people
# again and again.
@lru_cache(maxsize=1 << 16)
def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2 of its UTF-8 bytes).

    Every input topic, the person-events topic and every table are partitioned this way with the
    same count, so partition N of all of them, and so all of one person, belongs to one worker.
    """
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
