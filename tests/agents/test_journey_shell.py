"""Journeys in the worker's shell: state in the journeys table, timers fired from the partition's
tick once, journey sends arbitrated with the rules, erasure, the analytics and ``/journeys``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from orchestrator.core.actions import action_id_for
from orchestrator.core.envelopes import TICK
from orchestrator.core.events import DecodeLimits
from orchestrator.core.journeys import JourneyState, load_journey_set
from orchestrator.runtime import journeys as journeys_runtime
from orchestrator.runtime.app import build_app
from orchestrator.runtime.journeys import JourneyShell, decode_journey_state
from orchestrator.runtime.metrics import EngineMetrics
from orchestrator.runtime.partitioning import partition_of
from orchestrator.runtime.processing import JourneyProcessor
from orchestrator.runtime.settings import load_rules, load_settings
from tests.agents.conftest import RecordingEmitter, deliver, handled, now_ms

NOW = 1_800_000_000_000
PARTITIONS = 4
SECOND = 1000

#: A pricing page enters; a prompt; then up to 3 s for a checkout page (thanks), else a reminder.
FOLLOW_UP = """
version: "t-1"
journeys:
  - id: pricing-follow-up
    description: a pricing reader is prompted, and reminded unless they reach the checkout
    entry:
      event: [page_view]
      when: {field: event.page.category, eq: pricing}
    goal: {field: event.type, eq: purchase}
    max_entries: 1
    steps:
      - id: prompt
        send: {channel: web, action: pricing_prompt}
      - id: wait-for-checkout
        wait_for:
          event: [page_view]
          when: {field: event.page.category, eq: checkout}
          timeout_s: 3
          then: thanks
          on_timeout: reminder
      - id: reminder
        send: {channel: web, action: pricing_reminder}
        next: exit
      - id: thanks
        send: {channel: web, action: checkout_thanks, consent: marketing}
"""


def someone_on(partition: int, prefix: str = "w") -> str:
    """The first of ``<prefix>-0``, ``<prefix>-1``, … whose records go to ``partition``."""
    return next(f"{prefix}-{n}" for n in range(200) if partition_of(f"{prefix}-{n}", PARTITIONS) == partition)


class World:
    """A processor with journeys over plain dicts, a clock the test sets, and the broker's
    part played by the test (records handed in, the state written after each). Timers fire on
    the ticks the test hands in only, unless ``firings_per_record`` says otherwise."""

    def __init__(self, journeys: dict[str, bytes] | None = None,
                 profiles: dict[str, bytes] | None = None, firings_per_tick: int = 8,
                 firings_per_record: int = 0) -> None:
        settings = load_settings()
        rules = load_rules(settings.rules_dir)
        self.now = NOW
        self.emitter = RecordingEmitter()
        self.profiles = profiles if profiles is not None else {}
        self.journey_table = journeys if journeys is not None else {}
        metrics = EngineMetrics()
        self.shell = JourneyShell(
            load_journey_set({"journeys/follow-up.yaml": FOLLOW_UP}, rules.lookups),
            self.journey_table, PARTITIONS, metrics.registry, firings_per_tick=firings_per_tick,
            firings_per_record=firings_per_record)
        #: Partitions the shell asked for a follow-up tick, in order.
        self.follow_up_ticks: list[int] = []

        async def send_tick(partition: int) -> None:
            self.follow_up_ticks.append(partition)

        self.shell.send_tick = send_tick
        self.processor = JourneyProcessor(
            profiles=self.profiles, emitter=self.emitter, rule_set=rules,
            sources=settings.input_topics, dead_letter_topic="dead-letter",
            action_topic=settings.action_topic, limits=DecodeLimits(), metrics=metrics,
            clock_ms=lambda: self.now, journeys=self.shell)
        self.offset = 0
        self.hops_seen = 0

    async def view(self, person: str, event_id: str, category: str, ts: int,
                   url: str | None = None) -> None:
        await self.send("clickstream", person, event_id=event_id, type="page_view", ts=ts,
                        visitor_id=person, session_id=f"s-{person}",
                        page={"url": url or f"/{category}", "category": category})

    async def send(self, topic: str, key: str, **fields: Any) -> None:
        self.offset += 1
        await handled(self.processor, topic, partition_of(key, PARTITIONS), self.offset,
                      fields["ts"], key.encode(), orjson.dumps(fields))

    async def enter_pricing(self, partition: int, people: int, at: int, among: int = 200
                            ) -> list[str]:
        """``people`` visitors of ``partition`` (picked among ``v-0`` … ``v-<among>``) each
        view a pricing page at ``at``, entering the follow-up journey; their ids."""
        chosen = [f"v-{n}" for n in range(among) if partition_of(f"v-{n}", PARTITIONS) == partition]
        chosen = chosen[:people]
        for n, person in enumerate(chosen):
            await self.view(person, f"e{n}", "pricing", at)
        return chosen

    async def tick(self, person: str, at: int) -> None:
        """The tick of ``person``'s partition, handled when the wall clock shows ``at``."""
        self.now = at
        self.offset += 1
        await handled(self.processor, "person-events", partition_of(person, PARTITIONS),
                      self.offset, at, None, TICK)

    async def hand_on_hops(self) -> None:
        """Hand the records sent to the person-events topic back to the processor, as the
        broker would (a logged-in visitor's record reaching the customer's partition)."""
        hops = [(key, value) for topic, key, value in self.emitter.sent[self.hops_seen:]
                if topic == self.processor.person_events_topic]
        self.hops_seen = len(self.emitter.sent)
        for key, value in hops:
            self.offset += 1
            person = key.decode() if key is not None else ""
            await handled(self.processor, self.processor.person_events_topic,
                          partition_of(person, PARTITIONS), self.offset, value["kafka_ts"], key,
                          orjson.dumps(value))

    def actions(self) -> list[dict[str, Any]]:
        return [value for topic, _, value in self.emitter.sent if topic.startswith("actions.")]

    def state(self, person: str) -> Any:
        stored = self.journey_table.get(person)
        return None if stored is None else decode_journey_state(stored)

    def sample(self, name: str, **labels: str) -> float | None:
        return self.processor.metrics.registry.get_sample_value(name, labels)


