"""Records of the internal person-events topic: what one worker hands to the owner of a person.

An input record whose person lives on another partition (a logged-in visitor's records, feedback
keyed by a linked visitor) is forwarded once, keyed by the person id, as one of:

- :class:`Forwarded` (``"kind": "event"``): the input record, for its person;
- :class:`Carried` (``"kind": "carry"``): a visitor's first logged-in record together with the
  visitor's anonymous profile, merged into the person's before the record is applied;
- :class:`Unlink` (``"kind": "unlink"``, keyed by a visitor id): forget the visitor (the person
  was erased);
- :class:`Tick` (``"kind": "tick"``, no key): the worker's own clock for a partition, which
  settles quiet people's labels and fires due journey timers (``"journeys": true``: a tick of
  the journeys' faster schedule, which fires timers only).

Every envelope is validated before use (:func:`decode_envelope`): a malformed one raises
:class:`EnvelopeError` with the reason, and the shell dead-letters it. The topic is internal:
only the engine's own principal may write it (see ``deploy/README.md``), so validation guards
against version skew and corruption, not against a forger with write access.

>>> raw = encode_envelope(Forwarded(Source.CLICKSTREAM, b"v1", 1700000000000, b'{"x": 1}'))
>>> decode_envelope(raw)
Forwarded(source=<Source.CLICKSTREAM: 'clickstream'>, key=b'v1', kafka_ts=1700000000000, value=b'{"x": 1}')
>>> decode_envelope(b'{"kind": "event", "source": "clickstream", "key": "v1", "value": "{}"}')
Traceback (most recent call last):
...
orchestrator.core.envelopes.EnvelopeError: event envelope: 'kafka_ts' must be an integer
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from orchestrator.core.events import Source

_SOURCES = {source.value: source for source in Source}


class EnvelopeError(ValueError):
    """A person-events record that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Forwarded:
    source: Source
    key: bytes | None
    kafka_ts: int
    value: bytes


@dataclass(frozen=True, slots=True)
class Carried:
    source: Source
    key: bytes | None
    kafka_ts: int
    value: bytes
    visitor_id: str
    #: The visitor's anonymous profile as stored (a mapping), None when the visitor had none.
    profile: dict[str, Any] | None
    #: The visitor's journey state (``{"active": ..., "past": ...}``, as
    #: ``JourneyState.to_dict`` gives it) handed over to the customer; None: none.
    journeys: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Unlink:
    kafka_ts: int


@dataclass(frozen=True, slots=True)
class Tick:
    #: A tick of the journeys' schedule: fires due timers; the label sweep keeps its own ticks.
    journeys: bool = False


Envelope = Forwarded | Carried | Unlink | Tick

TICK = b'{"kind":"tick"}'
JOURNEY_TICK = b'{"kind":"tick","journeys":true}'


def encode_envelope(envelope: Envelope) -> bytes:
    if isinstance(envelope, Tick):
        return JOURNEY_TICK if envelope.journeys else TICK
    if isinstance(envelope, Unlink):
        return orjson.dumps({"kind": "unlink", "kafka_ts": envelope.kafka_ts})
    body: dict[str, Any] = {
        "kind": "carry" if isinstance(envelope, Carried) else "event",
        "source": envelope.source.value,
        "key": envelope.key.decode() if envelope.key is not None else None,
        "kafka_ts": envelope.kafka_ts,
        # The input was accepted as UTF-8 JSON, so it travels as text.
        "value": envelope.value.decode(),
    }
    if isinstance(envelope, Carried):
        body["visitor_id"] = envelope.visitor_id
        body["profile"] = envelope.profile
        if envelope.journeys is not None:
            body["journeys"] = envelope.journeys
    return orjson.dumps(body)


def decode_envelope(value: bytes | None) -> Envelope:
    """Parse and validate one person-events record value."""
    if value is None:
        raise EnvelopeError("a person-events record needs a value")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise EnvelopeError("an envelope is a JSON object")
    kind = body.get("kind")
    if kind == "tick":
        return Tick(journeys=body.get("journeys") is True)
    if kind == "unlink":
        return Unlink(_int(body, "kafka_ts", kind, default=0))
    if kind not in ("event", "carry"):
        raise EnvelopeError(f"unknown envelope kind {kind!r}")
    source = _SOURCES.get(body.get("source"))  # type: ignore[arg-type]
    if source is None:
        raise EnvelopeError(f"{kind} envelope: 'source' must be one of {', '.join(_SOURCES)}")
    key = body.get("key")
    raw = body.get("value")
    if key is not None and not isinstance(key, str):
        raise EnvelopeError(f"{kind} envelope: 'key' must be a string or null")
    if not isinstance(raw, str):
        raise EnvelopeError(f"{kind} envelope: 'value' must be the record as a string")
    kafka_ts = _int(body, "kafka_ts", kind)
    raw_key = key.encode() if key is not None else None
    if kind == "event":
        return Forwarded(source, raw_key, kafka_ts, raw.encode())
    visitor_id = body.get("visitor_id")
    profile = body.get("profile")
    if not isinstance(visitor_id, str) or not visitor_id:
        raise EnvelopeError("carry envelope: 'visitor_id' must be a non-empty string")
    if profile is not None and not (isinstance(profile, dict)
                                    and isinstance(profile.get("person_id"), str)):
        raise EnvelopeError("carry envelope: 'profile' must be a stored profile or null")
    journeys = body.get("journeys")
    if journeys is not None:
        problem = _journey_state_problem(journeys)
        if problem is not None:
            raise EnvelopeError(f"carry envelope: 'journeys' {problem}")
    return Carried(source, raw_key, kafka_ts, raw.encode(), visitor_id, profile, journeys)


def _journey_state_problem(value: Any) -> str | None:
    """What is wrong with a carried journey state, or None: ``{"active": {journey: [entry,
    step, entered ts, step ts, due ts or 0]}, "past": {journey: [entries, last exit ts]}}``."""
    if not isinstance(value, dict) or set(value) - {"active", "past"}:
        return "must be an object of 'active' and 'past'"
    active, past = value.get("active", {}), value.get("past", {})
    if not isinstance(active, dict) or not isinstance(past, dict):
        return "'active' and 'past' must be objects"
    for journey_id, position in active.items():
        if not (isinstance(position, list) and len(position) == 5 and isinstance(position[1], str)
                and all(_is_int(position[i]) for i in (0, 2, 3, 4))):
            return f"active {journey_id!r} must be [entry, step, entered, reached, due]"
    for journey_id, entry in past.items():
        if not (isinstance(entry, list) and len(entry) == 2 and all(_is_int(v) for v in entry)):
            return f"past {journey_id!r} must be [entries, last exit]"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(body: dict[str, Any], name: str, kind: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise EnvelopeError(f"{kind} envelope: {name!r} must be an integer")
    return value
