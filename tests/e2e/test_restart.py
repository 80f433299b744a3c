"""Per-person state survives a worker restart: no second login prompt inside the cooldown."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Traffic, WorkerProcess

BILLING = [("/billing/faq", "billing"), ("/billing/invoices", "invoices"),
           ("/billing/due-date", "billing")]


async def test_restarted_worker_restores_profiles_from_the_changelog_and_keeps_the_cooldown(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    actions_web = worker.settings.action_topic("web")
    worker.start(tmp_path / "first")
    for n, (url, category) in enumerate(BILLING):
        await traffic.page_view(f"before-{n}", "v-300", url, category)
    await traffic.wait_for(actions_web, lambda a: a["trigger_event_id"] == "before-2")
    worker.stop()

    # A fresh data directory: the profile can only come back from the changelog topic.
    worker.start(tmp_path / "second")
    for n, (url, category) in enumerate(BILLING):
        await traffic.page_view(f"after-{n}", "v-300", url, category)
    # Three more pages would prompt a visitor the worker had forgotten. A marker on the same
    # key (same partition, processed in order) shows the worker got past them.
    await traffic.page_view("marker", "v-300", "/account/settings", "account",
                            customer_id="c-300")
    await traffic.wait_for(actions_web, lambda a: a["trigger_event_id"] == "marker")
    prompts = [a["trigger_event_id"] for a in traffic.seen[actions_web]
               if a["action"] == "login_prompt"]
    assert prompts == ["before-2"]
