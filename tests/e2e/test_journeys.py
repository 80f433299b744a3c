"""Journeys in a real worker on the real broker: a wait for an event that times out, one that the
event ends, and a restart in the middle of a wait (the timer survives and fires once)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

from orchestrator.runtime.settings import PROJECT_ROOT
from tests.e2e.conftest import Traffic, WorkerProcess


def follow_up(timeout_s: int) -> str:
    return f"""
version: "e2e-1"
journeys:
  - id: pricing-follow-up
    description: a pricing reader is prompted, and reminded unless they reach the checkout
    entry:
      event: [page_view]
      when: {{field: event.page.category, eq: pricing}}
    goal: {{field: event.type, eq: purchase}}
    max_entries: 1
    steps:
      - id: prompt
        send: {{channel: web, action: pricing_prompt}}
      - id: wait-for-checkout
        wait_for:
          event: [page_view]
          when: {{field: event.page.category, eq: checkout}}
          timeout_s: {timeout_s}
          then: thanks
          on_timeout: reminder
      - id: reminder
        send: {{channel: web, action: pricing_reminder}}
        next: exit
      - id: thanks
        send: {{channel: web, action: checkout_thanks}}
"""


def with_journey(worker: WorkerProcess, tmp_path: Path, timeout_s: int) -> None:
    """The default rules and one short journey, in a rules directory of this test's own."""
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules,
                    ignore=shutil.ignore_patterns("*.md", "*.json", "journeys"))
    (rules / "journeys").mkdir()
    (rules / "journeys" / "follow-up.yaml").write_text(follow_up(timeout_s))
    worker.env["ORCHESTRATOR_RULES_DIR"] = str(rules)


def journeys_view(worker: WorkerProcess) -> dict[str, Any]:
    url = f"http://127.0.0.1:{worker.settings.web_port}/journeys"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def of(action: str, person: str) -> Any:
    return lambda record: record.get("action") == action and record.get("person_id") == person


async def test_a_wait_for_an_event_that_does_not_come_times_out_within_a_second_of_its_due_time(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    with_journey(worker, tmp_path, timeout_s=3)
    worker.start(tmp_path / "data")
    web = worker.settings.action_topic("web")
    await traffic.page_view("p1", "v-timeout", "/pricing", "pricing")
    prompt = await traffic.wait_for(web, of("pricing_prompt", "v-timeout"))
    reminder = await traffic.wait_for(web, of("pricing_reminder", "v-timeout"), timeout=15)
    seen_ms = time.time_ns() // 1_000_000
    due = prompt["trigger_event_ts"] + 3000
    assert reminder["trigger_ts"] == due
    assert reminder["trigger_event_id"].startswith("timer:")
    assert seen_ms - due < 1500, f"the reminder came {seen_ms - due} ms after its due time"
    page = journeys_view(worker)
    [journey] = page["journeys"]
    assert (journey["entered"], journey["active"], journey["exited"]) == (1, 0, {"completed": 1})
    assert page["partitions"] == list(range(worker.settings.partitions))


async def test_a_wait_for_an_event_is_ended_by_the_event(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    with_journey(worker, tmp_path, timeout_s=3)
    worker.start(tmp_path / "data")
    web = worker.settings.action_topic("web")
    await traffic.page_view("p1", "v-ended", "/pricing", "pricing")
    await traffic.wait_for(web, of("pricing_prompt", "v-ended"))
    await traffic.page_view("p2", "v-ended", "/checkout", "checkout")
    thanks = await traffic.wait_for(web, of("checkout_thanks", "v-ended"))
    assert thanks["trigger_event_id"] == "p2"
    await asyncio.sleep(4.5)  # past the timeout: no reminder
    await traffic.page_view("p3", "v-marker", "/pricing", "pricing")  # a record to read up to
    await traffic.wait_for(web, of("pricing_prompt", "v-marker"))
    assert not [r for r in traffic.seen[web] if of("pricing_reminder", "v-ended")(r)]


async def test_a_restart_in_the_middle_of_a_wait_fires_the_timer_once(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    with_journey(worker, tmp_path, timeout_s=12)
    worker.start(tmp_path / "data")
    web = worker.settings.action_topic("web")
    await traffic.page_view("p1", "v-restart", "/pricing", "pricing")
    prompt = await traffic.wait_for(web, of("pricing_prompt", "v-restart"))
    worker.stop()
    worker.start(tmp_path / "data")
    reminder = await traffic.wait_for(web, of("pricing_reminder", "v-restart"), timeout=30)
    assert reminder["trigger_ts"] == prompt["trigger_event_ts"] + 12_000
    await asyncio.sleep(2.0)
    await traffic.page_view("p9", "v-marker", "/pricing", "pricing")
    await traffic.wait_for(web, of("pricing_prompt", "v-marker"))
    reminders = [r for r in traffic.seen[web] if of("pricing_reminder", "v-restart")(r)]
    assert len(reminders) == 1, reminders
    prompts = [r for r in traffic.seen[web] if of("pricing_prompt", "v-restart")(r)]
    assert len(prompts) == 1
