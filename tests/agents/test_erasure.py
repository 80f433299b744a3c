"""Erasure that holds: records from before a person's erasure do not bring them back, the
erasure survives a restart (it is in the profiles table, so in its changelog), and consent goes
by broker time."""

from __future__ import annotations

from typing import Any

import orjson

from orchestrator.core.profile import queries
from orchestrator.runtime.stores import decode_profile
from tests.agents.conftest import handled
from tests.agents.test_identity_flow import NOW, World
from tests.agents.test_processor import sample

MINUTE = 60_000


async def send_at(world: World, topic: str, key: str, kafka_ts: int, **fields: Any) -> None:
    """A record the broker stamped ``kafka_ts`` (its own ``ts`` is in ``fields``)."""
    world.offset += 1
    await handled(world.processor, topic, 0, world.offset, kafka_ts, key.encode(), orjson.dumps(fields))
    await world.deliver_hops()


def dropped(world: World, source: str) -> float:
    return sample(world.processor, "orchestrator_erased_records_dropped_total", source=source)


async def erased_customer() -> tuple[World, int]:
    """c1, logged in on v1 after an anonymous page, erased; returns the erasure's broker time."""
    world = World()
    await world.view("v1", 1, "/billing", "billing")
    await world.view("v1", 2, "/login", "account", customer="c1", kind="login")
    erased_at = world.ts + 1000
    await send_at(world, "contact-centre", "c1", erased_at, event_id="k-erase",
                  type="erasure_requested", ts=erased_at, customer_id="c1")
    return world, erased_at


async def test_an_older_contact_record_after_the_erasure_is_dropped_and_counted() -> None:
    world, erased_at = await erased_customer()
    changed = len(world.context.changed_ids)
    await send_at(world, "contact-centre", "c1", erased_at + 5000, event_id="k-late",
                  type="contact_started", ts=erased_at - MINUTE, customer_id="c1", channel="phone")
    marker = decode_profile(world.profiles["c1"])
    assert (marker.events_seen, marker.erased_ts) == (0, erased_at)
    assert dropped(world, "contact-centre") == 1
    assert len(world.context.changed_ids) == changed  # no context record for the erased person
    assert not [topic for topic, _, _ in world.emitter.sent if topic == "dead-letter"]


async def test_an_older_anonymous_record_of_an_erased_visitor_does_not_recreate_the_visitor() -> None:
    world, erased_at = await erased_customer()
    await send_at(world, "clickstream", "v1", erased_at + 5000, event_id="v1-old", type="page_view",
                  ts=erased_at - MINUTE, visitor_id="v1", session_id="s-v1",
                  page={"url": "/billing", "category": "billing"})
    assert decode_profile(world.profiles["v1"]).events_seen == 0
    assert dropped(world, "clickstream") == 1


async def test_an_older_login_of_an_erased_visitor_does_not_link_it_again() -> None:
    world, erased_at = await erased_customer()
    await send_at(world, "clickstream", "v1", erased_at + 5000, event_id="v1-old-login", type="login",
                  ts=erased_at - MINUTE, visitor_id="v1", customer_id="c1")
    assert world.identity == {}
    assert {events_seen(world, key) for key in ("c1", "v1")} == {0}
    assert dropped(world, "clickstream") == 1


def events_seen(world: World, key: str) -> int:
    return decode_profile(world.profiles[key]).events_seen


async def test_a_record_from_after_the_erasure_starts_the_person_afresh() -> None:
    world, erased_at = await erased_customer()
    await send_at(world, "contact-centre", "c1", erased_at + 5000, event_id="k-new",
                  type="contact_started", ts=erased_at + 4000, customer_id="c1", channel="chat")
    person = decode_profile(world.profiles["c1"])
    assert (person.events_seen, person.visitors, person.recent_pages) == (1, {}, [])
    assert person.erased_ts == erased_at  # still guards against older records
    assert world.context.changed_ids[-1] == "c1"


async def test_a_new_login_of_an_erased_visitor_carries_only_what_came_after() -> None:
    world, erased_at = await erased_customer()
    await send_at(world, "clickstream", "v1", erased_at + 2000, event_id="v1-new", type="page_view",
                  ts=erased_at + 2000, visitor_id="v1", session_id="s-new",
                  page={"url": "/moving", "category": "moving"})
    await send_at(world, "clickstream", "v1", erased_at + 3000, event_id="v1-new-login", type="login",
                  ts=erased_at + 3000, visitor_id="v1", session_id="s-new", customer_id="c2")
    customer = decode_profile(world.profiles["c2"])
    assert [p["url"] for p in customer.recent_pages] == ["/moving"]
    assert (customer.events_seen, customer.erased_ts) == (2, 0)
    assert decode_profile(world.profiles["v1"]).erased_ts == erased_at  # the visitor's marker stays


async def test_the_erasure_holds_after_a_restart_from_the_stored_tables() -> None:
    world, erased_at = await erased_customer()
    restarted = World()
    restarted.profiles.update(world.profiles)  # the tables as restored from their changelogs
    restarted.identity.update(world.identity)
    await send_at(restarted, "contact-centre", "c1", erased_at + 5000, event_id="k-late",
                  type="case_opened", ts=erased_at - MINUTE, customer_id="c1", channel="phone")
    assert decode_profile(restarted.profiles["c1"]).events_seen == 0
    assert dropped(restarted, "contact-centre") == 1


async def test_consent_dated_ahead_by_its_producer_does_not_override_a_later_withdrawal() -> None:
    world = World()
    sent_at = NOW - 10 * MINUTE
    await send_at(world, "clickstream", "v1", sent_at, event_id="c-yes", type="consent_updated",
                  ts=sent_at + 58 * MINUTE, visitor_id="v1",
                  consent={"service": True, "marketing": True})
    await send_at(world, "clickstream", "v1", sent_at + 1000, event_id="c-no", type="consent_updated",
                  ts=sent_at + 1000, visitor_id="v1", consent={"service": True, "marketing": False})
    assert not queries.consents_to(decode_profile(world.profiles["v1"]), "marketing")
