"""The journey state machine: event-time timers, once per step id, waits, re-entry, holdout."""

from __future__ import annotations

import textwrap
from collections import Counter
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.journeys import (
    JourneyRunner,
    JourneySet,
    JourneyState,
    fire_due,
    hand_over,
    load_journey_set,
    on_event,
    step_id,
    take_over,
)
from orchestrator.core.profile import Profile, apply_event
from orchestrator.core.rules.arbitration import in_holdout

from .factories import MINUTE, SECOND, T0, click, contact, page_view

WAIT_FOR_LOGIN = """
journeys:
  - id: prompt-then-wait
    description: prompt on a billing page, wait 20 minutes for a login, else remind
    entry: {event: [page_view], when: {field: event.page.category, eq: billing}}
    goal: {field: event.type, eq: purchase}
    reentry_after_s: 3600
    max_entries: 2
    steps:
      - {id: prompt, send: {channel: web, action: login_prompt}}
      - id: wait-login
        wait_for: {event: [login], timeout_s: 1200, then: thanks, on_timeout: pause}
      - {id: pause, wait_s: 600}
      - {id: remind, send: {channel: web, action: login_reminder}, next: exit}
      - {id: thanks, send: {channel: web, action: welcome_back}}
"""


def journeys(text: str = WAIT_FOR_LOGIN, **lookups: Any) -> JourneySet:
    return load_journey_set({"journeys/test.yaml": textwrap.dedent(text)}, lookups)


def billing(n: int, ts: int, visitor: str = "v1") -> Any:
    return page_view(f"p{n}", "/billing", "billing", ts, visitor_id=visitor)


def login(n: int, ts: int, visitor: str = "v1") -> Any:
    return click(f"l{n}", "login", ts, visitor, customer_id="c1")


def reached(runner: JourneyRunner) -> list[tuple[str, int, str | None, int, str | None]]:
    return [(f.journey, f.entry, f.step, f.ts, f.path) for f in runner.facts if f.kind == "reached"]


def test_entering_sends_and_sets_a_timer_due_in_event_time() -> None:
    profile = Profile(person_id="v1")
    event = billing(1, T0)
    apply_event(profile, event)
    outcome = on_event(journeys(), None, "v1", event, profile)
    [request] = outcome.requests
    assert (request.step, request.rule.action, request.ts) == ("prompt", "login_prompt", T0)
    [timer] = outcome.timers
    assert (timer.step, timer.due_ts, timer.entry) == ("wait-login", T0 + 20 * MINUTE, 1)
    assert timer.step_id == step_id("v1", "prompt-then-wait", 1, "wait-login")
    assert [f.kind for f in outcome.facts] == ["entered", "reached", "reached"]
    assert outcome.state is not None and outcome.state.next_due() == T0 + 20 * MINUTE


def test_a_login_before_the_timeout_takes_the_event_path_and_cancels_the_timer() -> None:
    runner = JourneyRunner(journeys())
    runner.feed("v1", billing(1, T0))
    runner.feed("v1", login(1, T0 + 5 * MINUTE))
    assert [(s, p) for _, _, s, _, p in reached(runner)] == [
        ("prompt", None), ("wait-login", None), ("thanks", "event")]
    assert [a["action"] for a in runner.actions] == ["login_prompt", "welcome_back"]
    runner.advance(T0 + 60 * MINUTE)  # the cancelled timer's time passes: nothing happens
    assert len(reached(runner)) == 3


def test_without_a_login_the_timeout_fires_at_its_due_time_whenever_it_is_run() -> None:
    runner = JourneyRunner(journeys())
    runner.feed("v1", billing(1, T0))
    runner.advance(T0 + 40 * MINUTE)  # the shell runs late: steps still carry the due times
    assert [(s, ts - T0, p) for _, _, s, ts, p in reached(runner)] == [
        ("prompt", 0, None), ("wait-login", 0, None), ("pause", 20 * MINUTE, "timeout"),
        ("remind", 30 * MINUTE, None)]
    reminder = runner.actions[-1]
    assert reminder["action"] == "login_reminder"
    assert reminder["trigger_event_id"] == "timer:" + step_id("v1", "prompt-then-wait", 1, "pause")
    assert reminder["journey"] == {"id": "prompt-then-wait", "step": "remind", "entry": 1,
                                   "step_id": step_id("v1", "prompt-then-wait", 1, "remind")}
    assert [f.reason for f in runner.facts if f.kind == "exited"] == ["completed"]


