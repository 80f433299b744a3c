"""JourneyProcessor: the I/O around the core, with a dict as the table."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from orchestrator.core.events import DecodeLimits
from orchestrator.core.profile import Profile, is_erasure_marker
from orchestrator.core.rules import load_rule_set
from orchestrator.runtime.metrics import EngineMetrics
from orchestrator.runtime.processing import DEAD_LETTER_ATTEMPTS, JourneyProcessor
from orchestrator.runtime.settings import load_rules, load_settings
from orchestrator.runtime.stores import decode_profile
from tests.agents.conftest import RecordingEmitter, handled, page_view


def sample(processor: JourneyProcessor, name: str, **labels: str) -> float | None:
    return processor.metrics.registry.get_sample_value(name, labels)


NOW = 1_800_000_000_000


def make_processor(emitter: RecordingEmitter, profiles: dict[str, bytes]) -> JourneyProcessor:
    settings = load_settings()
    return JourneyProcessor(
        profiles=profiles, emitter=emitter, rule_set=load_rules(settings.rules_dir),
        sources=settings.input_topics, dead_letter_topic="dead-letter",
        action_topic=settings.action_topic, limits=DecodeLimits(), metrics=EngineMetrics(),
        clock_ms=lambda: NOW)


def record(**fields: Any) -> bytes:
    return orjson.dumps({"ts": NOW, **fields})


async def test_erasure_removes_the_stored_profile() -> None:
    emitter, profiles = RecordingEmitter(), {}
    processor = make_processor(emitter, profiles)
    await handled(processor, "clickstream", 0, 0, NOW, b"v", record(
        event_id="1", type="page_view", visitor_id="v", page={"url": "/x"}))
    assert "v" in profiles
    await handled(processor, "clickstream", 0, 1, NOW, b"v", record(
        event_id="2", type="erasure_requested", visitor_id="v"))
    marker = decode_profile(profiles["v"])  # only the id and the erasure's broker time are kept
    assert is_erasure_marker(marker) and marker == Profile(person_id="v", erased_ts=NOW)
    assert sample(processor, "orchestrator_erasures_total") == 1


async def test_replayed_record_changes_nothing_and_sends_nothing_again() -> None:
    emitter, profiles = RecordingEmitter(), {}
    processor = make_processor(emitter, profiles)
    views = [record(event_id=f"e{n}", type="page_view", visitor_id="v", session_id="s",
                    page={"url": "/billing/faq", "category": "billing"}) for n in range(3)]
    for offset, value in enumerate(views):
        await handled(processor, "clickstream", 0, offset, NOW, b"v", value)
    before = profiles["v"]
    await handled(processor, "clickstream", 0, 2, NOW, b"v", views[2])  # redelivered after a crash
    assert profiles["v"] == before
    assert len(emitter.on("actions.web")) == 1
    assert sample(processor, "orchestrator_replayed_events_total", source="clickstream") == 1


async def test_rejections_are_counted_by_source_and_error() -> None:
    emitter = RecordingEmitter()
    processor = make_processor(emitter, {})
    await handled(processor, "contact-centre", 1, 5, NOW, b"c", b"[]")
    await handled(processor, "action-feedback", 0, 6, NOW, None,
                           record(action_id="a", outcome="clicked"))
    assert sample(processor, "orchestrator_rejected_records_total", source="contact-centre",
                  error="not_object") == 1
    assert sample(processor, "orchestrator_rejected_records_total", source="action-feedback",
                  error="key") == 1
    assert [d["error"] for d in emitter.on("dead-letter")] == ["not_object", "key"]


async def test_a_bug_in_processing_dead_letters_the_record_instead_of_stopping() -> None:
    emitter = RecordingEmitter()

    class BrokenStore(dict):
        def get(self, key: str, default: Any = None) -> Any:
            raise RuntimeError("disk on fire")

    processor = make_processor(emitter, BrokenStore())
    await handled(processor, "clickstream", 3, 9, NOW, b"v",
                           page_view("e", "v", "/billing", "billing"))
    [dead] = emitter.on("dead-letter")
    assert dead["error"] == "internal_error"
    assert "disk on fire" in dead["reason"]
    assert dead["source"]["partition"] == 3


async def test_held_back_actions_are_counted_by_cause_and_acknowledged_ones_timed() -> None:
    emitter = RecordingEmitter()
    processor = make_processor(emitter, {})
    for n in range(4):  # the fourth page is inside the login prompt's cooldown
        await handled(processor, "clickstream", 0, n, NOW - 5, b"v", record(
            event_id=f"e{n}", type="page_view", visitor_id="v", session_id="s",
            page={"url": f"/billing/{n}", "category": "billing"}))
    assert sample(processor, "orchestrator_decisions_suppressed_total", action="login_prompt",
                  cause="cooldown") == 1
    # observed when the (recording) emitter acknowledged it
    assert sample(processor, "orchestrator_event_to_action_seconds_count", channel="web",
                  action="login_prompt") == 1
    assert processor.last_offsets == {("clickstream", 0): 3}


async def test_each_record_counts_its_wait_from_its_kafka_timestamp_by_topic() -> None:
    processor = make_processor(RecordingEmitter(), {})
    await handled(processor, "clickstream", 0, 0, NOW - 40, b"v", record(
        event_id="e0", type="page_view", visitor_id="v", page={"url": "/x"}))
    await handled(processor, "clickstream", 0, 1, NOW + 900, b"v", b"not json")  # a skewed clock
    await handled(processor, "person-events", 0, 0, NOW - 400, b"v", b"not an envelope")

    def wait(source: str, suffix: str, **le: str) -> float | None:
        return sample(processor, f"orchestrator_input_wait_seconds{suffix}", source=source, **le)

    assert wait("clickstream", "_count") == 2  # a rejected record waited too
    assert wait("clickstream", "_sum") == 0.040  # ahead of the worker's clock: no wait
    assert wait("clickstream", "_bucket", le="0.03") == 1
    assert wait("clickstream", "_bucket", le="0.05") == 2
    assert wait("person-events", "_count") == 1
    assert wait("person-events", "_sum") == 0.4


HOLDOUT_RULES = """
version: "holdout-1"
rules:
  - id: everyone-held-out
    description: A rule whose whole audience is the control group
    channel: web
    action: direct_link
    when: {field: event.type, eq: page_view}
    payload: {url: /account}
    consent: service
    holdout_percent: 100
