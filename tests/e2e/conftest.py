"""Real worker processes against the real broker, each test on topics of its own."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from orchestrator.demo import client_tls, start_worker_process, stop_process, wait_until_ready
from orchestrator.runtime.kafka_security import client_options
from orchestrator.runtime.settings import Settings, load_settings


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(count: int = 1) -> int:
    """A free port (and the ``count - 1`` after it) below Linux's ephemeral range, so that no
    client connection of this machine takes it between now and the server binding it."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(20000, 30000 - count)
        if all(_bindable(port + i) for i in range(count)):
            return port
    raise RuntimeError("no free port between 20000 and 30000")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class WorkerProcess:
    """``orchestrator worker`` as a child process with this test's topics and data dir."""

    def __init__(self, settings: Settings, env: dict[str, str], log_dir: Path) -> None:
        self.settings = settings
        self.env = env
        self.log_dir = log_dir
        self.proc: Any = None
        self.log_path: Path | None = None

    def start(self, data_dir: Path, timeout: float = 120) -> None:
        env = {**self.env, "ORCHESTRATOR_DATA_DIR": str(data_dir)}
        self.proc, self.log_path = start_worker_process(self.settings, self.log_dir, env)
        try:
            wait_until_ready(self.settings.web_port, self.proc, timeout, tls=client_tls(self.settings))
        except RuntimeError as exc:
            raise AssertionError(f"{exc}; worker log:\n{self.log_tail()}") from None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def log_tail(self, lines: int = 60) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def e2e_settings(kafka_bootstrap: str, unique: str) -> tuple[Settings, dict[str, str]]:
    """Settings (and the environment that gives a child process the same) for one test."""
    env = {
        "ORCHESTRATOR_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ORCHESTRATOR_APP_ID": f"e2e-{unique}",
        "ORCHESTRATOR_TOPIC_CLICKSTREAM": f"clickstream-{unique}",
        "ORCHESTRATOR_TOPIC_CONTACT_CENTRE": f"contact-centre-{unique}",
        "ORCHESTRATOR_TOPIC_ACTION_FEEDBACK": f"action-feedback-{unique}",
        "ORCHESTRATOR_TOPIC_DEAD_LETTER": f"dead-letter-{unique}",
        "ORCHESTRATOR_TOPIC_CUSTOMER_CONTEXT": f"customer-context-{unique}",
        "ORCHESTRATOR_TOPIC_HELD_OUT": f"held-out-{unique}",
        "ORCHESTRATOR_TOPIC_ACTIONS_PREFIX": f"actions-{unique}.",
        "ORCHESTRATOR_TOPIC_RULES": f"rules-{unique}",
        "ORCHESTRATOR_WEB_PORT": str(free_port()),
    }
    return settings_from_env(env), env


def settings_from_env(env: dict[str, str]) -> Settings:
    """The settings a child process given ``env`` will see (this process's env untouched)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def another_worker(worker: WorkerProcess, log_dir: Path) -> WorkerProcess:
    """A second worker of the same group and topics, on its own web port."""
    port = free_port()
    return WorkerProcess(worker.settings.model_copy(update={"web_port": port}),
                         {**worker.env, "ORCHESTRATOR_WEB_PORT": str(port)}, log_dir)


@pytest.fixture
def worker(e2e_settings: tuple[Settings, dict[str, str]], tmp_path: Path,
           request: pytest.FixtureRequest) -> Iterator[WorkerProcess]:
    settings, env = e2e_settings
    process = WorkerProcess(settings, env, tmp_path)
    yield process
    process.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(process.log_tail())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


class Traffic:
    """Produces contract records to this test's topics and reads what comes out."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = AIOKafkaProducer(**client_options(settings), acks="all")
        self.consumers: dict[str, AIOKafkaConsumer] = {}
        self.seen: dict[str, list[dict[str, Any]]] = {}

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()
        for consumer in self.consumers.values():
            await consumer.stop()

    async def send_raw(self, topic: str, key: bytes | None, value: bytes) -> RecordMetadata:
        return await self.producer.send_and_wait(topic, value=value, key=key)

    async def send(self, topic: str, key: str, **record: Any) -> RecordMetadata:
        return await self.send_raw(topic, key.encode(), orjson.dumps({"ts": now_ms(), **record}))

    async def page_view(self, event_id: str, visitor_id: str, url: str, category: str,
                        customer_id: str | None = None) -> RecordMetadata:
        extra = {"customer_id": customer_id} if customer_id else {}
        return await self.send(self.settings.topic_clickstream, visitor_id, event_id=event_id,
                               type="page_view", visitor_id=visitor_id,
                               session_id=f"s-{visitor_id}",
                               page={"url": url, "category": category}, **extra)

    async def wait_for(self, topic: str, predicate: Callable[[dict[str, Any]], bool],
                       timeout: float = 30.0) -> dict[str, Any]:
        """Read ``topic`` from its start until a record matches; return it."""
        consumer = self.consumers.get(topic)
        if consumer is None:
            consumer = AIOKafkaConsumer(topic, **client_options(self.settings), group_id=None,
                                        auto_offset_reset="earliest", fetch_max_wait_ms=100)
            await consumer.start()
            self.consumers[topic] = consumer
            self.seen[topic] = []
        for value in self.seen[topic]:
            if predicate(value):
                return value
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            fresh = []
            for records in batch.values():
                for record in records:
                    # A tombstone (compacted topics) is shown as {"_tombstone": true}.
                    value = orjson.loads(record.value) if record.value is not None else {"_tombstone": True}
                    value["_kafka"] = {"partition": record.partition, "offset": record.offset,
                                       "key": record.key}
                    fresh.append(value)
            self.seen[topic].extend(fresh)  # keep all of the batch for later waits
            for value in fresh:
                if predicate(value):
                    return value
        raise AssertionError(f"nothing matching arrived on {topic} within {timeout:.0f} s; "
                             f"saw {len(self.seen[topic])} records")


@pytest.fixture
async def traffic(e2e_settings: tuple[Settings, dict[str, str]]) -> AsyncIterator[Traffic]:
    settings, _ = e2e_settings
    t = Traffic(settings)
    await t.start()
    yield t
    await t.stop()