async def test_an_entry_sends_the_first_step_with_the_step_id_as_action_id_and_keeps_a_small_state(
        ) -> None:
    world = World()
    await world.view("v-long-person-identifier-0001", "e1", "pricing", NOW - 10 * SECOND)
    [prompt] = world.actions()
    assert prompt["action"] == "pricing_prompt"
    assert prompt["rule"] == "journey.pricing-follow-up.prompt"
    assert prompt["journey"]["step"] == "prompt" and prompt["journey"]["entry"] == 1
    assert prompt["action_id"] == action_id_for(prompt["journey"]["step_id"], "web", "pricing_prompt")
    stored = world.journey_table["v-long-person-identifier-0001"]
    position = decode_journey_state(stored).active["pricing-follow-up"]
    assert position[1] == "wait-for-checkout" and position[4] == NOW - 7 * SECOND
    assert len(stored) + len("v-long-person-identifier-0001") <= 300


async def test_a_burst_of_due_timers_fires_a_bounded_slice_per_tick_and_queues_one_follow_up_tick(
        ) -> None:
    world = World(firings_per_tick=8)
    entered = NOW - 10 * SECOND
    people = await world.enter_pricing(0, 20, entered)
    due = entered + 3 * SECOND

    def reminded() -> int:
        return sum(a["action"] == "pricing_reminder" for a in world.actions())

    await world.tick(people[0], due + 100)
    assert reminded() == 8
    assert world.follow_up_ticks == [0]
    await world.tick(people[0], due + 110)  # the follow-up: 8 more, and still more are due
    assert reminded() == 16 and world.follow_up_ticks == [0, 0]
    await world.tick(people[0], due + 120)  # the follow-up: the last 4, nothing left to ask for
    assert reminded() == 20 and world.follow_up_ticks == [0, 0]
    assert {a["person_id"] for a in world.actions() if a["action"] == "pricing_reminder"} == set(people)


async def test_under_traffic_a_due_timer_fires_after_the_next_record_of_its_partition_without_a_tick(
        ) -> None:
    world = World(firings_per_record=2)
    [waiting] = await world.enter_pricing(0, 1, NOW)
    passer_by, other_partition = someone_on(0), someone_on(1, "x")
    world.now = NOW + 2 * SECOND
    await world.view(passer_by, "e2", "faq", world.now)  # before the due time: nothing fires
    world.now = NOW + 3 * SECOND + 40
    await world.view(other_partition, "e3", "faq", world.now)  # another partition's record
    assert [a["action"] for a in world.actions()] == ["pricing_prompt"]
    await world.view(passer_by, "e4", "faq", world.now)
    [_, reminder] = world.actions()
    assert (reminder["action"], reminder["person_id"]) == ("pricing_reminder", waiting)
    assert reminder["trigger_event_id"].startswith("timer:")
    assert world.follow_up_ticks == [] and not world.shell.needs_tick(0, world.now)
    await world.view(passer_by, "e5", "faq", world.now + 10)
    assert len(world.actions()) == 2  # fired once


