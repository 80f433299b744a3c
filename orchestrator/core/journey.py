"""One step of a person's journey: event + profile in, new profile + action records out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from orchestrator.core.actions import build_action_record
from orchestrator.core.events import ClickstreamEvent, ContactCentreEvent, Event, event_type
from orchestrator.core.journeys.machine import ActionRequest
from orchestrator.core.journeys.requests import arbitrate_requests
from orchestrator.core.profile import Profile, apply_event, erased_before, erasure_marker, record_sent
from orchestrator.core.rules import RuleSet, Suppressed, decide
from orchestrator.core.rules.paths import RuleInputs
from orchestrator.core.scoring import SettledLabel, StepResult

#: The scores of a decision made without a scorer (shared, read-only: no allocation per event).
_NO_SCORES: Mapping[str, float | None] = MappingProxyType({})


@dataclass(slots=True)
class JourneyOutcome:
    """What the shell must do after one event.

    ``profile`` is None when the person asked to be erased: the shell removes their state and
    keeps ``erasure`` (a marker: the person id and the erasure's broker time) in its place.
    ``replay`` is True for an event already applied, ``erased`` for an event from before the
    person's erasure, dropped so that it cannot bring them back (nothing changes then).
    ``actions`` are to be sent; ``held_out`` are the records of decisions for the control group
    (``"holdout": true``), never sent; ``suppressed`` says what was held back and why.
    ``scores`` are the intent scores the decision was made with (empty without a scorer);
    ``settled`` the delayed labels this event settled (its outcome, or moments past their
    horizon at its time), for the shell's metrics and checkpoint bookkeeping.
    """

    profile: Profile | None
    actions: list[dict[str, Any]] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    held_out: list[dict[str, Any]] = field(default_factory=list)
    replay: bool = False
    erased: bool = False
    erasure: Profile | None = None
    scores: Mapping[str, float | None] = field(default_factory=dict)
    settled: Sequence[SettledLabel] = ()


class EventScorer(Protocol):
    """Scores a person's intents at an event already applied to their profile, and learns from
    the labels that event settles; see :class:`orchestrator.core.scoring.ProfileScorer`."""

    def score(self, profile: Profile, event: Event, late: bool) -> StepResult:
        """Settle, learn and score for ``event``; ``late``: older than the profile's newest."""
        ...

    def versions(self) -> Mapping[str, str]:
        """Model version per intent, for action records."""
        ...

    def labels(self) -> Mapping[str, int]:
        """Labels each intent's model has learned from (score conditions' ``min_labels``)."""
        ...


class EventJourneys(Protocol):
    """The person's journeys at an event (see :class:`orchestrator.core.journeys.PersonJourneys`):
    advanced on the event once it is applied, they ask for actions that are arbitrated together
    with the rules'."""

    @property
    def version(self) -> str:
        """The journey set's version (journey action records carry it)."""
        ...

    @property
    def lookups(self) -> Mapping[str, Mapping[str, Any]]:
        """The lookups the journeys' conditions read (the rule set's, in a worker)."""
        ...

    def requests(self, event: Event, profile: Profile, scores: Mapping[str, float | None],
                 score_labels: Mapping[str, int] | None,
                 inputs: RuleInputs | None = None) -> Sequence[ActionRequest]:
        """Advance on ``event``; the action requests of the send steps reached. ``inputs``: the
        event's decision inputs, shared with the rules (counts computed once)."""
        ...


@dataclass(frozen=True, slots=True)
class Trigger:
    """The two clocks of one decision.

    ``record_kafka_ts``: the Kafka timestamp of the record that triggered it (the action
    record's ``trigger_ts``; event-to-action latency is measured from it). ``decided_ts``: the
    worker's wall clock when deciding (the action record's ``decided_ts``; rules' validity
    windows are judged at it). Both epoch ms. Cooldowns, caps and counts use neither: they run
    on the event's own time.
    """

    record_kafka_ts: int
    decided_ts: int


def process_event(event: Event, person_id: str, profile: Profile | None, trigger: Trigger,
                  rule_set: RuleSet, scorer: EventScorer | None = None,
                  journeys: EventJourneys | None = None) -> JourneyOutcome:
    """Apply ``event`` to the person's profile (new if None) and decide what to send.

    An ``erasure_requested`` event erases the person (see :class:`JourneyOutcome`); an event
    whose time (its ``ts``, at most the trigger's Kafka time) is before the person's last
    erasure is dropped. Consent goes by that time too.

    ``scorer``, when given, scores the person's intents after the event is applied and before
    the decision; its scores and the labels it settled are on the outcome. Scores are intent
    probabilities by name (None: model not trusted yet); without a scorer, rules that need a
    score do not fire.

    ``journeys``, when given, advance on the applied event (not on a replay, nor on a record from
    before an erasure); their action requests and the rules are arbitrated as one decision
    (consent, caps, one action per channel), and an event that asks nothing of the journeys is
    decided by the rules alone, as without them.

    >>> from orchestrator.core.events import decode_record, Source
    >>> from orchestrator.core.rules import load_rule_set
    >>> rule_set = load_rule_set({"rules/example.yaml": '''
    ... rules:
    ...   - id: third-billing-page
    ...     description: the third billing page of a session
    ...     channel: web
    ...     action: login_prompt
    ...     when:
    ...       count: {event_type: page_view, category_in: [billing], session: true}
    ...       eq: 3
    ... '''})
    >>> def view(n):
    ...     raw = (b'{"event_id":"e%d","type":"page_view","ts":17000000%d0000,"visitor_id":"v",'
    ...            b'"page":{"url":"/billing/faq","category":"billing"}}' % (n, n))
    ...     return decode_record(Source.CLICKSTREAM, b"v", raw, now_ms=1800000000000).event
    >>> profile = None
    >>> for n in range(1, 4):
    ...     outcome = process_event(view(n), "v", profile, Trigger(0, 0), rule_set)
    ...     profile = outcome.profile
    >>> [(a["action"], a["trigger_event_id"]) for a in outcome.actions]
    [('login_prompt', 'e3')]
    """
    if isinstance(event, ClickstreamEvent | ContactCentreEvent) \
            and event.type == "erasure_requested":
        # Broker time: an erasure dated ahead by its producer must not drop later records.
        return JourneyOutcome(profile=None,
                              erasure=erasure_marker(person_id, trigger.record_kafka_ts, profile))
    if erased_before(profile, event.ts, trigger.record_kafka_ts):
        return JourneyOutcome(profile=profile, erased=True)
    if profile is None:
        profile = Profile(person_id=person_id)
    late = event.ts < profile.last_seen_ts
    if not apply_event(profile, event, broker_ts=trigger.record_kafka_ts):
        return JourneyOutcome(profile=profile, replay=True)
    if scorer is None:
        scores: Mapping[str, float | None] = _NO_SCORES
        settled: Sequence[SettledLabel] = ()
        labels: Mapping[str, int] | None = None
    else:
        step = scorer.score(profile, event, late)
        scores, settled, labels = step.scores, step.settled, scorer.labels()
    inputs = None
    requests: Sequence[ActionRequest] = ()
    if journeys is not None:
        # One set of decision inputs for the journeys and the rules when they read the same
        # lookups (they do in a worker): a count both ask for is computed once.
        if journeys.lookups is rule_set.lookups:
            inputs = RuleInputs(event=event, profile=profile, scores=scores,
                                lookups=rule_set.lookups, score_labels=labels or {},
                                type=event_type(event))
        requests = journeys.requests(event, profile, scores, labels, inputs)
    if requests:
        assert journeys is not None
        return _with_journeys(event, profile, trigger, rule_set, scorer, journeys.version,
                              requests, scores, settled, labels, inputs)
    arbitration = decide(rule_set, event, profile, scores, trigger.decided_ts, labels,
                         inputs=inputs)
    outcome = JourneyOutcome(profile=profile, suppressed=arbitration.suppressed, scores=scores,
                             settled=settled)
    decisions = [*arbitration.chosen, *arbitration.held_out]
    # Model versions go on action records only: not built for the many events that decide nothing.
    versions = scorer.versions() if scorer is not None and decisions else None
    for decision in decisions:
        record = build_action_record(
            decision, event, profile, trigger_kafka_ts=trigger.record_kafka_ts,
            decided_ts=trigger.decided_ts, rule_set_version=rule_set.version, scores=scores,
            model_versions=versions)
        record_sent(profile, record, decision.cap_key, event.ts, holdout=decision.holdout)
        (outcome.held_out if decision.holdout else outcome.actions).append(record)
    return outcome


def _with_journeys(event: Event, profile: Profile, trigger: Trigger, rule_set: RuleSet,
                   scorer: EventScorer | None, version: str, requests: Sequence[ActionRequest],
                   scores: Mapping[str, float | None], settled: Sequence[SettledLabel],
                   labels: Mapping[str, int] | None, inputs: RuleInputs | None) -> JourneyOutcome:
    """The event's decision when journeys asked for actions: theirs and the rules' together."""
    decided = arbitrate_requests(
        requests, profile, version=version, lookups=rule_set.lookups,
        now_ms=trigger.decided_ts, kafka_ts=trigger.record_kafka_ts, rule_set=rule_set,
        trigger_event=event, scores=scores, score_labels=labels,
        model_versions=scorer.versions() if scorer is not None else None, inputs=inputs)
    return JourneyOutcome(profile=profile, actions=decided.actions, suppressed=decided.suppressed,
                          held_out=decided.held_out, scores=scores, settled=settled)
