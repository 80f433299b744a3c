"""The reads of Faust's private state: what they return on a real RocksDB table."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import faust
from faust.types import TP, Message

from orchestrator.runtime.app import Engine
from orchestrator.runtime.faust_internals import partition_dbs
from orchestrator.runtime.partitioning import partition_of
from orchestrator.runtime.scoring import partition_keys
from orchestrator.runtime.settings import load_settings

PARTITIONS = 4


def rocksdb_table(data_dir: Path) -> faust.Table:
    app = faust.App("faust-internals-test", broker="kafka://127.0.0.1:1", store="rocksdb://",
                    datadir=str(data_dir), key_serializer="raw", value_serializer="raw")
    return app.Table("profiles", partitions=PARTITIONS, key_type=str, value_type=bytes,
                     options={"driver": "rocksdict"})


def restore(table: faust.Table, keys: list[str]) -> None:
    """Write keys into their partitions' RocksDB as changelog recovery does: in the table's key
    serialisation, with each partition's changelog offset stored beside them."""
    batch = []
    for offset, key in enumerate(keys):
        partition = partition_of(key, PARTITIONS)
        stored = table.app.serializers.dumps_key(table.key_type, key, serializer=table.key_serializer)
        message = Message("changelog", partition, offset, 0.0, 0, None, stored, b"{}", None,
                          tp=TP("changelog", partition))
        batch.append(SimpleNamespace(message=message))
    table.data.apply_changelog_batch(batch, lambda k: k, lambda v: v)


def test_partition_keys_reads_one_partition_of_a_rocksdb_table_without_its_offset_key(
        tmp_path: Path) -> None:
    table = rocksdb_table(tmp_path)
    keys = [f"v{n}" for n in range(40)]
    restore(table, keys)
    dbs = partition_dbs(table)
    assert dbs is not None and set(dbs) == {partition_of(key, PARTITIONS) for key in keys}
    for partition in range(PARTITIONS):
        expected = sorted(key for key in keys if partition_of(key, PARTITIONS) == partition)
        assert sorted(partition_keys(table, partition, PARTITIONS)) == expected


def test_partition_keys_of_an_in_memory_table_filter_its_keys_by_partition() -> None:
    table = {f"v{n}": b"{}" for n in range(40)}
    assert partition_dbs(table) is None
    assert sorted(partition_keys(table, 1, PARTITIONS)) == sorted(
        key for key in table if partition_of(key, PARTITIONS) == 1)


def test_the_worker_batches_fetches_once_its_input_rate_is_high(engine: Engine) -> None:
    fetcher = SimpleNamespace(_fetch_max_wait_ms=1500, _fetch_min_bytes=1)
    app = engine.app
    app.consumer = SimpleNamespace(_thread=SimpleNamespace(_consumer=SimpleNamespace(_fetcher=fetcher)))
    settings = load_settings()  # the engine fixture's: the defaults
    clickstream = TP(settings.topic_clickstream, 0)
    person_events = TP(engine.processor.person_events_topic, 0)  # named after the app id
    changelog = TP(f"{app.conf.id}-profiles-changelog", 0)
    app.on_fetched({})
    assert (fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes) == (
        settings.consumer_fetch_max_wait_ms, settings.consumer_fetch_min_bytes)
    half = int(settings.consumer_batch_from_rate)  # twice the rate together, within a second
    app.on_fetched({changelog: [object()] * 4 * half})  # a table's records: not the agent's
    time.sleep(1.0)
    app.on_fetched({})
    assert fetcher._fetch_min_bytes == settings.consumer_fetch_min_bytes
    app.on_fetched({clickstream: [object()] * half, person_events: [object()] * half})
    time.sleep(1.0)
    app.on_fetched({})
    assert (fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes) == (
        settings.consumer_batch_fetch_max_wait_ms, settings.consumer_batch_fetch_min_bytes)


def test_the_worker_waits_less_for_a_batch_once_its_input_rate_is_busy(engine: Engine) -> None:
    fetcher = SimpleNamespace(_fetch_max_wait_ms=1500, _fetch_min_bytes=1)
    app = engine.app
    app.consumer = SimpleNamespace(_thread=SimpleNamespace(_consumer=SimpleNamespace(_fetcher=fetcher)))
    settings = load_settings()
    clickstream = TP(settings.topic_clickstream, 0)
    app.on_fetched({})
    app.on_fetched({clickstream: [object()] * int(2 * settings.consumer_busy_from_rate)})
    time.sleep(1.0)
    app.on_fetched({})
    assert (fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes) == (
        settings.consumer_busy_fetch_max_wait_ms, settings.consumer_batch_fetch_min_bytes)
