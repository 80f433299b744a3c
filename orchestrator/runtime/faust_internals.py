"""The few places the worker reaches into Faust's or aiokafka's private state, each alone.

Every function here stands in for a public API that faust-streaming (0.15) or aiokafka does
not have; its docstring names the missing API and says what breaks if the private name moves.
Nothing else in the project reads a private Faust or aiokafka name.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import faust
import faust.streams as faust_streams

log = logging.getLogger(__name__)


@contextmanager
def record_in_hand(record: Any) -> Iterator[None]:
    """Make ``record`` the one being processed, for table writes outside the agent's iteration.

    Faust writes a table key to the changelog partition and the RocksDB partition of the record
    being processed (``faust.streams.current_event()``); outside the stream's iteration there is
    none, and Faust has no public way to name one (no ``set_current_event``), so this sets
    Faust's own context variable ``faust.streams._current_event``. Used to write a quiet
    partition's held state with that partition's last held record.
    """
    token = faust_streams._current_event.set(weakref.ref(record))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def set_fetch_limits(app: faust.App, max_wait_ms: int, min_bytes: int) -> bool:
    """Set how long the broker may hold a fetch (``fetch_max_wait_ms``) and how much it waits
    for (``fetch_min_bytes``).

    aiokafka sends one fetch at a time to a broker, and leaves out partitions whose records are
    still buffered; a partition drained meanwhile waits for the fetch in flight to return. When
    that fetch holds only idle partitions (the contact-centre, feedback and person-events topics
    of a website's traffic), the broker keeps it for ``fetch_max_wait_ms``, which Faust fixes at
    1,500 ms (``faust/transport/drivers/aiokafka.py``) with no setting: a worker that falls a
    little behind then waits 1.5 s per fetch round and stays behind. With aiokafka's
    ``fetch_min_bytes`` of 1 the broker answers a fetch as soon as one record is there, so at a
    few hundred records per second nearly every record costs a fetch round trip of its own (a
    request naming every assigned partition, and a wake-up of the event loop). No public API
    reaches either value (Faust does not expose its ``AIOKafkaConsumer``), so they are set on
    aiokafka's fetcher, which reads them for every fetch it builds. Returns False, with a
    warning, when that fetcher is not where it was.
    """
    thread = getattr(app.consumer, "_thread", None)
    consumer = getattr(thread, "_consumer", None)
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not hasattr(fetcher, "_fetch_max_wait_ms") \
            or not hasattr(fetcher, "_fetch_min_bytes"):
        log.warning("could not set the consumer's fetch limits (Faust or aiokafka changed)")
        return False
    fetcher._fetch_max_wait_ms = max_wait_ms
    fetcher._fetch_min_bytes = min_bytes
    return True


def committed_offsets(consumer: Any) -> Mapping[Any, int | None]:
    """The offsets Faust's consumer last committed, or read from the group when the partition
    was assigned, by topic partition (None or absent: none).

    Faust keeps them in ``Consumer._committed_offset`` and has no public read: its monitor's
    ``tp_committed_offsets`` holds only commits made since this worker started (not where it
    resumed), and aiokafka's public ``AIOKafkaConsumer.committed()`` is a coroutine behind
    Faust's consumer thread, while metrics are read synchronously at scrape time. Empty when
    the attribute is gone (the lag of a partition nothing was handled on then counts from 0).
    """
    return getattr(consumer, "_committed_offset", None) or {}


def partition_dbs(table: Any) -> Mapping[int, Any] | None:
    """The RocksDB handle of each partition of ``table`` held by this worker, or None for a
    store without one per partition (the in-memory store).

    Faust's RocksDB store keeps them in ``Store._dbs`` and has no public per-partition access:
    ``Table.keys()`` and ``len(table)`` walk every active partition's keys (``len`` counts them
    one by one). The handles themselves are rocksdict ``Rdict`` objects, whose API is public.
    """
    dbs = getattr(getattr(table, "data", None), "_dbs", None)
    return dbs if isinstance(dbs, dict) else None
