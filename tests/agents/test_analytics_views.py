"""Rule analytics and mined routes on a wired app over real HTTP: the processor's events feed
the counters, ``/analytics/rules`` and ``/routes`` answer operators only, and the owner's page
is open and locked down like the console."""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import ClientSession

from orchestrator.core.rules import in_holdout
from tests.agents.conftest import handled, now_ms, page_view
from tests.agents.test_http_security import OPERATOR, READER, Node, Nodes, nodes, tokens_file
from tests.unit.factories import self_service_rules

__all__ = ["nodes", "tokens_file"]  # the fixtures

RULE = "self-service-login-prompt"


async def get(url: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, orjson.loads(await response.read())


async def send(node: Node, topic: str, key: str, record: dict[str, Any]) -> None:
    """Handle a record, then the records it forwarded to the person-events topic (the hop a
    login takes to the customer's partition), as the broker would deliver them."""
    processor = node.engine.processor
    for table in (node.engine.profiles, node.engine.identity):
        # No broker: a carried anonymous profile is deleted in memory, with no changelog record.
        table.on_key_del = lambda key: None
    sent = len(processor.emitter.sent)
    await handled(processor, topic, 0, 0, now_ms(), key.encode(), orjson.dumps(record))
    for out_topic, out_key, value in processor.emitter.sent[sent:]:
        if out_topic == processor.person_events_topic:
            await handled(processor, out_topic, 0, 0, now_ms(), out_key, orjson.dumps(value))


async def visit(node: Node, visitor: str, logs_in: bool, feedback: tuple[str, ...]) -> None:
    processor = node.engine.processor
    for n, category in enumerate(["billing", "invoices", "moving"]):
        await handled(processor, "clickstream", 0, 0, now_ms(), visitor.encode(),
                      page_view(f"{visitor}-{n}", visitor, f"/{category}", category))
    prompts = [v for t, _, v in processor.emitter.sent
               if t.endswith("web") and v["person_id"] == visitor]
    for outcome in feedback if prompts else ():
        await send(node, "action-feedback", visitor,
                   {"action_id": prompts[0]["action_id"], "outcome": outcome, "ts": now_ms()})
    if logs_in:
        await send(node, "clickstream", visitor,
                   {"event_id": f"{visitor}-login", "type": "login", "ts": now_ms() + 1,
                    "visitor_id": visitor, "customer_id": f"c-{visitor}"})


def counter(exposition: str, outcome: str) -> float:
    pattern = (r'^orchestrator_rule_outcomes_total\{action="login_prompt",outcome="' + outcome
               + r'",rule="' + RULE + r'"\} (\S+)$')
    found = re.search(pattern, exposition, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_rule_analytics_count_sends_holdouts_feedback_and_goals(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    node.engine.processor.rule_set = self_service_rules(
        login_prompt={"holdout_percent": 50, "goal": ["login"]})
    expected = dict.fromkeys(["sent", "held_out", "shown", "clicked", "goal_treated",
                              "goal_held_out"], 0)
    for n in range(30):
        visitor = f"v-{n}"
        held = in_holdout(visitor, RULE, 50)
        logs_in = n % 3 == 0
        feedback = ("shown", "clicked") if n % 2 else ("shown",)
        await visit(node, visitor, logs_in, feedback)
        expected["held_out" if held else "sent"] += 1
        if not held:
            expected["shown"] += 1
            expected["clicked"] += n % 2
        if logs_in:
            expected["goal_held_out" if held else "goal_treated"] += 1
    assert 0 < expected["held_out"] < 30

    status, report = await get(f"{node.url}/analytics/rules", OPERATOR)
    assert status == 200
    assert report["scope"] == "worker" and report["attribution_window_s"] == 86400
    [entry] = [r for r in report["rules"] if r["rule"] == RULE]
    assert {k: entry[k] for k in expected} == expected
    assert entry["treated_rate"] == expected["goal_treated"] / expected["sent"]
    assert entry["uplift_low"] <= entry["uplift"] <= entry["uplift_high"]
    assert entry["goal"] == ["login"] and entry["holdout_percent"] == 50

    async with ClientSession() as session, session.get(f"{node.url}/metrics") as response:
        exposition = await response.text()
    for outcome, count in expected.items():
        assert counter(exposition, outcome) == count, outcome


async def test_the_routes_of_the_workers_events_are_served(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    for n in range(6):
        await visit(node, f"v-route-{n}", logs_in=True, feedback=())
    status, routes = await get(f"{node.url}/routes", OPERATOR)
    assert status == 200
    login = routes["goals"]["login"]
    assert login["converted"] == 6
    assert login["variants"][0]["route"] == ["page:billing", "page:invoices", "page:moving", "login"]
    edges = {(e["source"], e["target"]): e["count"] for e in login["edges"]}
    assert edges[("page:moving", "login")] == 6
    assert routes["max_cases"] == 50_000 and routes["window_s"] == 86_400


async def test_analytics_and_routes_are_the_operators(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    for path in ("/analytics/rules", "/routes"):
        assert (await get(f"{node.url}{path}", None))[0] == 401, path
        assert (await get(f"{node.url}{path}", READER))[0] == 403, path
        assert (await get(f"{node.url}{path}", OPERATOR))[0] == 200, path


async def test_the_owner_page_is_open_and_loads_only_its_own_files(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    async with ClientSession() as session:
        async with session.get(f"{node.url}/owner") as response:
            assert response.status == 200 and response.content_type == "text/html"
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            assert 'src="/owner/owner.js"' in await response.text()
        async with session.get(f"{node.url}/owner/owner.js") as response:
            assert (response.status, response.content_type) == (200, "text/javascript")
        async with session.get(f"{node.url}/owner/nothing.js") as response:
            assert response.status == 404
