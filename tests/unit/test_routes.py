"""Route mining: directly-follows graph, variants, sub-sequences with conversion, incremental."""

from __future__ import annotations

import gc
import textwrap
from typing import Any

import orjson
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.cli import cli
from orchestrator.core.journeys import JourneyRunner, load_journey_set
from orchestrator.core.routes import RouteMiner, mine_routes, route_condition
from orchestrator.simulate.traffic import TrafficPlan

from .factories import MINUTE, SECOND, T0, page_view


def page(visitor: str, category: str, ts: int, customer: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"event_id": f"{visitor}-{ts}", "type": "page_view", "ts": ts,
                              "visitor_id": visitor, "page": {"url": f"/{category}", "category": category}}
    if customer:
        record["customer_id"] = customer
    return record


def web(visitor: str, kind: str, ts: int, customer: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"event_id": f"{visitor}-{kind}-{ts}", "type": kind, "ts": ts,
                              "visitor_id": visitor}
    if customer:
        record["customer_id"] = customer
    return record


def shoppers() -> list[dict[str, Any]]:
    """6 people: 3 read products then pricing and buy (10 s, 20 s, 30 s apart), 2 read products
    then pricing and leave, 1 reads the blog."""
    records = []
    for n in range(3):
        t = T0 + n * 3600 * SECOND
        gap = (n + 1) * 10 * SECOND
        records += [page(f"b{n}", "products", t), page(f"b{n}", "products", t + SECOND),
                    page(f"b{n}", "pricing", t + gap), web(f"b{n}", "purchase", t + 2 * gap)]
    for n in range(2):
        t = T0 + n * 3600 * SECOND
        records += [page(f"l{n}", "products", t), page(f"l{n}", "pricing", t + 5 * SECOND)]
    records.append(page("r0", "blog", T0))
    return records


def test_routes_to_a_goal_have_edges_with_times_variants_and_patterns_with_conversion() -> None:
    found = mine_routes(shoppers(), top=5, min_cases=2)["purchase"]
    assert (found.cases, found.converted, found.conversion_rate) == (6, 3, 0.5)
    [variant] = found.variants
    assert variant.route == ("page:products", "page:pricing", "purchase")  # repeats are one
    assert (variant.count, variant.share, variant.median_s) == (3, 1.0, 40.0)
    edges = {(e.source, e.target): (e.count, e.mean_s, e.median_s) for e in found.edges}
    assert edges == {("page:products", "page:pricing"): (3, 20.0, 20.0),
                     ("page:pricing", "purchase"): (3, 20.0, 20.0)}
    [pattern] = found.patterns
    assert pattern.steps == ("page:products", "page:pricing")
    assert (pattern.cases, pattern.converted, pattern.conversion_rate, pattern.lift) == (5, 3, 0.6, 1.2)


@settings(max_examples=30, deadline=None)
@given(st.permutations(shoppers()))
def test_the_batch_does_not_depend_on_the_order_of_the_file(records: list[dict[str, Any]]) -> None:
    assert mine_routes(records, min_cases=2) == mine_routes(shoppers(), min_cases=2)


def test_the_anonymous_route_is_carried_to_the_login() -> None:
    records = [page("v1", "billing", T0), page("v1", "invoices", T0 + MINUTE),
               web("v1", "login", T0 + 2 * MINUTE, customer="c1"),
               {"event_id": "cc", "type": "contact_started", "ts": T0 + 3 * MINUTE,
                "customer_id": "c1", "channel": "chat"}]
    found = mine_routes(records, min_cases=1)
    assert found["login"].variants[0].route == ("page:billing", "page:invoices", "login")
    assert found["contact"].variants[0].route == (
        "page:billing", "page:invoices", "login", "contact_started:chat")


def test_a_pause_longer_than_the_gap_starts_a_new_case() -> None:
    records = [page("v1", "products", T0), page("v1", "pricing", T0 + 31 * MINUTE),
               web("v1", "purchase", T0 + 32 * MINUTE)]
    found = mine_routes(records, min_cases=1)["purchase"]
    assert found.cases == 2 and found.variants[0].route == ("page:pricing", "purchase")
    assert mine_routes(records, gap_ms=3600 * SECOND)["purchase"].variants[0].route == (
        "page:products", "page:pricing", "purchase")


def test_an_erased_person_is_forgotten() -> None:
    miner = RouteMiner()
    miner.add(page("v1", "billing", T0))
    miner.add({"event_id": "x", "type": "erasure_requested", "ts": T0 + 1, "visitor_id": "v1"})
    assert miner.cases() == []


def test_records_that_are_no_activity_are_counted_not_mined() -> None:
    miner = RouteMiner()
    for record in ({"type": "page_view"}, {"type": "page_view", "ts": "soon", "visitor_id": "v"},
                   {"action_id": "a", "outcome": "shown", "ts": T0}):
        miner.add(record)
    assert miner.skipped == 3 and miner.cases() == []


