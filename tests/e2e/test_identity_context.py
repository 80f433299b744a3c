"""One person across two devices and the contact centre, on two workers and the real broker.

An anonymous visitor browses, logs in, logs in again on a second device and calls the contact
centre: the live context shows the whole story under every id on either worker and on the
compacted customer-context topic; an erasure removes it everywhere.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from tests.e2e.conftest import Traffic, WorkerProcess, another_worker


def get_context(port: int, person: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/context/{person}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


async def eventually(check: Any, timeout: float = 30.0) -> Any:
    """Poll ``check`` (returns a value or raises AssertionError) until it passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def metric_sum(port: int, name: str, label: str = "") -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(v) for v in re.findall(rf'^{name}\{{[^}}]*{label}[^}}]*\}} (\S+)$', text, re.MULTILINE))


def ids_on_different_partitions(partitions: int) -> tuple[str, str, str]:
    """A first device, a second device and a customer id on three different partitions, so that
    with two workers some of them are owned by each and look-ups must be forwarded."""
    partitioner = DefaultPartitioner()
    all_partitions = list(range(partitions))

    def partition(key: str) -> int:
        return partitioner(key.encode(), all_partitions, all_partitions)

    customer = "c-4711"
    first = next(f"v-phone-{n}" for n in range(1000) if partition(f"v-phone-{n}") != partition(customer))
    second = next(f"v-laptop-{n}" for n in range(1000)
                  if partition(f"v-laptop-{n}") not in (partition(customer), partition(first)))
    return first, second, customer


async def test_the_whole_story_is_in_the_context_under_every_id_on_either_worker_until_erased(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    settings = worker.settings
    other = another_worker(worker, tmp_path)
    ports = (settings.web_port, other.settings.web_port)
    phone, laptop, customer = ids_on_different_partitions(settings.partitions)
    clicks, calls = settings.topic_clickstream, settings.topic_contact_centre
    try:
        worker.start(tmp_path / "a")
        other.start(tmp_path / "b")

        # Anonymous on the phone, then logged in there.
        await traffic.page_view("p-1", phone, "/billing/faq", "billing")
        await traffic.page_view("p-2", phone, "/billing/invoices", "invoices")
        await traffic.send(clicks, phone, event_id="p-3", type="login", visitor_id=phone,
                           customer_id=customer, session_id=f"s-{phone}")
        # A second device: a page anonymously, then the login that joins it to the customer.
        await traffic.page_view("l-1", laptop, "/moving", "moving")
        await traffic.send(clicks, laptop, event_id="l-2", type="login", visitor_id=laptop,
                           customer_id=customer, session_id=f"s-{laptop}")
        # And a call about billing.
        await traffic.send(calls, customer, event_id="k-1", type="case_opened", customer_id=customer,
                           channel="phone", reason="billing", sentiment=-0.2)

        def whole_story(port: int, asked: str) -> dict[str, Any]:
            status, context = get_context(port, asked)
            assert status == 200, (port, asked, status, context)
            assert context["person_id"] == customer
            assert context["requested_id"] == asked
            assert sorted(context["visitor_ids"]) == sorted([phone, laptop])
            assert {p["url"] for p in context["recent_pages"]} == {"/billing/faq", "/billing/invoices",
                                                                  "/moving"}
            assert [c["type"] for c in context["recent_contacts"]] == ["case_opened"]
            assert context["open_case"] == "billing"
            assert context["events_seen"] == 6
            return context

        for port in ports:
            for asked in (phone, laptop, customer):
                await eventually(lambda port=port, asked=asked: whole_story(port, asked))
        forwarded = sum(metric_sum(port, "orchestrator_context_requests_total", 'result="forwarded"')
                        for port in ports)
        assert forwarded > 0  # ids of both workers were asked of both

        # The compacted topic holds the same story under the person id; the anonymous phone and
        # laptop persons were replaced by tombstones when their history moved to the customer.
        topic = settings.topic_customer_context
        record = await traffic.wait_for(
            topic, lambda r: r["_kafka"]["key"] == customer.encode() and r.get("events_seen") == 6)
        assert record["open_case"] == "billing" and sorted(record["visitor_ids"]) == sorted([phone, laptop])
        for anonymous in (phone, laptop):
            key = anonymous.encode()
            await traffic.wait_for(topic, lambda r, k=key: r["_kafka"]["key"] == k
                                   and r.get("_tombstone") is True)

        # Erasure: gone from both workers under every id, and a tombstone on the topic.
        await traffic.send(calls, customer, event_id="k-2", type="erasure_requested", customer_id=customer)

        def gone(port: int, asked: str) -> None:
            status, body = get_context(port, asked)
            assert status == 404, (port, asked, status, body)

        for port in ports:
            for asked in (phone, laptop, customer):
                await eventually(lambda port=port, asked=asked: gone(port, asked))
        await traffic.wait_for(topic, lambda r: r["_kafka"]["key"] == customer.encode()
                               and r.get("_tombstone") is True)
        # A later page view on the phone starts a new anonymous person: nothing of the old one.
        await traffic.page_view("p-9", phone, "/home", "home")
        _, fresh = await eventually(lambda: _found(get_context(settings.web_port, phone)))
        assert fresh["person_id"] == phone and fresh["customer_id"] is None
        assert [p["url"] for p in fresh["recent_pages"]] == ["/home"]
    finally:
        other.stop()


def _found(answer: tuple[int, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    assert answer[0] == 200, answer
    return answer
