"""A worker killed with SIGKILL loses no state and sends no action twice under another id."""

from __future__ import annotations

import signal
from collections import defaultdict
from pathlib import Path

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