async def test_a_record_fires_at_most_firings_per_record_people_and_the_next_records_the_rest(
        ) -> None:
    world = World(firings_per_record=2)
    people = await world.enter_pricing(0, 5, NOW)
    passer_by = someone_on(0)

    def reminded() -> list[str]:
        return [a["person_id"] for a in world.actions() if a["action"] == "pricing_reminder"]

    world.now = NOW + 3 * SECOND + 40
    await world.view(passer_by, "e1", "faq", world.now)
    assert len(reminded()) == 2
    await world.view(passer_by, "e2", "faq", world.now)
    assert len(reminded()) == 4
    await world.tick(passer_by, world.now)  # a quiet partition's tick fires what is left
    assert sorted(reminded()) == sorted(people)
    assert world.follow_up_ticks == []


async def test_records_fire_no_timer_while_a_tick_of_their_partition_is_on_its_way() -> None:
    world = World(firings_per_record=1)
    people = await world.enter_pricing(0, 3, NOW)
    passer_by = someone_on(0)

    def reminded() -> int:
        return sum(a["action"] == "pricing_reminder" for a in world.actions())

    world.now = NOW + 3 * SECOND + 40
    await world.shell.send_tick_to(0)  # a burst: the chain of ticks fires it, paced by them
    await world.view(passer_by, "e1", "faq", world.now)
    assert reminded() == 0
    await world.tick(passer_by, world.now)  # the tick fires its slice; nothing in flight now
    assert reminded() == len(people)


async def test_while_a_partition_catches_up_a_record_fires_only_timers_its_event_time_has_passed(
        ) -> None:
    world = World(firings_per_record=2)
    world.shell.caught_up = lambda partition: False  # a backlog: event time alone
    entered = NOW - 60 * SECOND
    [waiting] = await world.enter_pricing(3, 1, entered)
    passer_by = someone_on(3)
    await world.view(passer_by, "e1", "faq", entered + 2 * SECOND)
    assert [a["action"] for a in world.actions()] == ["pricing_prompt"]
    await world.view(passer_by, "e2", "faq", entered + 3 * SECOND)
    assert [a["person_id"] for a in world.actions() if a["action"] == "pricing_reminder"] == [waiting]


async def test_no_timer_fires_after_records_when_firings_per_record_is_zero() -> None:
    world = World(firings_per_record=0)
    await world.enter_pricing(0, 1, NOW)
    passer_by = someone_on(0)
    world.now = NOW + 3 * SECOND + 40
    await world.view(passer_by, "e1", "faq", world.now)
    assert [a["action"] for a in world.actions()] == ["pricing_prompt"]
    assert world.shell.needs_tick(0, world.now)  # the tick will fire it


async def test_a_partition_is_ticked_only_to_build_its_timers_or_when_one_is_due() -> None:
    world = World()
    entered = NOW - 10 * SECOND
    partition = partition_of("v-1", PARTITIONS)
    assert world.shell.needs_tick(partition, entered)  # assigned: its timer index is not built
    await world.view("v-1", "e1", "pricing", entered)  # waits 3 s
    assert not world.shell.needs_tick(partition, entered + 2 * SECOND)
    assert world.shell.needs_tick(partition, entered + 3 * SECOND)
    await world.tick("v-1", entered + 3 * SECOND)
    assert not world.shell.needs_tick(partition, entered + 4 * SECOND)  # fired: nothing waits


async def test_a_visitor_who_logs_in_during_a_wait_is_reminded_as_the_customer() -> None:
    world = World()
    entered = NOW - 10 * SECOND
    await world.view("v-9", "e1", "pricing", entered)  # the prompt; 3 s for a checkout page
    await world.send("clickstream", "v-9", event_id="e2", type="page_view", ts=entered + SECOND,
                     visitor_id="v-9", customer_id="c-9", session_id="s-v-9",
                     page={"url": "/account", "category": "account"})
    await world.hand_on_hops()  # the carry reaches the customer's partition
    assert world.state("v-9") is None
    customer = world.state("c-9")
    assert customer is not None
    position = customer.active["pricing-follow-up"]
    assert (position[1], position[4]) == ("wait-for-checkout", entered + 3 * SECOND)
    assert sum(counts.get("pricing-follow-up", 0)
               for counts in world.shell.analytics.active.values()) == 1
    await world.tick("c-9", entered + 3 * SECOND + 100)
    reminders = [a for a in world.actions() if a["action"] == "pricing_reminder"]
    assert [r["person_id"] for r in reminders] == ["c-9"]


