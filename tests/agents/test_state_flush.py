"""State written per partition, after the records that changed it, and not before."""

from __future__ import annotations

import asyncio

import orjson

from orchestrator.runtime.app import HeldRecords, build_app
from orchestrator.runtime.settings import load_rules, load_settings
from tests.agents.conftest import RecordingEmitter, deliver, page_view


async def _until(condition, timeout: float = 2.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def test_a_partition_is_due_after_its_record_limit_or_its_age() -> None:
    held = HeldRecords(max_records=3, max_age_s=0.1)
    assert not held.add(0, "a", now=10.0)
    assert not held.add(1, "x", now=10.01)
    assert not held.add(0, "b", now=10.02)
    assert held.add(0, "c", now=10.03)  # three records
    assert held.release(0) == ["a", "b", "c"]
    assert held.overdue(now=10.05) == []
    assert held.overdue(now=10.12) == [1]  # partition 1 waited 110 ms
    assert held.add(1, "y", now=10.12)  # its next record finds it due
    assert held.last(1) == "y"
    assert held.release(1) == ["x", "y"]
    assert held.release(1) == []
    assert held.last(1) is None


def test_revoked_partitions_are_forgotten() -> None:
    held = HeldRecords(max_records=10, max_age_s=1.0)
    held.add(0, "a", now=0.0)
    held.add(2, "b", now=0.0)
    held.discard({2})
    assert held.overdue(now=5.0) == [0]


async def test_profiles_reach_the_table_once_per_flush_however_many_records_changed_them(
        unique: str) -> None:
    emitter = RecordingEmitter()
    settings = load_settings(store="memory", app_id=f"agents-{unique}", state_flush_records=3,
                             state_flush_ms=10_000)
    engine = build_app(settings, load_rules(settings.rules_dir), emitter=emitter)
    engine.app.finalize()
    engine.app.conf.store = "memory://"
    views = [page_view(f"e{n}", "v-7", f"/billing/p{n}", "billing") for n in range(3)]
    async with engine.agent.test_context() as agent:
        await deliver(agent, "clickstream", b"v-7", views[0], offset=0)
        await deliver(agent, "clickstream", b"v-7", views[1], offset=1)
        assert await _until(lambda: engine.processor.people.get("v-7") is not None
                            and engine.processor.people.get("v-7").events_seen == 2)
        assert engine.profiles.get("v-7") is None  # held: two records, the limit is three
        await deliver(agent, "clickstream", b"v-7", views[2], offset=2)
        assert await _until(lambda: engine.profiles.get("v-7") is not None)
        assert orjson.loads(engine.profiles["v-7"])["events_seen"] == 3
    # The login prompt of the third page did not wait for the flush: it was sent when decided.
    assert [a["trigger_event_id"] for a in emitter.on("actions.web")] == ["e2"]


async def test_a_partition_is_written_once_it_holds_as_many_changed_keys_as_allowed(
        unique: str) -> None:
    settings = load_settings(store="memory", app_id=f"agents-{unique}", state_flush_records=1000,
                             state_flush_ms=10_000, state_flush_keys=3)
    engine = build_app(settings, load_rules(settings.rules_dir), emitter=RecordingEmitter())
    engine.app.finalize()
    engine.app.conf.store = "memory://"
    visitors = [f"v-{n}" for n in range(3)]
    async with engine.agent.test_context() as agent:
        for n, visitor in enumerate(visitors[:2]):
            await deliver(agent, "clickstream", visitor.encode(),
                          page_view(f"e{n}", visitor, "/billing/faq", "billing"), offset=n)
        assert await _until(lambda: engine.processor.held_keys(0) == 2)
        assert all(engine.profiles.get(v) is None for v in visitors)  # two keys: held
        await deliver(agent, "clickstream", b"v-2", page_view("e2", "v-2", "/billing/faq", "billing"),
                      offset=2)
        assert await _until(lambda: all(engine.profiles.get(v) is not None for v in visitors))
        assert engine.processor.held_keys(0) == 0
