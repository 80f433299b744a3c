"""Journey events in, login_prompt and direct_link out, on the real broker and worker."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

from tests.e2e.conftest import Traffic, WorkerProcess


async def test_anonymous_visitor_gets_one_login_prompt_then_a_direct_link_after_login(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    worker.start(tmp_path / "data")
    actions_web = worker.settings.action_topic("web")
    pages = [("/billing/faq", "billing"), ("/billing/invoices", "invoices"),
             ("/account/settings", "account"), ("/billing/due-date", "billing")]
    for n, (url, category) in enumerate(pages):
        await traffic.page_view(f"anon-{n}", "v-100", url, category)

    prompt = await traffic.wait_for(actions_web, lambda a: a["action"] == "login_prompt")
    assert prompt["trigger_event_id"] == "anon-2"
    assert prompt["person_id"] == "v-100"
    assert prompt["payload"]["login_url"] == "/login?return_to=%2Faccount%2Fsettings"
    assert prompt["_kafka"]["key"] == b"v-100"
    assert prompt["trigger_ts"] <= prompt["decided_ts"] < prompt["expires_ts"]

    await traffic.send(worker.settings.topic_clickstream, "v-100", event_id="login-1",
                       type="login", visitor_id="v-100", customer_id="c-100",
                       session_id="s-v-100")
    await traffic.page_view("known-1", "v-100", "/billing/invoices/latest", "invoices",
                            customer_id="c-100")
    link = await traffic.wait_for(actions_web, lambda a: a["action"] == "direct_link")
    assert link["trigger_event_id"] == "known-1"
    assert link["customer_id"] == "c-100"
    assert link["payload"]["url"] == "/account/billing/invoices"
    # Same key, same partition, in order: the fourth page was decided before the link.
    prompts = [a for a in traffic.seen[actions_web] if a["action"] == "login_prompt"]
    assert len(prompts) == 1


async def test_worker_serves_health_readiness_and_metrics_that_count_what_it_did(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    worker.start(tmp_path / "data")
    base = f"http://127.0.0.1:{worker.settings.web_port}"
    for n, (url, category) in enumerate([("/billing/a", "billing"), ("/billing/b", "billing"),
                                         ("/billing/c", "billing")]):
        await traffic.page_view(f"m-{n}", "v-400", url, category)
    await traffic.send_raw(worker.settings.topic_clickstream, b"v-400", b"nope")
    await traffic.wait_for(worker.settings.action_topic("web"),
                           lambda a: a["trigger_event_id"] == "m-2")
    await traffic.wait_for(worker.settings.topic_dead_letter, lambda d: d["error"] == "not_json")

    assert _get(f"{base}/health")[0] == 200
    assert _get(f"{base}/ready") == (200, '{"ready":true}')
    status, metrics = _get(f"{base}/metrics")
    assert status == 200
    assert 'orchestrator_events_total{source="clickstream",type="page_view"} 3.0' in metrics
    # The third self-service page enters the journey anonymous-to-identified too; its prompt and
    # the rule self-service-login-prompt's tie in the arbitration, and the rule is sent.
    assert ('orchestrator_actions_total{action="login_prompt",channel="web",'
            'rule="self-service-login-prompt"} 1.0') in metrics
    assert ('orchestrator_decisions_suppressed_total{action="login_prompt",cause="lost"} 1.0'
            in metrics)
    assert 'orchestrator_journey_entered_total{journey="anonymous-to-identified"} 1.0' in metrics
    assert 'orchestrator_rejected_records_total{error="not_json",source="clickstream"} 1.0' \
        in metrics
    assert ('orchestrator_event_to_action_seconds_count{action="login_prompt",channel="web"} 1.0'
            in metrics)
    assert "orchestrator_ready 1.0" in metrics, _lines(metrics, "orchestrator_")
    # The three inputs and the person-events topic, all partitions (one worker).
    assert f"orchestrator_assigned_partitions {float(worker.settings.partitions * 4)}" in metrics, \
        _lines(metrics, "orchestrator_")
    lags = re.findall(r'^orchestrator_consumer_lag\{partition="\d+",topic="([^"]+)"\} (\S+)$',
                      metrics, re.MULTILINE)
    assert {topic for topic, _ in lags} == {*worker.settings.input_topics,
                                            worker.settings.person_events_topic}
    assert all(float(lag) == 0.0 for _, lag in lags)  # everything sent was processed
    # The visitor's profile is written within STATE_FLUSH_MS of its last record.
    keys = "0"
    for _ in range(50):
        [keys] = re.findall(r'^orchestrator_table_keys\{table="profiles"\} (\S+)$',
                            _get(f"{base}/metrics")[1], re.MULTILINE)
        if float(keys) >= 1:
            break
        time.sleep(0.1)
    assert float(keys) >= 1  # RocksDB's estimate; one visitor was stored
    assert 'orchestrator_rule_set_info{version="' in metrics
    assert "process_resident_memory_bytes" in metrics


def _lines(text: str, prefix: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith(prefix))


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()
