"""One step of a person's journey: event + profile in, new profile + action records out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.actions import build_action_record
from orchestrator.core.events import ClickstreamEvent, ContactCentreEvent, Event
from orchestrator.core.profile import Profile, apply_event, record_sent
from orchestrator.core.self_service import (
    Decision,
    SelfServicePolicy,
    Suppressed,
    decide_self_service,
)


@dataclass(slots=True)
class JourneyOutcome:
    """What the shell must do after one event.

    ``profile`` is None when the person asked to be erased: the shell deletes their state.
    ``replay`` is True for an event already applied (nothing else changes then).
    """

    profile: Profile | None
    actions: list[dict[str, Any]] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    replay: bool = False


@dataclass(frozen=True, slots=True)
class Trigger:
    """Where the event came from, as far as decisions care: its Kafka time and ours."""

    kafka_ts: int
    now_ms: int


def process_event(event: Event, person_id: str, profile: Profile | None, trigger: Trigger,
                  policy: SelfServicePolicy) -> JourneyOutcome:
    """Apply ``event`` to the person's profile (new if None) and decide what to send.

    >>> from orchestrator.core.events import decode_record, Source
    >>> from orchestrator.core.self_service import parse_policy
    >>> policy = parse_policy({"topics": {"billing": {"service_page": "/billing",
    ...                                               "title": "Bills"}}}, "example")
    >>> def view(n):
    ...     raw = (b'{"event_id":"e%d","type":"page_view","ts":17000000%d0000,"visitor_id":"v",'
    ...            b'"page":{"url":"/billing/faq","category":"billing"}}' % (n, n))
    ...     return decode_record(Source.CLICKSTREAM, b"v", raw, now_ms=1800000000000).event
    >>> profile = None
    >>> for n in range(1, 4):
    ...     outcome = process_event(view(n), "v", profile, Trigger(0, 0), policy)
    ...     profile = outcome.profile
    >>> [a["action"] for a in outcome.actions]
    ['login_prompt']
    """
    if isinstance(event, ClickstreamEvent | ContactCentreEvent) \
            and event.type == "erasure_requested":
        return JourneyOutcome(profile=None)
    if profile is None:
        profile = Profile(person_id=person_id)
    if not apply_event(profile, event):
        return JourneyOutcome(profile=profile, replay=True)
    outcome = JourneyOutcome(profile=profile)
    if isinstance(event, ClickstreamEvent):
        decision = decide_self_service(event, profile, policy)
        if isinstance(decision, Suppressed):
            outcome.suppressed.append(decision)
        elif isinstance(decision, Decision):
            record = build_action_record(
                decision, event, profile, trigger_kafka_ts=trigger.kafka_ts,
                decided_ts=trigger.now_ms, rule_set_version=policy.version)
            record_sent(profile, record, decision.cap_key, event.ts)
            outcome.actions.append(record)
    return outcome
