"""The project's own broker: fetched, started, answering, and stopped, idempotently."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from orchestrator.localkafka import LocalBroker
from tests.e2e.conftest import free_port


def test_second_broker_starts_once_answers_metadata_and_stops_cleanly(
        tmp_path: Path, kafka_bootstrap: str) -> None:
    # A second broker in its own home on free ports, so the suite's broker is left alone.
    port = free_port(2)  # the controller takes port + 1
    broker = LocalBroker(home=tmp_path / "kafka", port=port, heap="512m")
    status, started = broker.start(timeout=120)
    try:
        assert started and status.running and status.answers
        again, started_again = broker.start()
        assert not started_again and again.pid == status.pid
        assert "probe" in asyncio.run(_create_and_list(f"127.0.0.1:{port}", "probe"))
        assert (tmp_path / "kafka" / "data" / "meta.properties").exists()
        assert broker.log_path.exists()
    finally:
        assert broker.stop()
    after = broker.status()
    assert not after.running and not after.answers
    assert not broker.stop()


async def _create_and_list(bootstrap: str, topic: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
        return await admin.list_topics()
    finally:
        await admin.close()
