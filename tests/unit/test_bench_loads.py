"""The load shapes of benchmarks/event_to_action.py (benchmarks/loads.py)."""

from __future__ import annotations

import itertools
import random
import warnings
from collections import Counter, defaultdict

import orjson
import pytest

from benchmarks.loads import (
    LOADS,
    LOGGED_IN_CATEGORIES,
    PAGES_PER_VISITOR,
    SELF_SERVICE_CATEGORIES,
    SERVICE_PAGES,
    LoadRecord,
    logged_in,
    make_load,
    new_visitors,
    personas,
    pool_size,
)
from orchestrator.core.events import Accepted, Source, decode_record
from orchestrator.core.journey import Trigger, process_event

from .factories import SECOND, T0, default_rules


def take(records: object, n: int) -> list[LoadRecord]:
    return list(itertools.islice(records, n))  # type: ignore[call-overload]


def by_key(records: list[LoadRecord]) -> dict[str, list[LoadRecord]]:
    grouped: dict[str, list[LoadRecord]] = defaultdict(list)
    for record in records:
        grouped[record.key].append(record)
    return grouped


def finished(records: list[LoadRecord], pages: int) -> dict[str, list[LoadRecord]]:
    """The readers whose last page is among ``records`` (those still reading are cut off)."""
    return {k: rs for k, rs in by_key(records).items() if len(rs) == pages}


def test_pool_size_is_a_quarter_of_the_rate_between_75_and_500() -> None:
    assert [pool_size(r) for r in (100, 250, 1000, 2000, 4000, 8000)] == [75, 75, 250, 500, 500, 500]


@pytest.mark.parametrize("seed", range(5))
def test_every_new_visitor_reads_exactly_four_self_service_pages_and_only_the_third_triggers(
        seed: int) -> None:
    records = take(new_visitors(random.Random(seed), pool=80), 4000)
    grouped = by_key(records)
    assert all(len(rs) <= PAGES_PER_VISITOR for rs in grouped.values())
    done = finished(records, PAGES_PER_VISITOR)
    assert len(done) > 500
    for visitor, rs in done.items():
        assert [r.is_trigger for r in rs] == [False, False, True, False]
        assert len({r.value["session_id"] for r in rs}) == 1
        for n, r in enumerate(rs, start=1):
            assert r.source == "clickstream"
            assert r.value["visitor_id"] == visitor
            assert r.value["type"] == "page_view"
            assert "customer_id" not in r.value and "ts" not in r.value
            assert r.value["event_id"] == f"{visitor}-{n}"
            category = r.value["page"]["category"]
            assert category in SELF_SERVICE_CATEGORIES
            assert r.value["page"]["url"].startswith(f"/{category}/")
    # Triggers are exactly the third pages: a quarter of the records, give or take the cut-off.
    assert abs(sum(r.is_trigger for r in records) - len(records) / 4) < 80


def test_the_pool_of_active_visitors_holds_and_their_pages_interleave() -> None:
    pool = 120
    records = take(new_visitors(random.Random(1), pool=pool), 6000)
    reading: set[str] = set()
    seen_new = 0
    counts: Counter[str] = Counter()
    for record in records:
        if record.key not in reading:
            reading.add(record.key)
            seen_new += 1
        counts[record.key] += 1
        if counts[record.key] == PAGES_PER_VISITOR:
            reading.discard(record.key)
        assert len(reading) <= pool
    # About one new visitor per four records, and never one visitor's pages all in a row.
    assert abs(seen_new - len(records) / PAGES_PER_VISITOR) < pool
    runs = sum(1 for a, b in itertools.pairwise(records) if a.key == b.key)
    assert runs < len(records) * 0.05
    # Every visitor of the stream is new: nobody comes back after their four pages.
    assert len(by_key(records)) == seen_new


def test_visitor_ids_and_event_ids_are_unique_and_the_stream_is_seeded() -> None:
    a = take(new_visitors(random.Random(3), pool=75), 3000)
    b = take(new_visitors(random.Random(3), pool=75), 3000)
    c = take(new_visitors(random.Random(4), pool=75), 3000)
    assert a == b
    assert a != c
    assert len({r.value["event_id"] for r in a}) == len(a)
    assert not {r.key for r in a} & {r.key for r in c}


