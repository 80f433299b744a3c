"""A worker rides out a broker restart: actions resume without restarting the worker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from orchestrator.demo import start_worker_process, stop_process, wait_until_ready
from orchestrator.localkafka import LocalBroker
from tests.e2e.conftest import free_port, settings_from_env


async def test_worker_resumes_deciding_after_the_broker_restarts(
        own_broker: LocalBroker, tmp_path: Path, unique: str) -> None:
    bootstrap = f"127.0.0.1:{own_broker.port}"
    env = {"ORCHESTRATOR_BOOTSTRAP_SERVERS": bootstrap, "ORCHESTRATOR_APP_ID": f"outage-{unique}",
           "ORCHESTRATOR_WEB_PORT": str(free_port()),
           "ORCHESTRATOR_DATA_DIR": str(tmp_path / "data")}
    settings = settings_from_env(env)
    worker, log = start_worker_process(settings, tmp_path, env)
    try:
        wait_until_ready(settings.web_port, worker, 120)
        assert await _direct_link_round_trip(bootstrap, "before") < 30

        await asyncio.to_thread(own_broker.stop)
        await asyncio.sleep(5)  # the worker is cut off
        await asyncio.to_thread(own_broker.start, 120)

        took = await _direct_link_round_trip(bootstrap, "after", timeout=120)
        assert worker.poll() is None, log.read_text()[-3000:]
        print(f"direct link after the broker restart: {took:.1f} s")
        assert took < 120
    finally:
        stop_process(worker)


async def _direct_link_round_trip(bootstrap: str, tag: str, timeout: float = 30) -> float:
    """Send a logged-in self-service page view; return seconds until its direct link is read."""
    started = time.monotonic()
    consumer = AIOKafkaConsumer("actions.web", bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    try:
        visitor = f"v-{tag}"
        await producer.send_and_wait("clickstream", key=visitor.encode(), value=orjson.dumps({
            "event_id": f"e-{tag}", "type": "page_view", "ts": time.time_ns() // 1_000_000,
            "visitor_id": visitor, "customer_id": f"c-{tag}",
            "page": {"url": "/billing/faq", "category": "billing"}}))
        while time.monotonic() - started < timeout:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if orjson.loads(record.value)["trigger_event_id"] == f"e-{tag}":
                        return time.monotonic() - started
        raise AssertionError(f"no direct link for e-{tag} within {timeout} s")
    finally:
        await producer.stop()
        await consumer.stop()