def test_a_login_at_the_due_time_is_too_late() -> None:
    runner = JourneyRunner(journeys())
    runner.feed("v1", billing(1, T0))
    runner.feed("v1", login(1, T0 + 20 * MINUTE))
    paths = [p for *_, p in reached(runner) if p]
    assert paths == ["timeout"]


def test_a_timer_fired_twice_or_after_its_step_was_left_changes_nothing() -> None:
    js = journeys()
    profile = Profile(person_id="v1")
    event = billing(1, T0)
    apply_event(profile, event)
    state = on_event(js, None, "v1", event, profile).state
    first = fire_due(js, state, "v1", profile, T0 + 20 * MINUTE)
    again = fire_due(js, first.state, "v1", profile, T0 + 20 * MINUTE)
    assert len(first.fired) == 1 and first.facts
    assert (again.fired, again.facts, again.requests, again.timers) == ([], [], [], [])


def _waiting_for_login(person: str = "v1") -> JourneyState:
    profile = Profile(person_id=person)
    event = billing(1, T0, visitor=person)
    apply_event(profile, event)
    outcome = on_event(journeys(), None, person, event, profile)
    assert outcome.state is not None
    return outcome.state


def test_a_visitor_hands_over_their_journeys_as_they_are_at_login() -> None:
    state = _waiting_for_login()
    out = hand_over(state, T0 + MINUTE)
    assert out.state == state
    assert [(f.kind, f.journey, f.step) for f in out.facts] == [
        ("handed_over", "prompt-then-wait", "wait-login")]
    assert hand_over(JourneyState(), T0).state is None


def test_the_customer_goes_on_where_the_visitor_was_under_their_next_entry_and_own_step_ids() -> None:
    carried = _waiting_for_login()
    mine = JourneyState(past={"prompt-then-wait": [1, T0 - 10 * MINUTE]})  # once, long done
    out = take_over(journeys(), mine, "c1", carried, T0 + MINUTE)
    assert out.state is not None
    position = out.state.active["prompt-then-wait"]
    assert position[1:] == carried.active["prompt-then-wait"][1:]  # step, times, due as they were
    assert position[0] == 2  # the customer's second entry
    assert out.state.past["prompt-then-wait"] == [2, T0 - 10 * MINUTE]
    [timer] = out.timers
    assert (timer.person_id, timer.due_ts, timer.step_id) == (
        "c1", T0 + 20 * MINUTE, step_id("c1", "prompt-then-wait", 2, "wait-login"))
    assert [(f.kind, f.entry) for f in out.facts] == [("taken_over", 2)]


def test_a_journey_the_customer_is_in_already_keeps_theirs_and_the_visitors_ends_merged() -> None:
    carried = _waiting_for_login()
    mine = _waiting_for_login("c1")
    out = take_over(journeys(), mine, "c1", carried, T0 + MINUTE)
    assert out.state is not None
    assert out.state.active == mine.active and not out.timers
    assert out.state.past["prompt-then-wait"][0] == 2  # both entries count for re-entry
    assert [(f.kind, f.reason) for f in out.facts] == [("exited", "merged")]


def test_after_the_take_over_the_login_ends_the_wait_on_the_customers_side() -> None:
    customer = Profile(person_id="c1")
    state = take_over(journeys(), None, "c1", _waiting_for_login(), T0 + 5 * MINUTE).state
    event = login(1, T0 + 5 * MINUTE)
    apply_event(customer, event)
    out = on_event(journeys(), state, "c1", event, customer)
    assert [r.rule.action for r in out.requests] == ["welcome_back"]
    assert out.cancelled == [step_id("c1", "prompt-then-wait", 1, "wait-login")]


def test_the_goal_converts_and_ends_the_journey_with_its_timer() -> None:
    runner = JourneyRunner(journeys())
    runner.feed("v1", billing(1, T0))
    runner.feed("v1", click("b1", "purchase", T0 + MINUTE))
    kinds = [(f.kind, f.reason) for f in runner.facts if f.kind in ("converted", "exited")]
    assert kinds == [("converted", None), ("exited", "converted")]
    assert runner.states["v1"].active == {}


