"""A worker killed with SIGKILL loses no state and sends no action twice under another id."""

from __future__ import annotations

import asyncio
import random
import signal
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from tests.e2e.conftest import Traffic, WorkerProcess

BILLING = [("/billing/faq", "billing"), ("/billing/invoices", "invoices"),
           ("/billing/due-date", "billing")]
VISITORS = [f"v-crash-{n}" for n in range(8)]


async def test_killed_worker_restarts_with_its_state_and_replays_do_not_duplicate_actions(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    actions_web = worker.settings.action_topic("web")
    worker.start(tmp_path / "data")
    for n, (url, category) in enumerate(BILLING):
        for visitor in VISITORS:
            await traffic.page_view(f"{visitor}-a{n}", visitor, url, category)
    for visitor in VISITORS:
        await traffic.wait_for(actions_web, lambda a, v=visitor: a["trigger_event_id"]
                               == f"{v}-a2")
    for visitor in VISITORS:  # more pages, then the worker dies mid-stream, uncommitted
        await traffic.page_view(f"{visitor}-b0", visitor, "/billing/more", "billing")
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait()
    worker.proc = None

    worker.start(tmp_path / "data")  # same volume, as a restarted pod would have
    for n, (url, category) in enumerate(BILLING):  # would prompt a forgotten visitor again
        for visitor in VISITORS:
            await traffic.page_view(f"{visitor}-c{n}", visitor, url, category)
    for visitor in VISITORS:
        await traffic.page_view(f"{visitor}-marker", visitor, "/account/settings", "account",
                                customer_id=f"c-{visitor}")
    for visitor in VISITORS:
        await traffic.wait_for(actions_web, lambda a, v=visitor: a["trigger_event_id"]
                               == f"{v}-marker", timeout=60)

    prompts = [a for a in traffic.seen[actions_web] if a["action"] == "login_prompt"]
    assert {a["trigger_event_id"] for a in prompts} == {f"{v}-a2" for v in VISITORS}
    ids_by_trigger: dict[str, set[str]] = defaultdict(set)
    for action in traffic.seen[actions_web]:
        ids_by_trigger[action["trigger_event_id"]].add(action["action_id"])
    # A copy re-sent after the crash (at-least-once) carries the same id as the original.
    assert all(len(ids) == 1 for ids in ids_by_trigger.values())


async def _read_all(traffic: Traffic, topic: str) -> list[dict[str, Any]]:
    """Every record on ``topic`` now."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=traffic.settings.bootstrap_servers,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        values: list[dict[str, Any]] = []
        while True:
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind:
                return values
            batch = await consumer.getmany(timeout_ms=500)
            values += [orjson.loads(r.value) for records in batch.values() for r in records]
    finally:
        await consumer.stop()


async def _context(port: int, person: str) -> dict[str, Any] | None:
    def get() -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/context/{person}", timeout=5) as r:
                return orjson.loads(r.read())
        except urllib.error.HTTPError:
            return None
    return await asyncio.to_thread(get)


async def test_kills_at_random_points_mid_batch_lose_no_profile_update(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    """Three SIGKILLs at random moments while records stream in: every record sent is applied
    to its person exactly once in the end, and no trigger gets two different action ids."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    visitors = [f"v-kill-{n}" for n in range(40)]
    pages = [("/billing/faq", "billing"), ("/billing/invoices", "invoices"),
             ("/account/settings", "account"), ("/pricing", "pricing"), ("/offers", "offers")]
    plan = [(visitor, n) for n in range(20) for visitor in visitors]
    rng.shuffle(plan)
    waves = [plan[i::4] for i in range(4)]
    data = tmp_path / "data"
    worker.start(data)

    async def send(wave: list[tuple[str, int]]) -> None:
        for visitor, n in wave:
            url, category = pages[n % len(pages)]
            await traffic.page_view(f"{visitor}-{n}", visitor, f"{url}?n={n}", category)

    for wave in waves[:3]:  # killed while a wave is being sent and processed
        sending = asyncio.create_task(send(wave))
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait()
        worker.proc = None
        await sending
        await asyncio.to_thread(worker.start, data)
    await send(waves[3])

    port = worker.settings.web_port
    deadline = asyncio.get_running_loop().time() + 90
    applied: dict[str, int | None] = {}
    while asyncio.get_running_loop().time() < deadline:
        for visitor in visitors:
            context = await _context(port, visitor)
            applied[visitor] = context["events_seen"] if context else None
        if all(count == 20 for count in applied.values()):
            break
        await asyncio.sleep(1)
    assert applied == {visitor: 20 for visitor in visitors}, f"seed {seed}"

    ids_by_trigger: dict[str, set[str]] = defaultdict(set)
    actions = await _read_all(traffic, worker.settings.action_topic("web"))
    assert actions, "the visitors' third self-service pages sent login prompts"
    for action in actions:
        ids_by_trigger[action["trigger_event_id"]].add(action["action_id"])
    assert all(len(ids) == 1 for ids in ids_by_trigger.values()), f"seed {seed}"
