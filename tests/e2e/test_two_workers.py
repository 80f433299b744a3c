"""Two workers in one group share the partitions; when one leaves, the other carries on with
the state of the partitions it takes over."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner

from orchestrator.runtime.settings import Settings
from tests.e2e.conftest import Traffic, WorkerProcess, another_worker

PAGES = [("/billing/faq", "billing"), ("/billing/invoices", "invoices"),
         ("/account/settings", "account")]


def visitors_covering_every_partition(partitions: int, per_partition: int = 2) -> list[str]:
    """Visitor ids chosen so that each partition gets some: both workers must do work."""
    partitioner = DefaultPartitioner()
    chosen: dict[int, list[str]] = {p: [] for p in range(partitions)}
    n = 0
    while any(len(v) < per_partition for v in chosen.values()):
        visitor = f"v-{n}"
        p = partitioner(visitor.encode(), list(range(partitions)), list(range(partitions)))
        if len(chosen[p]) < per_partition:
            chosen[p].append(visitor)
        n += 1
    return [v for vs in chosen.values() for v in vs]


def events_counted(web_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(m) for m in re.findall(r'^orchestrator_events_total\{[^}]*\} (\S+)$', text,
                                            re.MULTILINE))


async def test_partitions_are_shared_and_handed_over_with_their_state(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    settings = worker.settings
    second = another_worker(worker, tmp_path)
    second_port = second.settings.web_port
    actions_web = settings.action_topic("web")
    visitors = visitors_covering_every_partition(settings.partitions)
    try:
        worker.start(tmp_path / "a")
        second.start(tmp_path / "b")
        await _journeys(traffic, settings, visitors, "first")
        for visitor in visitors:
            await traffic.wait_for(actions_web, lambda a, v=visitor: a["trigger_event_id"]
                                   == f"first-{v}-2", timeout=60)
        assert events_counted(settings.web_port) > 0
        assert events_counted(second_port) > 0
        assert events_counted(settings.web_port) + events_counted(second_port) == 3 * len(visitors)

        worker.stop()  # the second worker takes every partition, restoring their profiles
        await _journeys(traffic, settings, visitors, "again")
        for visitor in visitors:
            await traffic.page_view(f"marker-{visitor}", visitor, "/account/settings", "account",
                                    customer_id=f"c-{visitor}")
        for visitor in visitors:
            await traffic.wait_for(actions_web, lambda a, v=visitor: a["trigger_event_id"]
                                   == f"marker-{v}", timeout=90)
        prompts = sorted(a["trigger_event_id"] for a in traffic.seen[actions_web]
                         if a["action"] == "login_prompt")
        assert prompts == sorted(f"first-{v}-2" for v in visitors)
    finally:
        second.stop()


async def _journeys(traffic: Traffic, settings: Settings, visitors: list[str], tag: str) -> None:
    for n, (url, category) in enumerate(PAGES):
        for visitor in visitors:
            await traffic.page_view(f"{tag}-{visitor}-{n}", visitor, url, category)