async def test_a_follow_up_tick_is_not_asked_for_twice_before_one_is_handled() -> None:
    world = World(firings_per_tick=1)
    entered = NOW - 10 * SECOND
    people = await world.enter_pricing(1, 3, entered)
    await world.tick(people[0], entered + 3 * SECOND + 100)
    assert world.follow_up_ticks == [1]
    assert world.shell.ticks_in_flight(1) == 1
    await world.tick(people[0], entered + 3 * SECOND + 150)
    await world.tick(people[0], entered + 3 * SECOND + 200)
    assert world.follow_up_ticks == [1, 1]  # one per tick handled while more were due
    assert world.shell.ticks_in_flight(1) == 0


async def test_a_partition_has_one_chain_of_ticks_however_many_periodic_ticks_come_during_a_burst(
        ) -> None:
    world = World(firings_per_tick=1)
    entered = NOW - 10 * SECOND
    people = await world.enter_pricing(2, 6, entered, among=400)
    due = entered + 3 * SECOND
    world.now = due + 100
    assert world.shell.tick_wanted(2, world.now)
    await world.shell.send_tick_to(2)  # the periodic tick
    assert not world.shell.tick_wanted(2, world.now)  # ... is on its way: no second one
    await world.tick(people[0], due + 100)  # it arrives: one firing, a follow-up for the rest
    assert world.follow_up_ticks == [2, 2] and world.shell.ticks_in_flight(2) == 1
    assert not world.shell.tick_wanted(2, world.now)  # the periodic timer waits for the chain
    # A periodic tick sent before the follow-up was asked for arrives now: it fires, but the
    # chain has a tick on its way already, so it asks for none.
    await world.shell.send_tick_to(2)
    await world.tick(people[0], due + 110)
    assert world.follow_up_ticks == [2, 2, 2] and world.shell.ticks_in_flight(2) == 1
    for n in range(4):  # the chain goes on, one follow-up per tick handled
        await world.tick(people[0], due + 120 + n)
    reminded = {a["person_id"] for a in world.actions() if a["action"] == "pricing_reminder"}
    assert reminded == set(people)
    assert world.shell.ticks_in_flight(2) == 0 and not world.shell.tick_wanted(2, due + 200)


async def test_a_tick_that_never_comes_back_holds_its_partition_for_a_few_seconds_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    entered = NOW - 10 * SECOND
    partition = partition_of("v-1", PARTITIONS)
    await world.view("v-1", "e1", "pricing", entered)
    world.now = entered + 3 * SECOND + 100
    await world.shell.send_tick_to(partition)  # lost: its partition moved and came back
    assert not world.shell.tick_wanted(partition, world.now)
    later = time.monotonic() + journeys_runtime.TICK_LOST_AFTER_S + 0.1
    monkeypatch.setattr(journeys_runtime.time, "monotonic", lambda: later)
    assert world.shell.tick_wanted(partition, world.now)


async def test_a_revoked_partition_forgets_its_ticks_in_flight() -> None:
    world = World()
    await world.shell.send_tick_to(3)
    world.shell.discard({3})
    assert world.shell.ticks_in_flight(3) == 0


async def test_a_wait_that_times_out_fires_from_the_tick_once_however_often_it_ticks() -> None:
    world = World()
    entered = NOW - 10 * SECOND
    await world.view("v-1", "e1", "pricing", entered)
    await world.tick("v-1", entered + 2 * SECOND)  # before the due time: nothing
    assert [a["action"] for a in world.actions()] == ["pricing_prompt"]
    await world.tick("v-1", entered + 3 * SECOND + 200)
    await world.tick("v-1", entered + 4 * SECOND)
    reminder = world.actions()[-1]
    assert [a["action"] for a in world.actions()] == ["pricing_prompt", "pricing_reminder"]
    assert reminder["trigger_event_id"].startswith("timer:")
    assert reminder["trigger_ts"] == entered + 3 * SECOND  # the due time: lateness is measured from it
    assert world.state("v-1").active == {}
    assert world.sample("orchestrator_journey_exited_total", journey="pricing-follow-up",
                        reason="completed") == 1
    assert world.sample("orchestrator_journey_timer_lateness_seconds_count") == 1


