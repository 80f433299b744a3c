"""Rule sets on the rules topic: validated off the event loop, within a time limit, and a bad
record refused with its reason while the last good set stays (a fake consumer, no broker)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from orchestrator.core.rules import RuleSet
from orchestrator.runtime import rules_feed
from orchestrator.runtime.rules_feed import (
    RULE_SET_KEY,
    Published,
    RuleSetState,
    encode_rule_set,
    follow,
    read_latest,
    validate_record,
)
from orchestrator.runtime.settings import Settings

from .factories import RULES_DIR, default_rules, rule, rule_set

ALIAS_BOMB = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]\n" for n in range(1, 9)) + "rules: []\n"
DEEP = ("rules:\n  - id: deep\n    description: d\n    channel: web\n    action: a\n    when: "
        + "{all: [" * 300 + "{field: event.type, eq: page_view}" + "]}" * 300 + "\n")


def record(offset: int, value: bytes | None, key: bytes = RULE_SET_KEY) -> Any:
    return SimpleNamespace(key=key, value=value, offset=offset)


def published(documents: dict[str, str]) -> bytes:
    return orjson.dumps({"version": "x", "published_ts": 1, "documents": documents})


GOOD = encode_rule_set(rule_set(rule(id="good"), version="good-1"), published_ts=1)
BAD_RECORDS = {
    "alias bomb": published({"rules/bomb.yaml": ALIAS_BOMB}),
    "deep": published({"rules/deep.yaml": DEEP}),
    "nul": published({"rules/nul.yaml": "rules:\n  - id: nul\n    description: \"a\x00\"\n"}),
    "not json": b"\xff{",
    "not a record": b"[1, 2]",
    "documents not text": orjson.dumps({"documents": {"rules/a.yaml": 5}}),
}


@pytest.mark.parametrize("name", sorted(BAD_RECORDS))
async def test_a_bad_record_is_a_rejection_with_its_reason(name: str) -> None:
    started = time.perf_counter()
    result = await validate_record(record(7, BAD_RECORDS[name]))
    assert time.perf_counter() - started < 1.0
    assert isinstance(result, dict), result
    assert result["offset"] == 7
    assert result["errors"] and all(isinstance(e, str) and e for e in result["errors"])


async def test_the_rejection_names_file_rule_and_field() -> None:
    result = await validate_record(record(3, BAD_RECORDS["deep"]))
    assert isinstance(result, dict)
    [error] = result["errors"]
    assert error.startswith("rules/deep.yaml: rule 'deep': when.all[0]")


async def test_a_good_record_gives_its_rule_set_and_other_keys_are_ignored() -> None:
    good = await validate_record(record(0, GOOD))
    assert isinstance(good, Published) and good.rule_set.version == "good-1"
    assert good.journeys is None  # published without journeys
    assert await validate_record(record(1, GOOD, key=b"something-else")) is None
    assert await validate_record(record(2, None)) is None


async def test_validation_runs_off_the_event_loop_and_is_refused_after_the_time_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(value: bytes) -> RuleSet:
        time.sleep(0.5)
        return default_rules()

    monkeypatch.setattr(rules_feed, "decode_rule_set", slow)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        result = await validate_record(record(5, GOOD), timeout_s=0.2)
    finally:
        ticker.cancel()
    assert isinstance(result, dict)
    assert result["errors"] == ["validation took more than 0.2 s"]
    assert ticks >= 5  # the loop kept running while the set was being checked


async def test_a_defect_of_the_checks_is_a_rejection_not_an_exception(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(value: bytes) -> RuleSet:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(rules_feed, "decode_rule_set", broken)
    result = await validate_record(record(9, GOOD))
    assert isinstance(result, dict)
    assert result["errors"] == ["validation failed: RecursionError: maximum recursion depth exceeded"]


# ---------------------------------------------------------------- a worker's start and the feed

class FakeConsumer:
    """The part of AIOKafkaConsumer the feed uses, over a list of records of one partition."""

    records: list[Any] = []

    def __init__(self, **config: Any) -> None:
        self.position_ = 0

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def assign(self, partitions: list[Any]) -> None: ...

    async def seek_to_beginning(self, tp: Any) -> None:
        self.position_ = 0

    def seek(self, tp: Any, offset: int) -> None:
        self.position_ = offset

    async def end_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        return {partitions[0]: len(self.records)}

    async def position(self, tp: Any) -> int:
        return self.position_

    async def getmany(self, tp: Any, timeout_ms: int) -> dict[Any, list[Any]]:
        batch = self.records[self.position_:]
        self.position_ = len(self.records)
        if not batch:
            await asyncio.sleep(0.01)
        return {tp: batch}


@pytest.fixture
def topic(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    records: list[Any] = []
    monkeypatch.setattr(FakeConsumer, "records", records)
    monkeypatch.setattr(rules_feed, "AIOKafkaConsumer", FakeConsumer)
    return records


def settings() -> Settings:
    return Settings(bootstrap_servers="127.0.0.1:1")


async def test_a_worker_starts_with_the_newest_good_set_whatever_follows_it(topic: list[Any]) -> None:
    topic += [record(0, GOOD)] + [record(n + 1, value) for n, value in enumerate(BAD_RECORDS.values())]
    state, follow_from = await read_latest(settings(), RULES_DIR)
    assert state.rule_set.version == "good-1"
    assert state.source == "topic rules@0"
    assert follow_from == len(topic)
    assert state.last_rejected is not None and state.last_rejected["offset"] == len(BAD_RECORDS)


async def test_a_worker_starts_with_the_rule_directory_when_only_bad_sets_were_published(
        topic: list[Any]) -> None:
    topic += [record(0, BAD_RECORDS["alias bomb"]), record(1, BAD_RECORDS["nul"])]
    state, _ = await read_latest(settings(), RULES_DIR)
    assert state.source == f"directory {RULES_DIR}"
    assert state.rule_set.version == default_rules().version
    assert state.last_rejected is not None and state.last_rejected["offset"] == 1


async def test_following_refuses_a_bad_set_keeps_the_last_good_one_and_applies_the_next_good(
        topic: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_topics(settings: Settings, channels: set[str]) -> list[str]:
        return []

    monkeypatch.setattr(rules_feed, "ensure_action_topics", no_topics)
    state = RuleSetState(default_rules(), "directory rules", 0)
    applied: list[str] = []
    results: list[str] = []
    topic += [record(0, BAD_RECORDS["deep"]), record(1, BAD_RECORDS["alias bomb"]), record(2, GOOD)]
    feed = asyncio.create_task(follow(settings(), state, 0, lambda rs: applied.append(rs.version),
                                      on_result=results.append))
    try:
        for _ in range(200):
            if len(results) == 3:
                break
            await asyncio.sleep(0.01)
    finally:
        feed.cancel()
    assert results == ["rejected", "rejected", "applied"]
    assert applied == ["good-1"]
    assert state.rule_set.version == "good-1"
    assert state.last_rejected is not None and state.last_rejected["offset"] == 1


async def test_a_set_whose_topics_cannot_be_created_is_refused_and_the_feed_goes_on(
        topic: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(settings: Settings, channels: set[str]) -> list[str]:
        raise OSError("broker unreachable")

    monkeypatch.setattr(rules_feed, "ensure_action_topics", failing)
    state = RuleSetState(default_rules(), "directory rules", 0)
    results: list[str] = []
    topic += [record(0, GOOD)]
    feed = asyncio.create_task(follow(settings(), state, 0, lambda rs: None, on_result=results.append))
    try:
        for _ in range(200):
            if results:
                break
            await asyncio.sleep(0.01)
        assert not feed.done()
    finally:
        feed.cancel()
    assert results == ["rejected"]
    assert state.rule_set.version == default_rules().version
    assert state.last_rejected is not None
    assert "could not be created: broker unreachable" in state.last_rejected["errors"][0]


# ---------------------------------------------------------------- journeys travel with the rules

GOOD_JOURNEY = """
journeys:
  - id: hello
    description: greet, then wait a minute
    entry: {event: [page_view]}
    steps:
      - {id: greet, send: {channel: web, action: greeting}}
      - {id: pause, wait_s: 60}