def test_reentry_waits_for_its_time_and_max_entries_holds() -> None:
    runner = JourneyRunner(journeys())
    for n in range(12):  # a billing page every 20 minutes for 4 hours
        runner.feed("v1", billing(n, T0 + n * 20 * MINUTE))
        runner.advance(T0 + n * 20 * MINUTE)
    entered = [f.ts for f in runner.facts if f.kind == "entered"]
    exits = [f.ts for f in runner.facts if f.kind == "exited"]
    assert len(entered) == 2  # max_entries: 2
    assert entered[1] - exits[0] >= 3600 * SECOND  # reentry_after_s: 3600


def test_an_erased_person_leaves_every_journey() -> None:
    js = journeys()
    profile = Profile(person_id="c1")
    event = billing(1, T0)
    apply_event(profile, event)
    state = on_event(js, None, "c1", event, profile).state
    erase = contact("x", "erasure_requested", T0 + MINUTE)
    outcome = on_event(js, state, "c1", erase, profile)
    assert outcome.state is None
    assert [(f.kind, f.reason) for f in outcome.facts] == [("exited", "erased")]
    assert outcome.cancelled == [step_id("c1", "prompt-then-wait", 1, "wait-login")]


def test_an_event_from_before_the_current_step_is_ignored() -> None:
    runner = JourneyRunner(journeys())
    runner.feed("v1", billing(1, T0))
    runner.feed("v1", login(1, T0 - MINUTE))  # late: from before the journey began
    assert [p for *_, p in reached(runner) if p] == []


def test_a_journey_removed_by_a_reload_is_left_on_the_next_event() -> None:
    profile = Profile(person_id="v1")
    event = billing(1, T0)
    apply_event(profile, event)
    state = on_event(journeys(), None, "v1", event, profile).state
    other = journeys(WAIT_FOR_LOGIN.replace("prompt-then-wait", "another"))
    later = page_view("p2", "/home", "home", T0 + MINUTE)
    apply_event(profile, later)
    outcome = on_event(other, state, "v1", later, profile)
    assert [(f.journey, f.reason) for f in outcome.facts] == [("prompt-then-wait", "journey_removed")]


def test_the_state_round_trips_and_stays_small() -> None:
    runner = JourneyRunner(journeys())
    person = "v-6b0d6f03675a-a-long-visitor-id"
    runner.feed(person, billing(1, T0, person))
    state = runner.states[person]
    data = orjson.dumps(state.to_dict())
    assert JourneyState.from_dict(orjson.loads(data)) == state
    assert len(data) <= 300, data


# ------------------------------------------------------------------ holdout

SPLIT = """
journeys:
  - id: split-test
    description: 30 % holdout
    entry: {event: [page_view]}
    max_entries: 5
    steps:
      - {id: split, split: {holdout_percent: 30}}
      - {id: send, send: {channel: web, action: offer}}
"""


def test_the_holdout_is_a_stable_share_of_people() -> None:
    js = journeys(SPLIT)
    held = 0
    for n in range(2000):
        person = f"v-{n}"
        profile = Profile(person_id=person)
        event = page_view(f"e{n}", "/", "home", T0, visitor_id=person)
        apply_event(profile, event)
        outcome = on_event(js, None, person, event, profile)
        holdout = [f.reason for f in outcome.facts if f.kind == "exited"] == ["holdout"]
        assert holdout == in_holdout(person, "split-test", 30)
        assert holdout == (not outcome.requests)
        if not holdout:
            assert [f.path for f in outcome.facts if f.kind == "reached" and f.step == "send"] == [
                "treatment"]
        held += holdout
    assert 0.27 < held / 2000 < 0.33


@given(st.text(min_size=1, max_size=20), st.integers(min_value=2, max_value=5))
def test_a_person_stays_in_their_group_on_every_entry(person: str, entries: int) -> None:
    runner = JourneyRunner(journeys(SPLIT))
    for n in range(entries):
        runner.feed(person, page_view(f"e{n}", "/", "home", T0 + n * MINUTE, visitor_id="v1"))
    groups = {f.reason for f in runner.facts if f.kind == "exited"}
    assert len(groups) == 1