async def test_the_awaited_event_ends_the_wait_and_its_timer_then_sends_nothing() -> None:
    world = World()
    entered = NOW - 10 * SECOND
    await world.view("v-2", "e1", "pricing", entered)
    await world.send("contact-centre", "v-2", event_id="k1", type="consent_updated",
                     ts=entered + 500, customer_id="v-2", consent={"service": True, "marketing": True})
    await world.view("v-2", "e2", "checkout", entered + SECOND)
    await world.tick("v-2", entered + 5 * SECOND)
    assert [a["action"] for a in world.actions()] == ["pricing_prompt", "checkout_thanks"]
    assert world.actions()[1]["trigger_event_id"] == "e2"
    assert world.sample("orchestrator_journey_steps_total", journey="pricing-follow-up",
                        step="thanks") == 1


async def test_a_journey_send_goes_through_consent_like_a_rule() -> None:
    world = World()
    entered = NOW - 10 * SECOND
    await world.view("v-3", "e1", "pricing", entered)
    await world.view("v-3", "e2", "checkout", entered + SECOND)  # no marketing consent
    assert [a["action"] for a in world.actions()] == ["pricing_prompt"]
    assert world.sample("orchestrator_decisions_suppressed_total", action="checkout_thanks",
                        cause="consent") == 1
    assert world.state("v-3").active == {}  # the journey went on: it ended after the send


async def test_a_timer_due_before_an_event_fires_first_on_that_event() -> None:
    world = World()
    entered = NOW - 60 * SECOND
    await world.view("v-4", "e1", "pricing", entered)
    # No tick came (a replay at full speed): the next event, after the due time, fires it first,
    # so the late checkout page no longer ends the wait.
    await world.view("v-4", "e2", "checkout", entered + 10 * SECOND)
    assert [a["action"] for a in world.actions()] == ["pricing_prompt", "pricing_reminder"]


async def test_a_redelivered_entry_sends_nothing_new_and_a_replayed_timer_the_same_action_id() -> None:
    world = World()
    entered = NOW - 10 * SECOND
    await world.view("v-5", "e1", "pricing", entered)
    await world.view("v-5", "e1", "pricing", entered)  # the same record again
    assert len(world.actions()) == 1
    # The reminder fired, then the worker died before writing: a restart from the tables as
    # they were fires it again with the same action id.
    journeys_before = dict(world.journey_table)
    profiles_before = dict(world.profiles)
    await world.tick("v-5", entered + 4 * SECOND)
    restarted = World(journeys=journeys_before, profiles=profiles_before)
    await restarted.tick("v-5", entered + 5 * SECOND)
    assert world.actions()[-1]["action_id"] == restarted.actions()[-1]["action_id"]
    assert restarted.actions()[-1]["action"] == "pricing_reminder"


async def test_timers_are_rebuilt_from_the_table_after_a_rebalance_and_fire_once() -> None:
    world = World()
    entered = NOW - 10 * SECOND
    await world.view("v-6", "e1", "pricing", entered)
    partition = partition_of("v-6", PARTITIONS)
    world.processor.discard({partition})  # revoked, then assigned again
    assert world.shell.timers.pending(partition) == 0
    await world.tick("v-6", entered + 4 * SECOND)
    await world.tick("v-6", entered + 5 * SECOND)
    assert [a["action"] for a in world.actions()] == ["pricing_prompt", "pricing_reminder"]


async def test_an_erasure_leaves_every_journey_and_deletes_the_journey_state() -> None:
    world = World()
    entered = NOW - 10 * SECOND
    await world.view("c-7", "e1", "pricing", entered)
    await world.send("contact-centre", "c-7", event_id="k-erase", type="erasure_requested",
                     ts=entered + SECOND, customer_id="c-7")
    await world.tick("c-7", entered + 5 * SECOND)
    assert "c-7" not in world.journey_table
    assert [a["action"] for a in world.actions()] == ["pricing_prompt"]
    assert world.sample("orchestrator_journey_exited_total", journey="pricing-follow-up",
                        reason="erased") == 1


