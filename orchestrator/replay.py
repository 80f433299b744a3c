"""Replay a log of contract records through the pure core, as one worker partition runs it.

``orchestrator replay records.jsonl`` is the way to evaluate the engine on your own logs: it
reads records of the contract, puts them in event-time order, and runs each through the same
steps a worker runs -- decode and validate (:func:`~orchestrator.core.events.decode_record`),
identity resolution (:mod:`~orchestrator.core.identity`: a visitor's records go to the customer
once the visitor has logged in, with the anonymous profile merged at the first login), the
profile, :func:`~orchestrator.core.journey.process_event` with the rule set and one
:class:`~orchestrator.core.scoring.IntentScorer` (the models of one partition), and an
event-time sweep that settles the labels of people who went quiet -- and writes one JSON line
per input record with the scores served at it, the labels it settled and the actions decided.

Input: JSON lines, each either

- a **bare record** of the contract: a ``contact-centre`` record when its ``type`` is a
  contact-centre type (keyed by its ``customer_id``), otherwise a ``clickstream`` record (keyed
  by its ``visitor_id``); or
- an **envelope** ``{"topic": ..., "key": ..., "value": {...}}`` where ``topic`` is
  ``clickstream``, ``contact-centre`` or ``action-feedback`` (feedback names no person itself,
  so it needs the envelope's key).

Records are sorted by their ``ts`` (ties: input order); a record whose ``ts`` cannot be read is
processed first and rejected with the reason, as a worker would dead-letter it. Blank lines are
skipped. The differences from a worker: there is one partition (so one set of models, as with
a single-partition deployment), the profile is round-tripped through JSON after every event
exactly as the worker's table does, and event time is also the decision time (``now``).

Output, one line per input record in processing order::

    {"line": 12, "source": "clickstream", "key": "v-1", "person_id": "v-1", "event_id": "e7",
     "type": "page_view", "ts": 1780000123000, "late": false,
     "scores": {"login_propensity": 0.31, "purchase_intent": null, ...},
     "settled": [{"intent": "login_propensity", "label": true, "snapshot_ts": 1780000100000}],
     "swept": [{"person_id": "v-9", "intent": "purchase_intent", "label": false, ...}],
     "actions": [{"action": "login_prompt", "channel": "web", "rule": "..."}], "held_out": []}

``scores`` maps each intent that applies to the person to its served probability or ``null``
(model not trusted); ``settled`` are the labels this event settled for its person (snapshots
whose horizon had ended by its time, positive when their outcome was seen; an outcome itself
only decides them, and they are learned when their horizon ends); ``swept`` the labels the
event-time sweep settled for quiet people just before this event. A rejected record gives
``{"line", "source", "rejected": {"code", "reason"}}``; a record already applied (a duplicate)
gives ``"replay": true``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import yaml

from orchestrator.core.events import (
    CONTACT_CENTRE_TYPES,
    Accepted,
    ActionFeedbackEvent,
    ClickstreamEvent,
    ContactCentreEvent,
    Rejected,
    Source,
    decode_record,
    event_type,
)
from orchestrator.core.identity import VisitorLink, resolve_click, resolve_keyed
from orchestrator.core.journey import Trigger, process_event
from orchestrator.core.profile import Profile, merge_profiles
from orchestrator.core.rules import RuleSet, load_rule_directory
from orchestrator.core.scoring import (
    DEFAULT_INTENTS,
    IntentScorer,
    IntentSpec,
    ProfileScorer,
    SettledLabel,
    earliest_deadline,
    load_intents,
    settle_expired,
)
from orchestrator.core.timestamps import TimestampError, parse_ts
from orchestrator.runtime.stores import decode_profile, encode_profile

#: Event time between two sweeps of quiet people (a worker sweeps every 10 min of wall time).
DEFAULT_SWEEP_EVERY_MS = 60_000
#: Time allowed for late outcomes before a snapshot's label is settled (as LABEL_LATENESS_S).
DEFAULT_LATENESS_MS = 60_000


class ReplayInputError(ValueError):
    """An input line that is not a record or an envelope; the message names the line."""


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One input record: where it came from in the file, its source, key and raw value."""

    line: int
    source: Source
    key: bytes | None
    value: bytes
    ts: int | None  # parsed for sorting; None when unreadable (the record is then rejected)


_TOPICS = {s.value: s for s in Source}