"""


def with_journeys(documents: dict[str, Any]) -> bytes:
    record = orjson.loads(GOOD)
    record["journeys"] = {"version": "j", "documents": documents}
    return orjson.dumps(record)


async def test_a_record_with_journeys_gives_them_with_its_rule_set() -> None:
    good = await validate_record(record(0, with_journeys({"journeys/hello.yaml": GOOD_JOURNEY})))
    assert isinstance(good, Published) and good.journeys is not None
    assert [j.id for j in good.journeys.journeys] == ["hello"]


async def test_a_record_with_a_bad_journey_is_refused_naming_file_journey_step_and_field() -> None:
    bad = GOOD_JOURNEY.replace("wait_s: 60", "wait_s: 0")
    result = await validate_record(record(4, with_journeys({"journeys/hello.yaml": bad})))
    assert isinstance(result, dict)
    assert result["errors"] == [
        "journeys/hello.yaml: journey 'hello': step 'pause': wait_s: must be at least 1, got 0"]
    not_text = await validate_record(record(5, with_journeys({"journeys/hello.yaml": 3})))
    assert isinstance(not_text, dict) and "journeys.documents" in not_text["errors"][0]


def test_a_bad_journey_directory_fails_the_start_naming_the_step(tmp_path: Any) -> None:
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules, ignore=shutil.ignore_patterns("*.md", "*.json"))
    (rules / "journeys" / "hello.yaml").write_text(GOOD_JOURNEY.replace("wait_s: 60", "wait_s: 0"))
    with pytest.raises(rules_feed.RuleSetError) as raised:
        rules_feed.load_directories(rules, rules / "journeys")
    assert ("journeys/hello.yaml: journey 'hello': step 'pause': wait_s: must be at least 1"
            in str(raised.value))
    assert rules_feed.load_directories(rules, tmp_path / "none").journeys is None
