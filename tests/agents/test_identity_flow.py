"""One person across devices and channels, through the processor, with Kafka's hop simulated.

Records the processor forwards to ``person-events`` are handed back to it (as the broker would
deliver them to the owner of the person's partition), so these tests follow a person's records
through identity resolution, the carry of anonymous history at login, re-keying after it, and
erasure — with dicts as tables. The same story on a real broker with two workers is in
tests/e2e/test_identity_context.py.
"""

from __future__ import annotations

from typing import Any

import orjson

from orchestrator.core.events import DecodeLimits
from orchestrator.core.profile import Profile, is_erasure_marker
from orchestrator.runtime.metrics import EngineMetrics
from orchestrator.runtime.processing import JourneyProcessor
from orchestrator.runtime.settings import load_rules, load_settings
from orchestrator.runtime.stores import decode_profile
from tests.agents.conftest import RecordingEmitter, handled

NOW = 1_800_000_000_000


class Recorder:
    """A context sink that remembers who changed and who was erased."""

    def __init__(self) -> None:
        self.changed_ids: list[str] = []
        self.erased_ids: list[str] = []

    def changed(self, profile: Profile, kafka_ts: int) -> None:
        self.changed_ids.append(profile.person_id)

    def erased(self, person_id: str, kafka_ts: int) -> None:
        self.erased_ids.append(person_id)


class World:
    def __init__(self) -> None:
        settings = load_settings()
        self.emitter = RecordingEmitter()
        self.profiles: dict[str, bytes] = {}
        self.identity: dict[str, bytes] = {}
        self.context = Recorder()
        self.processor = JourneyProcessor(
            profiles=self.profiles, identity=self.identity, emitter=self.emitter,
            rule_set=load_rules(settings.rules_dir), sources=settings.input_topics,
            dead_letter_topic="dead-letter", action_topic=settings.action_topic,
            limits=DecodeLimits(), metrics=EngineMetrics(), clock_ms=lambda: NOW,
            context=self.context)
        self.offset = 0
        self.ts = NOW - 3_600_000
        self._hopped = 0

    async def send(self, topic: str, key: str, **fields: Any) -> None:
        self.ts += 1000
        self.offset += 1
        await handled(self.processor, topic, 0, self.offset, self.ts, key.encode(),
                                    orjson.dumps({"ts": self.ts, **fields}))
        await self.deliver_hops()

    async def deliver_hops(self) -> None:
        """Hand forwarded records back to the processor, as the broker would."""
        while self._hopped < len(self.emitter.sent):
            topic, key, value = self.emitter.sent[self._hopped]
            self._hopped += 1
            if topic == "person-events":
                self.offset += 1
                await handled(self.processor, topic, 0, self.offset, self.ts, key, orjson.dumps(value))

    async def view(self, visitor: str, n: int, url: str, category: str, customer: str | None = None,
                   kind: str = "page_view") -> None:
        fields: dict[str, Any] = {"event_id": f"{visitor}-{n}", "type": kind, "visitor_id": visitor,
                                  "session_id": f"s-{visitor}", "page": {"url": url, "category": category}}
        if customer:
            fields["customer_id"] = customer
        await self.send("clickstream", visitor, **fields)

    def profile(self, person_id: str) -> Profile:
        return Profile.from_dict(orjson.loads(self.profiles[person_id]))

    def hops(self, kind: str) -> list[tuple[bytes | None, dict[str, Any]]]:
        return [(key, value) for topic, key, value in self.emitter.sent
                if topic == "person-events" and value["kind"] == kind]


async def test_login_carries_the_anonymous_history_into_the_customer_profile() -> None:
    world = World()
    await world.view("v1", 1, "/billing/faq", "billing")
    await world.view("v1", 2, "/billing/invoices", "invoices")
    await world.view("v1", 3, "/login", "account", customer="c1", kind="login")

    assert "v1" not in world.profiles
    customer = world.profile("c1")
    assert [p["url"] for p in customer.recent_pages] == ["/billing/faq", "/billing/invoices"]
    assert customer.events_seen == 3
    assert (customer.customer_id, customer.logged_in, customer.visitor_id) == ("c1", True, "v1")
    assert orjson.loads(world.identity["v1"])["customer_id"] == "c1"
    assert world.context.erased_ids == ["v1"]
    assert world.context.changed_ids[-1] == "c1"
    [(key, carry)] = world.hops("carry")
    assert key == b"c1" and carry["visitor_id"] == "v1"


