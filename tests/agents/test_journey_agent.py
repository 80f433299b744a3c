"""The journey agent, run by Faust's test context over an in-memory table."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from orchestrator.runtime.app import Engine
from tests.agents.conftest import RecordingEmitter, deliver, now_ms, page_view


def _handled(engine: Engine) -> float:
    """Records the processor has finished with: applied, dead-lettered or sent on to their
    person's partition."""
    total = 0.0
    for metric in engine.metrics.registry.collect():
        if metric.name in ("orchestrator_events", "orchestrator_rejected_records",
                           "orchestrator_rekeyed_events"):
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


async def _settle(engine: Engine, records: int, timeout: float = 5.0) -> None:
    """Wait until the agent has handled ``records`` records in all and written their state."""
    deadline = asyncio.get_running_loop().time() + timeout
    while _handled(engine) < records or engine.processor.held_partitions():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the agent handled {_handled(engine):g} of {records} records, "
                                 f"state held for {engine.processor.held_partitions()}")
        await asyncio.sleep(0.005)


async def deliver_at(agent: Any, topic: str, key: bytes, value: bytes, offset: int, partition: int,
                     kafka_ts_ms: int) -> None:
    """:func:`deliver` with a given Kafka timestamp (Faust gives it in seconds)."""
    message = agent.to_message(key, value, partition=partition, offset=offset,
                               timestamp=kafka_ts_ms / 1000)
    message.topic = topic
    channel = agent.stream().channel
    await channel.put(await channel.decode(message))


async def test_third_self_service_page_of_an_anonymous_visitor_sends_one_login_prompt(
        engine: Engine, emitter: RecordingEmitter) -> None:
    async with engine.agent.test_context() as agent:
        for n, (url, category) in enumerate([("/billing/faq", "billing"),
                                              ("/billing/invoices", "invoices"),
                                              ("/account/settings", "account"),
                                              ("/billing/due-date", "billing")]):
            await deliver(agent, "clickstream", b"v-1", page_view(f"e{n}", "v-1", url, category),
                          offset=n)
        await _settle(engine, 4)
    prompts = emitter.on("actions.web")
    assert [p["action"] for p in prompts] == ["login_prompt"]
    assert prompts[0]["trigger_event_id"] == "e2"
    assert prompts[0]["person_id"] == "v-1"


async def test_profile_is_kept_in_the_table_between_records(
        engine: Engine, emitter: RecordingEmitter) -> None:
    async with engine.agent.test_context() as agent:
        await deliver(agent, "clickstream", b"v-2",
                      page_view("a", "v-2", "/billing/faq", "billing"), offset=0)
        await deliver(agent, "clickstream", b"v-2",
                      page_view("b", "v-2", "/pricing", "pricing"), offset=1)
        await _settle(engine, 2)
        stored = orjson.loads(engine.profiles.get("v-2"))
    assert stored["events_seen"] == 2
    assert stored["session_log"]["s-v-2"][2] == {"billing": 1, "pricing": 1}


async def test_malformed_record_is_dead_lettered_and_the_next_one_still_processed(
        engine: Engine, emitter: RecordingEmitter) -> None:
    async with engine.agent.test_context() as agent:
        broken_at = now_ms() // 1000 * 1000  # whole seconds: exact through Faust's float seconds
        await deliver_at(agent, "clickstream", b"v-3", b"{broken", offset=41, partition=2,
                         kafka_ts_ms=broken_at)
        await deliver(agent, "clickstream", b"v-3",
                      page_view("ok", "v-3", "/account/settings", "account", customer_id="c-3"),
                      offset=42, partition=2)
        await _settle(engine, 2)
        # A logged-in record goes on to its person's partition; Kafka would bring it back.
        hop = engine.processor.person_events_topic
        [(topic, key, envelope)] = [sent for sent in emitter.sent if sent[0] == hop]
        assert (key, envelope["kind"]) == (b"c-3", "carry")
        await deliver(agent, topic, key, orjson.dumps(envelope), offset=0, partition=2)
        await _settle(engine, 3)
    [dead] = emitter.on("dead-letter")
    assert dead["source"] == {"topic": "clickstream", "partition": 2, "offset": 41,
                              "timestamp": broken_at}
    assert dead["error"] == "not_json"
    assert dead["value"] == "{broken"
    [link] = emitter.on("actions.web")
    assert link["action"] == "direct_link"
    assert link["trigger_event_id"] == "ok"


async def test_contact_centre_record_lands_on_the_customer_profile(
        engine: Engine, emitter: RecordingEmitter) -> None:
    contact = orjson.dumps({"event_id": "cc1", "type": "contact_started", "ts": now_ms(),
                            "customer_id": "c-9", "channel": "phone", "reason": "billing",
                            "sentiment": -0.4})
    async with engine.agent.test_context() as agent:
        await deliver(agent, "contact-centre", b"c-9", contact, offset=0)
        await _settle(engine, 1)
        stored = orjson.loads(engine.profiles.get("c-9"))
    assert stored["recent_contacts"][0]["reason"] == "billing"
    assert emitter.on("actions.web") == []