def test_the_sliding_window_keeps_its_memory_bounded_and_its_counts_recent() -> None:
    miner = RouteMiner(max_open=50, max_closed=200, window_ms=3600 * SECOND)
    for n in range(5000):
        ts = T0 + n * SECOND
        miner.add(page(f"v{n}", "products", ts))
        miner.add(web(f"v{n}", "add_to_cart", ts))
        assert len(miner.open) <= 50 and len(miner.closed) <= 200
    miner.add(page("late", "products", T0 + 5000 * SECOND + 2 * 3600 * SECOND))
    assert len(miner.closed) <= 50  # the window moved on
    routes = miner.routes(min_cases=1)["purchase"]
    assert routes.converted == 0


def test_the_window_adds_nothing_to_the_garbage_collectors_work() -> None:
    # A worker's window holds up to hundreds of thousands of cases; as tracked objects they
    # made every full collection of the worker pause for ~100 ms (docs/hot-path.md).
    miner = RouteMiner(max_open=100, max_closed=1000)
    for n in range(300):
        miner.add(page(f"v{n}", "products", T0 + n * SECOND))
        miner.add(web(f"v{n}", "add_to_cart", T0 + n * SECOND))
    miner.add(page("later", "products", T0 + 3600 * SECOND))
    gc.collect()  # the collector stops tracking a tuple of untracked things when it sees one:
    gc.collect()  # first the labels and times, then the case that holds them
    assert miner.closed and miner.open
    assert not any(gc.is_tracked(case) for case in [*miner.closed, *miner.open.values()])


def test_the_incremental_miner_gives_the_batchs_answer_on_ordered_input() -> None:
    records = sorted(shoppers(), key=lambda r: r["ts"])
    miner = RouteMiner(window_ms=None, max_closed=None)
    for record in records:
        miner.add(record)
    assert miner.routes(min_cases=2) == mine_routes(records, min_cases=2)


# ------------------------------------------------------------------ the simulator's routes

def simulated(records: int = 3000, seed: int = 7) -> list[dict[str, Any]]:
    """``orchestrator simulate``'s traffic, stamped as its runner stamps it (20 records/s)."""
    plan, now, out = TrafficPlan(seed=seed), 0.0, []
    for _ in range(records):
        _, step = plan.next_step(now)
        out.append({**step.value, "ts": T0 + int(now * 1000)})
        now += 0.05
    return out


def test_routes_of_simulated_traffic_are_the_simulators_built_in_routes() -> None:
    found = mine_routes(simulated(), top=3)
    # heading_for_cancellation: log in, contract, cancellation, offers, call, cancel.
    assert found["cancellation"].variants[0].route == (
        "login", "page:contract", "page:cancellation", "page:offers", "contact_started:phone",
        "cancellation_requested:phone")
    assert found["cancellation"].variants[0].share == 1.0
    # caller_then_web: a billing call, then the website, then a login.
    assert found["login"].variants[0].route == (
        "contact_started:phone", "case_opened:phone", "contact_ended:phone", "page:home", "login")
    # prospects sign up after putting a plan in the cart.
    purchase = found["purchase"]
    assert all(v.route[-2:] == ("add_to_cart", "signup") for v in purchase.variants)
    assert purchase.patterns[0].steps == ("page:products", "add_to_cart")
    assert purchase.patterns[0].lift > 5


def test_the_routes_command_reads_a_simulated_file_and_says_which_lines_it_skipped(tmp_path: Any) -> None:
    file = tmp_path / "records.jsonl"
    lines = [orjson.dumps({"topic": "clickstream", "key": r.get("visitor_id"), "value": r})
             for r in simulated(1500)]
    file.write_bytes(b"\n".join([*lines, b"{not json", b"[1]"]) + b"\n")
    result = CliRunner().invoke(cli, ["routes", "--file", str(file), "--goal", "cancellation",
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert "2 of 1502 lines are not JSON records, skipped (lines 1501, 1502)" in result.stderr
    data = orjson.loads(result.stdout)
    assert list(data) == ["cancellation"]
    assert data["cancellation"]["variants"][0]["route"][-1] == "cancellation_requested:phone"
    assert data["cancellation"]["patterns"][0]["condition"]["all"][0] == {
        "field": "event.type", "eq": data["cancellation"]["patterns"][0]["steps"][-1].split(":")[0]}
    text = CliRunner().invoke(cli, ["routes", "--file", str(file), "--top", "2"])
    assert text.exit_code == 0 and "== purchase:" in text.stdout and "as a journey entry" in text.stdout


# ------------------------------------------------------------------ a route as an entry condition

def test_a_mined_route_becomes_a_journey_entry_condition_that_holds_on_the_route() -> None:
    pattern = mine_routes(shoppers(), min_cases=2)["purchase"].patterns[0]
    condition = route_condition(pattern.steps)
    document = textwrap.dedent("""
        journeys:
          - id: mined
            description: people on the high-conversion route get the offer
            entry: {when: CONDITION}
            steps:
              - {id: offer, send: {channel: web, action: next_content, payload: {url: /offers}}}
        """).replace("CONDITION", orjson.dumps(condition).decode())
    runner = JourneyRunner(load_journey_set({"journeys/mined.yaml": document}))
    runner.feed("v1", page_view("a", "/products", "products", T0))
    runner.feed("v2", page_view("b", "/pricing", "pricing", T0))
    assert runner.actions == []
    runner.feed("v1", page_view("c", "/pricing", "pricing", T0 + 10 * SECOND))
    assert [a["person_id"] for a in runner.actions] == ["v1"]
