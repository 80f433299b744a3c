"""Rule sets reach a running worker through the rules topic: a good one is swapped in while
events flow, with no trigger lost; a bad one is refused and the last good one keeps deciding."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from orchestrator.runtime.rules_feed import RULE_SET_KEY
from orchestrator.runtime.settings import PROJECT_ROOT
from tests.e2e.conftest import Traffic, WorkerProcess

OLD_TITLE = "Your bills and payments"
NEW_TITLE = "Bills made easy"


def rules_view(worker: WorkerProcess) -> dict:
    url = f"http://127.0.0.1:{worker.settings.web_port}/rules"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def edited_rules(tmp_path: Path, name: str, old: str, new: str, version: str,
                 also: tuple[str, str] | None = None) -> Path:
    """A copy of the default rules with one text replaced (and maybe another) and a new
    version."""
    target = tmp_path / name
    shutil.copytree(PROJECT_ROOT / "rules", target,
                    ignore=shutil.ignore_patterns("*.md", "*.json"))
    replaced = 0
    for path in target.glob("*.yaml"):
        text = path.read_text()
        replaced += text.count(old)
        text = text.replace(old, new)
        if also:
            text = text.replace(*also)
        lines = [f'version: "{version}"' if line.startswith("version:") else line
                 for line in text.splitlines()]
        path.write_text("\n".join(lines) + "\n")
    assert replaced, f"{old!r} is not in the default rules"
    return target


def cli(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True,
                          text=True, env={**os.environ, **worker.env}, timeout=60, check=False)


async def test_new_rule_set_is_swapped_in_while_events_flow_and_a_bad_one_is_refused(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    worker.start(tmp_path / "data")
    actions_web = worker.settings.action_topic("web")
    before = rules_view(worker)
    assert before["source"].startswith("directory")

    sent: list[str] = []

    async def steady_traffic(stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():  # a different customer each time: one direct link each
            event_id = f"flow-{n}"
            await traffic.page_view(event_id, f"v-flow-{n}", "/billing/faq", "billing",
                                    customer_id=f"c-flow-{n}")
            sent.append(event_id)
            n += 1
            await asyncio.sleep(0.02)

    stop = asyncio.Event()
    flowing = asyncio.create_task(steady_traffic(stop))
    await asyncio.sleep(1.0)
    # The new set also moves the churn alert to a channel the worker was not started with.
    published = cli(worker, "rules", "publish",
                    str(edited_rules(tmp_path, "good", OLD_TITLE, NEW_TITLE, "reload-2",
                                     also=("channel: contact-centre", "channel: email"))))
    assert published.returncode == 0, published.stderr
    for _ in range(100):
        if rules_view(worker)["version"] == "reload-2":
            break
        await asyncio.sleep(0.1)
    assert rules_view(worker)["version"] == "reload-2"
    assert {"email"} <= {rule["channel"] for rule in rules_view(worker)["rules"]}
    admin = AIOKafkaAdminClient(bootstrap_servers=worker.settings.bootstrap_servers)
    await admin.start()
    try:  # created before the swap, so no action is sent to a topic that does not exist
        assert worker.settings.action_topic("email") in await admin.list_topics()
    finally:
        await admin.close()
    await asyncio.sleep(1.0)
    stop.set()
    await flowing

    for event_id in sent:  # every trigger decided exactly once, by one set or the other
        await traffic.wait_for(actions_web, lambda a, e=event_id: a["trigger_event_id"] == e)
    links = [a for a in traffic.seen[actions_web] if a["trigger_event_id"] in set(sent)]
    assert sorted(a["trigger_event_id"] for a in links) == sorted(sent)
    old_set = [a["decided_ts"] for a in links if a["rule_set_version"] == before["version"]]
    new_set = [a["decided_ts"] for a in links if a["rule_set_version"] == "reload-2"]
    assert old_set and new_set and len(old_set) + len(new_set) == len(links)
    # The swap happens between events: old set, then new set, never back.
    assert max(old_set) <= min(new_set)
    for link in links:
        expected = NEW_TITLE if link["rule_set_version"] == "reload-2" else OLD_TITLE
        assert link["payload"]["title"] == expected

    # A bad set is refused by the command line and never published ...
    bad_dir = edited_rules(tmp_path, "bad", "channel: web", "channel: 'not a channel!'",
                           "reload-3")
    refused = cli(worker, "rules", "publish", str(bad_dir))
    assert refused.returncode == 2
    assert "not published" in refused.stderr and "channel" in refused.stderr
    # ... and one that reaches the topic anyway is refused by the worker, with the reason.
    documents = {str(p): p.read_text() for p in sorted(bad_dir.glob("*.yaml"))}
    await traffic.send_raw(worker.settings.topic_rules, RULE_SET_KEY,
                           orjson.dumps({"version": "reload-3", "documents": documents}))
    for _ in range(100):
        if rules_view(worker)["last_rejected"]:
            break
        await asyncio.sleep(0.1)
    view = rules_view(worker)
    assert view["version"] == "reload-2"
    assert any("channel" in error for error in view["last_rejected"]["errors"])
    await traffic.page_view("after-bad", "v-after-bad", "/billing/faq", "billing",
                            customer_id="c-after-bad")
    after = await traffic.wait_for(actions_web, lambda a: a["trigger_event_id"] == "after-bad")
    assert after["rule_set_version"] == "reload-2"
    assert after["payload"]["title"] == NEW_TITLE

    # A restarted worker starts with the latest good set on the topic, not with rules/.
    worker.stop()
    worker.start(tmp_path / "data")
    restarted = rules_view(worker)
    assert restarted["version"] == "reload-2"
    assert restarted["source"].startswith("topic")
    assert restarted["last_rejected"] is not None