# ------------------------------------------------------------------ any order and timing

@st.composite
def schedules(draw: Any) -> tuple[list[Any], list[int]]:
    """Events of one person (billing pages, logins, purchases) a few minutes apart, and moments
    at which the shell's timer wheel happens to run."""
    events, ts = [], T0
    for n in range(draw(st.integers(min_value=1, max_value=14))):
        ts += draw(st.integers(min_value=0, max_value=40)) * MINUTE
        kind = draw(st.sampled_from(["billing", "billing", "login", "home", "purchase"]))
        if kind == "billing":
            events.append(billing(n, ts))
        elif kind == "login":
            events.append(login(n, ts))
        elif kind == "home":
            events.append(page_view(f"h{n}", "/", "home", ts))
        else:
            events.append(click(f"b{n}", "purchase", ts))
    ticks = draw(st.lists(st.integers(min_value=0, max_value=ts - T0 + 60 * MINUTE), max_size=10))
    return events, sorted(T0 + t for t in ticks)


def run(events: list[Any], ticks: list[int], duplicate_ticks: bool = False) -> JourneyRunner:
    runner = JourneyRunner(journeys())
    pending = list(ticks)
    for event in events:
        while pending and pending[0] <= event.ts:
            tick = pending.pop(0)
            runner.advance(tick)
            if duplicate_ticks:
                runner.advance(tick)
        runner.feed("v1", event)
    for tick in pending:
        runner.advance(tick)
    return runner


@settings(max_examples=150, deadline=None)
@given(schedules())
def test_when_timers_fire_does_not_change_the_steps(schedule: tuple[list[Any], list[int]]) -> None:
    events, ticks = schedule
    end = max([e.ts for e in events] + ticks)
    live = run(events, [*ticks, end], duplicate_ticks=True)  # timers fired as the clock passes
    replay = run(events, [end])  # full speed: timers fire when the next event comes
    assert reached(live) == reached(replay)
    assert [a["action_id"] for a in live.actions] == [a["action_id"] for a in replay.actions]


@settings(max_examples=150, deadline=None)
@given(schedules(), st.randoms(use_true_random=False))
def test_each_step_id_fires_at_most_once_and_a_wait_ends_one_way(
        schedule: tuple[list[Any], list[int]], rnd: Any) -> None:
    events, ticks = schedule
    shuffled = list(events)
    rnd.shuffle(shuffled)  # any arrival order, duplicates included
    shuffled += rnd.sample(events, k=min(3, len(events)))
    runner = run(shuffled, [*ticks, max(e.ts for e in events) + 3600 * SECOND], duplicate_ticks=True)
    steps = Counter((j, entry, step) for j, entry, step, _, _ in reached(runner))
    assert all(n == 1 for n in steps.values())
    actions = Counter(a["action_id"] for a in runner.actions)
    assert all(n == 1 for n in actions.values())
    ends: Counter[tuple[str, int]] = Counter()
    for f in runner.facts:
        if (f.kind == "reached" and f.path in ("event", "timeout")) \
                or (f.kind == "exited" and f.reason == "timed_out"):
            ends[(f.journey, f.entry)] += 1
    converted_waiting = {(f.journey, f.entry) for f in runner.facts
                         if f.kind == "exited" and f.step == "wait-login" and f.reason == "converted"}
    waited = {(j, entry) for j, entry, step, _, _ in reached(runner) if step == "wait-login"}
    # The last tick is past every timeout: each wait ended, by exactly one of its event or its
    # timeout, unless the goal ended the journey while it waited.
    assert {k for k, n in ends.items() if n == 1} == waited - converted_waiting
    assert all(n == 1 for n in ends.values())


@settings(max_examples=100, deadline=None)
@given(schedules())
def test_entries_respect_max_entries_and_the_reentry_time(schedule: tuple[list[Any], list[int]]) -> None:
    events, ticks = schedule
    runner = run(events, ticks)
    entered = [f.ts for f in runner.facts if f.kind == "entered"]
    exited = [f.ts for f in runner.facts if f.kind == "exited"]
    assert len(entered) <= 2
    for n in range(1, len(entered)):
        assert entered[n] - exited[n - 1] >= 3600 * SECOND