async def test_quiet_partitions_wait_for_their_inputs_to_catch_up_before_the_clock_runs() -> None:
    world = World()
    entered = NOW - 10 * SECOND
    await world.view("v-8", "e1", "pricing", entered)
    world.shell.caught_up = lambda partition: False  # a backlog: event time alone
    await world.tick("v-8", entered + 5 * SECOND)
    assert len(world.actions()) == 1
    world.shell.caught_up = lambda partition: True
    await world.tick("v-8", entered + 5 * SECOND)
    assert len(world.actions()) == 2


async def test_the_journeys_page_has_the_shape_others_read() -> None:
    world = World()
    entered = NOW - 10 * SECOND
    await world.view("v-9", "e1", "pricing", entered)
    await world.view("v-10", "e2", "pricing", entered)
    await world.tick("v-9", entered + 4 * SECOND)
    owned = sorted({partition_of("v-9", PARTITIONS), partition_of("v-10", PARTITIONS)})
    page = world.shell.analytics.as_json(world.shell.journeys, owned, "http://w1:6066")
    assert set(page) == {"journeys", "partitions", "worker"}
    assert page["partitions"] == owned and page["worker"] == "http://w1:6066"
    [journey] = page["journeys"]
    assert set(journey) == {"id", "goal", "entered", "active", "converted", "exited", "steps"}
    assert journey["id"] == "pricing-follow-up"
    assert journey["goal"] == "event.type = purchase"
    assert (journey["entered"], journey["converted"]) == (2, 0)
    assert journey["active"] == 1  # v-10 still waits
    assert journey["exited"] == {"completed": 1}
    steps = {s["id"]: s for s in journey["steps"]}
    assert [s["id"] for s in journey["steps"]] == ["prompt", "wait-for-checkout", "reminder", "thanks"]
    assert all(set(s) == {"id", "kind", "reached", "mean_s_from_previous"} for s in journey["steps"])
    assert steps["wait-for-checkout"]["kind"] == "wait_for"
    assert steps["reminder"]["reached"] == 1
    assert steps["reminder"]["mean_s_from_previous"] == 3.0
    assert steps["thanks"]["mean_s_from_previous"] is None


def test_the_stored_state_of_one_journey_is_under_300_bytes_with_a_long_person_id() -> None:
    registry = CollectorRegistry()
    table: dict[str, bytes] = {}
    shell = JourneyShell(load_journey_set({"journeys/f.yaml": FOLLOW_UP}), table, PARTITIONS,
                         registry)
    person = "customer-" + "x" * 55  # 64 characters
    shell.store.put(person, JourneyState(
        active={"pricing-follow-up": [3, "wait-for-checkout", NOW, NOW + 1, NOW + 3001]},
        past={"pricing-follow-up": [3, NOW - 86_400_000]}), 0)
    shell.flush(0)
    assert len(person) + len(table[person]) <= 300, len(table[person])


async def test_the_journey_agent_runs_journeys_with_state_in_the_journeys_table(
        unique: str) -> None:
    settings = load_settings(store="memory", app_id=f"agents-{unique}", state_flush_records=1)
    rules = load_rules(settings.rules_dir)
    emitter = RecordingEmitter()
    engine = build_app(settings, rules, emitter=emitter, journeys=load_journey_set(
        {"journeys/follow-up.yaml": FOLLOW_UP}, rules.lookups))
    engine.app.finalize()
    engine.app.conf.store = "memory://"
    assert engine.journeys is not None
    engine.journeys.caught_up = lambda partition: True  # no consumer in the test context
    partition = partition_of("v-agent", settings.partitions)
    entered = now_ms() - 10 * SECOND
    view = orjson.dumps({"event_id": "a1", "type": "page_view", "ts": entered, "visitor_id": "v-agent",
                         "page": {"url": "/pricing", "category": "pricing"}})
    async with engine.agent.test_context() as agent:
        await deliver(agent, "clickstream", b"v-agent", view, offset=0, partition=partition)
        await deliver(agent, settings.person_events_topic, None, TICK, offset=0, partition=partition)
        for _ in range(500):
            if len(emitter.on("actions.web")) == 2 and not engine.processor.held_partitions():
                break
            await asyncio.sleep(0.01)
        stored = engine.journeys.store.table.get("v-agent")
    assert [a["action"] for a in emitter.on("actions.web")] == ["pricing_prompt", "pricing_reminder"]
    assert stored is not None and decode_journey_state(stored).active == {}