def test_logged_in_pages_carry_the_customer_and_distinct_categories_none_a_service_page() -> None:
    records = take(logged_in(random.Random(2), pool=90, id_tag="07"), 5000)
    assert all(r.is_trigger for r in records)
    done = finished(records, len(LOGGED_IN_CATEGORIES))
    assert len(done) > 500
    customers = set()
    for visitor, rs in done.items():
        customer = rs[0].value["customer_id"]
        assert customer.startswith("c-07")
        customers.add(customer)
        assert all(r.value["customer_id"] == customer and r.value["visitor_id"] == visitor
                   for r in rs)
        assert visitor != customer  # keyed by the visitor: the engine re-keys to the customer
        assert len({r.value["session_id"] for r in rs}) == 1
        categories = [r.value["page"]["category"] for r in rs]
        assert sorted(categories) == sorted(LOGGED_IN_CATEGORIES)
        assert all(r.value["page"]["url"] != SERVICE_PAGES[r.value["page"]["category"]] for r in rs)
    assert len(customers) == len(done)


@pytest.mark.parametrize("load", LOADS)
def test_every_record_is_accepted_by_the_engines_decoder(load: str) -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 0.01
        return now[0]

    for n, record in enumerate(take(make_load(load, random.Random(5), 1000, id_tag="1",
                                              clock=clock), 2000)):
        ts = T0 + n
        decoded = decode_record(Source(record.source), record.key.encode(),
                                orjson.dumps(dict(record.value, ts=ts)), now_ms=ts)
        assert isinstance(decoded, Accepted), (record, decoded)


def test_personas_mark_every_record_a_trigger_and_use_both_inputs() -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 0.05
        return now[0]

    records = take(personas(random.Random(6), clock), 3000)
    assert all(r.is_trigger for r in records)
    assert {r.source for r in records} == {"clickstream", "contact-centre"}


def answers(records: list[LoadRecord]) -> dict[str, list[str]]:
    """What the engine's core decides for each record (one profile per person, as a worker)."""
    rules = default_rules()
    profiles: dict[str, object] = {}
    person_of: dict[str, str] = {}
    decided: dict[str, list[str]] = {}
    for n, record in enumerate(records):
        ts = T0 + n * SECOND // 10
        decoded = decode_record(Source(record.source), record.key.encode(),
                                orjson.dumps(dict(record.value, ts=ts)), now_ms=ts)
        assert isinstance(decoded, Accepted)
        person = record.value.get("customer_id") or person_of.get(record.key, record.key)
        person_of[record.key] = person
        outcome = process_event(decoded.event, person, profiles.get(person),  # type: ignore[arg-type]
                                Trigger(ts, ts), rules)
        profiles[person] = outcome.profile
        decided[record.value["event_id"]] = [a["action"] for a in outcome.actions]
    return decided


def test_the_engines_rules_answer_exactly_the_triggers_of_new_visitors_with_a_login_prompt() -> None:
    records = take(new_visitors(random.Random(8), pool=75), 1200)
    decided = answers(records)
    for record in records:
        expected = ["login_prompt"] if record.is_trigger else []
        assert decided[record.value["event_id"]] == expected, record


def test_the_engines_rules_answer_every_logged_in_page_with_a_direct_link() -> None:
    records = take(logged_in(random.Random(9), pool=75), 1200)
    decided = answers(records)
    assert all(decided[r.value["event_id"]] == ["direct_link"] for r in records)


def test_the_quix_peer_answers_exactly_the_triggers_of_new_visitors() -> None:
    # quixstreams (the bench extra) imports authlib's httpx client, which warns on import
    # through an "always" filter of its own: set it first, then put "ignore" before it.
    deprecate = pytest.importorskip("authlib.deprecate")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", deprecate.AuthlibDeprecationWarning)
        pytest.importorskip("quixstreams")
        from benchmarks.peers.quix_peer import visitor_step

    records = take(new_visitors(random.Random(10), pool=75), 1200)
    state: dict[str, dict] = defaultdict(dict)
    for n, record in enumerate(records):
        ts = T0 + n * SECOND // 10
        action = visitor_step(state[record.key], dict(record.value, ts=ts), ts, ts)
        assert (action is not None) == record.is_trigger
        if action is not None:
            assert action["trigger_event_id"] == record.value["event_id"]
            assert action["person_id"] == record.key and action["action"] == "login_prompt"