def parse_line(line: int, text: str | bytes) -> InputRecord:
    """Read one input line (a bare record or an envelope, see the module docstring)."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ReplayInputError(f"line {line}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ReplayInputError(f"line {line}: expected a JSON object")
    if "topic" in data and "value" in data:
        source = _TOPICS.get(data["topic"])
        if source is None:
            raise ReplayInputError(f"line {line}: unknown topic {data['topic']!r}; "
                                   f"expected one of {', '.join(_TOPICS)}")
        key = data.get("key")
        value = data["value"]
        if not isinstance(value, dict):
            raise ReplayInputError(f"line {line}: the envelope's value must be a JSON object")
    else:
        value = data
        if value.get("type") in CONTACT_CENTRE_TYPES:
            source, key = Source.CONTACT_CENTRE, value.get("customer_id")
        else:
            source, key = Source.CLICKSTREAM, value.get("visitor_id")
    try:
        ts: int | None = parse_ts(value.get("ts"))
    except TimestampError:
        ts = None
    raw_key = key.encode() if isinstance(key, str) else None
    return InputRecord(line, source, raw_key, orjson.dumps(value), ts)


def read_records(lines: Iterable[str | bytes]) -> list[InputRecord]:
    """Every record of ``lines`` (1-based line numbers), sorted into event-time order."""
    records = [parse_line(n, text) for n, text in enumerate(lines, start=1) if text.strip()]
    records.sort(key=lambda r: (r.ts if r.ts is not None else -1, r.line))
    return records


def load_intent_file(path: Path | None) -> tuple[IntentSpec, ...]:
    """The intents of a YAML file (a list of mappings, see ``load_intents``), or the defaults."""
    if path is None:
        return DEFAULT_INTENTS
    return load_intents(yaml.safe_load(Path(path).read_text()) or [])


@dataclass
class Replay:
    """The core of one worker partition, fed one record at a time in event-time order.

    ``profile_scorer`` may be given (e.g. a timed :class:`ProfileScorer` in a benchmark); by
    default one is made around a fresh :class:`IntentScorer` of ``specs``.
    """

    rule_set: RuleSet
    specs: tuple[IntentSpec, ...] = DEFAULT_INTENTS
    sweep_every_ms: int = DEFAULT_SWEEP_EVERY_MS
    lateness_ms: int = DEFAULT_LATENESS_MS
    profile_scorer: ProfileScorer | None = None
    #: Called with (person id, profile, outcome) after each applied event (benchmarks).
    on_event: Callable[[str, Profile, Any], None] | None = None
    profiles: dict[str, bytes] = field(default_factory=dict)
    identity: dict[str, VisitorLink] = field(default_factory=dict)
    watermark: int = 0
    _deadlines: list[tuple[int, str]] = field(default_factory=list)
    _indexed: dict[str, int] = field(default_factory=dict)
    _next_sweep: int | None = None

    def __post_init__(self) -> None:
        if self.profile_scorer is None:
            self.profile_scorer = ProfileScorer(IntentScorer(self.specs))
        self.specs = self.profile_scorer.intent_scorer.specs

    @property
    def scorer(self) -> IntentScorer:
        assert self.profile_scorer is not None
        return self.profile_scorer.intent_scorer

    def run(self, records: Iterable[InputRecord]) -> Iterator[dict[str, Any]]:
        """One output line (a dict) per record, in the order given."""
        for record in records:
            yield self.feed(record)

    def feed(self, record: InputRecord) -> dict[str, Any]:
        """Process one record; return its output line."""
        out: dict[str, Any] = {"line": record.line, "source": record.source.value}
        now = record.ts if record.ts is not None else self.watermark
        decoded = decode_record(record.source, record.key, record.value, now_ms=now)
        if isinstance(decoded, Rejected):
            out["rejected"] = {"code": decoded.code, "reason": decoded.reason}
            return out
        event = decoded.event
        swept = []
        if self._next_sweep is None or event.ts >= self._next_sweep:
            swept = self.sweep(event.ts)
        self.watermark = max(self.watermark, event.ts)
        person_id, carried = self._resolve(decoded)
        out |= {"key": decoded.key, "person_id": person_id, "event_id": _event_id(event),
                "type": event_type(event), "ts": event.ts, "swept": swept}
        profile = self._load(person_id)
        if carried is not None:
            profile = self._merge_carried(person_id, profile, carried)
        late = profile is not None and event.ts < profile.last_seen_ts
        outcome = process_event(event, person_id, profile, Trigger(event.ts, event.ts),
                                self.rule_set, self.profile_scorer)
        out["late"] = late
        if outcome.profile is None:  # erased: the marker stays, so older records stay out
            self._erase(person_id, profile)
            if outcome.erasure is not None:
                self._save(person_id, outcome.erasure)
            out["erased"] = True
            return out
        if outcome.erased:
            out["dropped_erased"] = True
            return out
        self._save(person_id, outcome.profile)
        if outcome.replay:
            out["replay"] = True
            return out
        out["scores"] = dict(outcome.scores)
        out["settled"] = [_label(label) for label in outcome.settled]
        out["actions"] = [_action(a) for a in outcome.actions]
        out["held_out"] = [_action(a) for a in outcome.held_out]
        self._index(person_id, outcome.profile)
        if self.on_event is not None:
            self.on_event(person_id, outcome.profile, outcome)
        return out

    # ------------------------------------------------------------ the sweep

    def sweep(self, now_ts: int) -> list[dict[str, Any]]:
        """Settle, against the watermark less the lateness, the snapshots of every person whose
        earliest deadline has passed; learn them. Returns the labels, as output entries."""
        self._next_sweep = now_ts + self.sweep_every_ms
        watermark = max(self.watermark, now_ts) - self.lateness_ms
        swept: list[dict[str, Any]] = []
        heap = self._deadlines
        while heap and heap[0][0] < watermark:
            deadline, person_id = heapq.heappop(heap)
            if self._indexed.get(person_id) != deadline:
                continue  # a stale entry: the person's deadline moved
            del self._indexed[person_id]
            profile = self._load(person_id)
            if profile is None:
                continue
            settled = settle_expired(profile.pending, self.specs, watermark)
            if settled:
                self.scorer.learn(settled)
                self._save(person_id, profile)
                swept.extend({"person_id": person_id, **_label(label)} for label in settled)
            self._index(person_id, profile)
        return swept

    def _index(self, person_id: str, profile: Profile) -> None:
        deadline = earliest_deadline(profile.pending, self.specs)
        if deadline is not None and self._indexed.get(person_id) != deadline:
            self._indexed[person_id] = deadline
            heapq.heappush(self._deadlines, (deadline, person_id))

    # ------------------------------------------------------------ identity and profiles

    def _resolve(self, accepted: Accepted) -> tuple[str, str | None]:
        """The person of a record, and the visitor whose anonymous profile it carries (if any)."""
        event = accepted.event
        key = accepted.key
        if isinstance(event, ClickstreamEvent):
            link = self.identity.get(key)
            if event.type == "erasure_requested":
                if link is not None:
                    del self.identity[key]
                    return link.customer_id, None
                return key, None
            resolution = resolve_click(key, link, event)
            if resolution.link_changed and resolution.link is not None:
                self.identity[key] = resolution.link
            return resolution.person_id, key if resolution.carry_anonymous else None
        if isinstance(event, ActionFeedbackEvent):
            return resolve_keyed(key, self.identity.get(key)), None
        return key, None

    def _merge_carried(self, person_id: str, profile: Profile | None, visitor_id: str) -> Profile:
        profile = profile or Profile(person_id=person_id)
        if visitor_id in profile.merged_from:
            return profile
        anonymous = self._load(visitor_id)
        if anonymous is not None:
            self.profiles.pop(visitor_id, None)
            self._indexed.pop(visitor_id, None)
            anonymous.person_id = person_id
            merge_profiles(profile, anonymous)
        profile.merged_from.append(visitor_id)
        return profile

    def _erase(self, person_id: str, profile: Profile | None) -> None:
        self.profiles.pop(person_id, None)
        self._indexed.pop(person_id, None)
        if profile is not None:
            for visitor_id in set(profile.visitors) | set(profile.merged_from):
                link = self.identity.get(visitor_id)
                if link is not None and link.customer_id == person_id:
                    del self.identity[visitor_id]

    def _load(self, person_id: str) -> Profile | None:
        stored = self.profiles.get(person_id)
        return decode_profile(stored) if stored is not None else None

    def _save(self, person_id: str, profile: Profile) -> None:
        self.profiles[person_id] = encode_profile(profile)


def _event_id(event: Any) -> str | None:
    if isinstance(event, ClickstreamEvent | ContactCentreEvent):
        return event.event_id
    return None


def _label(label: SettledLabel) -> dict[str, Any]:
    return {"intent": label.intent, "label": label.label, "snapshot_ts": label.snapshot_ts}


def _action(action: dict[str, Any]) -> dict[str, Any]:
    return {"action": action["action"], "channel": action["channel"], "rule": action["rule"]}


def replay_file(source: IO[str], sink: IO[bytes], rules_dir: Path, *,
                intents: Path | None = None, sweep_every_ms: int = DEFAULT_SWEEP_EVERY_MS,
                lateness_ms: int = DEFAULT_LATENESS_MS) -> Replay:
    """Read ``source`` (JSON lines), replay it, write one JSON line per record to ``sink``."""
    replay = Replay(load_rule_directory(rules_dir), load_intent_file(intents),
                    sweep_every_ms=sweep_every_ms, lateness_ms=lateness_ms)
    for line in replay.run(read_records(source)):
        sink.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    return replay