"""


async def test_held_out_decisions_are_recorded_on_their_topic_and_never_sent() -> None:
    emitter = RecordingEmitter()
    processor = make_processor(emitter, {})
    processor.rule_set = load_rule_set({"rules/holdout.yaml": HOLDOUT_RULES})
    await handled(processor, "clickstream", 0, 0, NOW, b"v", record(
        event_id="e1", type="page_view", visitor_id="v", page={"url": "/x"}))
    assert emitter.on("actions.web") == []
    [held] = emitter.on("decisions-held-out")
    assert held["holdout"] is True
    assert (held["rule"], held["action"], held["trigger_event_id"]) == (
        "everyone-held-out", "direct_link", "e1")
    assert sample(processor, "orchestrator_decisions_suppressed_total", action="direct_link",
                  cause="holdout") == 1


class RefusingDeadLetters(RecordingEmitter):
    """A broker that refuses the first ``refusals`` dead-letter records: one at send time, the
    others after it (the delivery callback)."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals
        self.attempts = 0

    async def send(self, topic, key, value, on_delivered=None, on_failed=None):  # type: ignore[no-untyped-def]
        if topic == "dead-letter":
            self.attempts += 1
            if self.refusals:
                self.refusals -= 1
                if self.attempts == 1:
                    raise RuntimeError("record too large for the producer")
                on_failed(RuntimeError("broker unavailable"))
                return
        await super().send(topic, key, value, on_delivered)


async def settle_retries() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_dead_letter_the_broker_refuses_is_sent_again_and_never_raises() -> None:
    emitter = RefusingDeadLetters(refusals=2)
    processor = make_processor(emitter, {})
    await handled(processor, "contact-centre", 1, 5, NOW, b"c", b"[]")
    await settle_retries()

    assert emitter.attempts == 3
    assert [d["error"] for d in emitter.on("dead-letter")] == ["not_object"]
    assert sample(processor, "orchestrator_dead_letter_retries_total") == 2
    assert sample(processor, "orchestrator_dead_letters_lost_total") == 0


async def test_a_dead_letter_refused_every_time_is_counted_lost_after_its_attempts() -> None:
    emitter = RefusingDeadLetters(refusals=10)
    processor = make_processor(emitter, {})
    await handled(processor, "contact-centre", 1, 5, NOW, b"c", b"[]")
    await settle_retries()

    assert emitter.attempts == DEAD_LETTER_ATTEMPTS
    assert emitter.on("dead-letter") == []
    assert sample(processor, "orchestrator_dead_letters_lost_total") == 1


async def test_a_page_url_that_cannot_be_split_is_still_applied_and_decided_on() -> None:
    # Found by the full fuzz run: urlsplit raised in the rules (the direct link's "already
    # there" check) for a bracketed non-IPv6 host, and the record was dead-lettered as an
    # internal error.
    emitter, profiles = RecordingEmitter(), {}
    processor = make_processor(emitter, profiles)
    hop, hopped = processor.person_events_topic, 0
    for n, url in enumerate(["http://[::1", "http://[aåç:Ж]/billing", "//[x]/billing/faq"]):
        await handled(processor, "clickstream", 0, n, NOW, b"v", record(
            event_id=f"e{n}", type="page_view", visitor_id="v", session_id="s",
            customer_id="c-1", page={"url": url, "category": "billing"}))
        while hopped < len(emitter.sent):  # the broker's hop to the customer's partition
            topic, key, value = emitter.sent[hopped]
            hopped += 1
            if topic == hop:
                await handled(processor, hop, 0, n, NOW, key, orjson.dumps(value))
    assert emitter.on("dead-letter") == []
    assert decode_profile(profiles["c-1"]).events_seen == 3
    assert emitter.on("actions.web")  # decided on: the logged-in billing pages get direct links
