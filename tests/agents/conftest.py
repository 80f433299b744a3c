"""The Faust shell without a broker: in-memory tables and a recording emitter."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from orchestrator.runtime.app import Engine, build_app
from orchestrator.runtime.settings import load_rules, load_settings


@dataclass
class RecordingEmitter:
    """Stands where Kafka would: keeps every record the shell sends, in order."""

    sent: list[tuple[str, bytes | None, dict[str, Any]]] = field(default_factory=list)

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   on_delivered: Callable[[], None] | None = None,
                   on_failed: Callable[[BaseException], None] | None = None) -> None:
        self.sent.append((topic, key, None if value is None else orjson.loads(value)))
        if on_delivered is not None:  # a list acknowledges at once
            on_delivered()

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [value for t, _, value in self.sent if t == topic]


async def handled(processor: Any, topic: str, partition: int, offset: int, kafka_ts: int,
                  key: bytes | None, value: bytes | None) -> None:
    """Handle one record, then write the state it changed, as the agent does before it
    acknowledges a record (the tests here read the tables)."""
    await processor.handle(topic, partition, offset, kafka_ts, key, value)
    for held in processor.held_partitions():
        processor.flush(held)


@pytest.fixture
def emitter() -> RecordingEmitter:
    return RecordingEmitter()


@pytest.fixture
def engine(emitter: RecordingEmitter, unique: str) -> Engine:
    # Every record's state is written at once, so that the tests can read the tables; holding
    # state for several records is specified in test_state_flush.py.
    settings = load_settings(store="memory", app_id=f"agents-{unique}", state_flush_records=1)
    engine = build_app(settings, load_rules(settings.rules_dir), emitter=emitter)
    engine.app.finalize()
    engine.app.conf.store = "memory://"
    return engine


async def deliver(agent: Any, topic: str, key: bytes | None, value: bytes, offset: int,
                  partition: int = 0) -> None:
    """Put one record into the agent's stream as if it came from ``topic``.

    Faust's test wrapper names multi-topic channels "<internal>"; the journey agent maps topic
    names to sources, so the message is given its real topic before it is decoded.
    """
    message = agent.to_message(key, value, partition=partition, offset=offset,
                               timestamp=time.time())
    message.topic = topic
    channel = agent.stream().channel
    await channel.put(await channel.decode(message))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def page_view(event_id: str, visitor_id: str, url: str, category: str,
              customer_id: str | None = None) -> bytes:
    record: dict[str, Any] = {"event_id": event_id, "type": "page_view", "ts": now_ms(),
                              "visitor_id": visitor_id, "session_id": f"s-{visitor_id}",
                              "page": {"url": url, "category": category}}
    if customer_id:
        record["customer_id"] = customer_id
    return orjson.dumps(record)