async def test_after_login_the_visitors_records_go_to_the_customer_even_logged_out() -> None:
    world = World()
    await world.view("v1", 1, "/login", "account", customer="c1", kind="login")
    await world.view("v1", 2, "/logout", None, kind="logout")  # type: ignore[arg-type]
    await world.view("v1", 3, "/pricing", "pricing")
    assert set(world.profiles) == {"c1"}
    customer = world.profile("c1")
    assert customer.events_seen == 3
    assert customer.logged_in is False
    assert [key for key, _ in world.hops("event")] == [b"c1", b"c1"]


async def test_a_second_device_and_the_contact_centre_join_the_same_person() -> None:
    world = World()
    await world.view("v1", 1, "/billing", "billing")
    await world.view("v1", 2, "/login", "account", customer="c1", kind="login")
    await world.view("v2", 1, "/moving", "moving")
    await world.view("v2", 2, "/login", "account", customer="c1", kind="login")
    await world.send("contact-centre", "c1", event_id="k1", type="contact_started", customer_id="c1",
                     channel="phone", reason="billing", sentiment=-0.3)
    assert set(world.profiles) == {"c1"}
    customer = world.profile("c1")
    assert set(customer.visitors) == {"v1", "v2"}
    assert {p["url"] for p in customer.recent_pages} == {"/billing", "/moving"}
    assert customer.recent_contacts[0]["reason"] == "billing"
    assert customer.events_seen == 5
    assert sorted(customer.merged_from) == ["v1", "v2"]


async def test_a_shared_device_never_fuses_two_customers() -> None:
    world = World()
    await world.view("tablet", 1, "/home", "home")
    await world.view("tablet", 2, "/login", "account", customer="c1", kind="login")
    await world.view("tablet", 3, "/billing", "billing", customer="c1")
    await world.view("tablet", 4, "/logout", "account", kind="logout")
    await world.view("tablet", 5, "/login", "account", customer="c2", kind="login")
    await world.view("tablet", 6, "/moving", "moving", customer="c2")
    first, second = world.profile("c1"), world.profile("c2")
    assert {p["url"] for p in first.recent_pages} == {"/home", "/billing"}
    assert {p["url"] for p in second.recent_pages} == {"/moving"}
    assert first.merged_from == ["tablet"] and second.merged_from == []
    assert orjson.loads(world.identity["tablet"])["customer_id"] == "c2"
    assert orjson.loads(world.identity["tablet"])["customers"] == ["c1", "c2"]


async def test_a_redelivered_carry_is_merged_once() -> None:
    world = World()
    await world.view("v1", 1, "/billing", "billing")
    await world.view("v1", 2, "/login", "account", customer="c1", kind="login")
    [(key, carry)] = world.hops("carry")
    before = world.profiles["c1"]
    await world.processor.handle("person-events", 0, 99, NOW, key, orjson.dumps(carry))
    assert world.profiles["c1"] == before


async def test_feedback_keyed_by_a_linked_visitor_reaches_the_customer() -> None:
    world = World()
    for n in range(3):
        await world.view("v1", n, f"/billing/{n}", "billing")
    [prompt] = world.emitter.on("actions.web")
    await world.view("v1", 9, "/login", "account", customer="c1", kind="login")
    await world.send("action-feedback", "v1", action_id=prompt["action_id"], outcome="clicked")
    [action] = world.profile("c1").recent_actions
    assert (action["action_id"], action["outcome"]) == (prompt["action_id"], "clicked")


def erasure_markers(profiles: dict[str, bytes]) -> set[str]:
    """The ids stored profiles are kept under, when every one is a bare erasure marker."""
    stored = {key: decode_profile(value) for key, value in profiles.items()}
    assert all(is_erasure_marker(profile) for profile in stored.values()), stored
    return set(stored)


async def test_erasure_removes_profile_links_and_context_of_every_device() -> None:
    world = World()
    await world.view("v1", 1, "/login", "account", customer="c1", kind="login")
    await world.view("v2", 1, "/login", "account", customer="c1", kind="login")
    assert set(world.identity) == {"v1", "v2"}
    await world.send("contact-centre", "c1", event_id="k9", type="erasure_requested", customer_id="c1")
    assert erasure_markers(world.profiles) == {"c1", "v1", "v2"}  # nothing else is kept
    assert world.identity == {}
    assert {"c1", "v1", "v2"} <= set(world.context.erased_ids)
    assert sorted(key for key, _ in world.hops("unlink")) == [b"v1", b"v2"]


async def test_erasure_from_a_linked_visitor_erases_the_customer() -> None:
    world = World()
    await world.view("v1", 1, "/billing", "billing")
    await world.view("v1", 2, "/login", "account", customer="c1", kind="login")
    await world.send("clickstream", "v1", event_id="v1-x", type="erasure_requested", visitor_id="v1")
    assert erasure_markers(world.profiles) == {"c1", "v1"} and world.identity == {}
    assert "c1" in world.context.erased_ids
