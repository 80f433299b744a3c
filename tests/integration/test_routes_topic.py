"""``orchestrator routes --topic`` on the real broker: a topic of known routes read from its
beginning, across partitions, bounded by a count."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

T0 = 1_780_000_000_000
MINUTE = 60_000


def route_records() -> list[tuple[str, dict]]:
    """12 visitors read billing, invoices and log in; 8 read products and leave; one line is
    not a record."""
    records = []
    for n in range(12):
        visitor, start = f"v-login-{n}", T0 + n * 3 * 3600_000
        for i, category in enumerate(["billing", "invoices"]):
            records.append((visitor, {"event_id": f"{visitor}-{i}", "type": "page_view",
                                      "ts": start + i * MINUTE, "visitor_id": visitor,
                                      "page": {"url": f"/{category}", "category": category}}))
        records.append((visitor, {"event_id": f"{visitor}-l", "type": "login",
                                  "ts": start + 3 * MINUTE, "visitor_id": visitor,
                                  "customer_id": f"c-{n}"}))
    for n in range(8):
        visitor = f"v-browse-{n}"
        records.append((visitor, {"event_id": f"{visitor}-0", "type": "page_view", "ts": T0 + n,
                                  "visitor_id": visitor,
                                  "page": {"url": "/products", "category": "products"}}))
    return records


async def produce(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        records = route_records()
        for key, value in records:
            await producer.send_and_wait(topic, orjson.dumps(value), key=key.encode())
        await producer.send_and_wait(topic, b"not json", key=b"x")
        return len(records) + 1
    finally:
        await producer.stop()


def run_routes(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "routes", "--bootstrap-servers", bootstrap, *args],
        capture_output=True, text=True, env=clean, timeout=120, check=False)


def test_routes_from_a_topic_finds_the_route_to_the_login_and_names_the_bad_record(
        kafka_bootstrap: str, unique: str) -> None:
    topic = f"routes-{unique}"
    sent = asyncio.run(produce(kafka_bootstrap, topic))

    result = run_routes(kafka_bootstrap, "--topic", topic, "--json", "--goal", "login")
    assert result.returncode == 0, result.stderr
    assert f"read {sent} records from {topic} (3 partitions; stopped at end)" in result.stderr
    assert "1 of 45 lines are not JSON records" in result.stderr
    login = orjson.loads(result.stdout)["login"]
    assert (login["cases"], login["converted"]) == (20, 12)
    assert login["variants"][0]["route"] == ["page:billing", "page:invoices", "login"]
    assert login["variants"][0]["count"] == 12

    bounded = run_routes(kafka_bootstrap, "--topic", topic, "--json", "--max-records", "5")
    assert bounded.returncode == 0, bounded.stderr
    assert "read 5 records" in bounded.stderr and "stopped at max_records" in bounded.stderr


def test_routes_from_a_topic_that_does_not_exist_says_so(kafka_bootstrap: str, unique: str) -> None:
    result = run_routes(kafka_bootstrap, "--topic", f"no-such-topic-{unique}", "--max-s", "5")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
