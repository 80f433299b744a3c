"""The input contract: decode and validate records from the three input topics.

``decode_record`` is the single entry point. It never raises for bad input: it returns either
an :class:`Accepted` record carrying a validated event, or a :class:`Rejected` one with a short
machine code (a metric label) and a readable reason (for the dead-letter topic).

Ids (``event_id``, ``visitor_id``, ``customer_id``, ``session_id``, ``agent_id``, ``action_id``
and the record key) are keys of tables, topics and logs: one that is empty, only whitespace,
longer than :data:`ID_MAX_CHARS` or holds a control character is refused (code ``id``, or
``key`` for the record key), see :func:`id_problem`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from orchestrator.core.timestamps import TimestampError, check_plausible, parse_ts


class Source(StrEnum):
    """Which input a record came from; the runtime maps topic names onto these."""

    CLICKSTREAM = "clickstream"
    CONTACT_CENTRE = "contact-centre"
    ACTION_FEEDBACK = "action-feedback"


CLICKSTREAM_TYPES = frozenset({
    "page_view", "click", "search", "form_start", "form_submit", "login", "logout", "signup",
    "add_to_cart", "purchase",
})
CONTACT_CENTRE_TYPES = frozenset({
    "contact_started", "contact_ended", "case_opened", "case_resolved", "callback_requested",
    "cancellation_requested",
})
PRIVACY_TYPES = frozenset({"consent_updated", "erasure_requested"})
FEEDBACK_OUTCOMES = ("shown", "clicked", "dismissed", "converted")
#: Every event type a rule can name: unknown clickstream types are "other", feedback is "feedback".
EVENT_TYPES = tuple(sorted(CLICKSTREAM_TYPES | CONTACT_CENTRE_TYPES | PRIVACY_TYPES
                           | {"other", "feedback"}))


def _parse_ts(value: object) -> int:
    try:
        return parse_ts(value)
    except TimestampError as exc:
        raise ValueError(str(exc)) from None


#: Longest id accepted, in characters.
ID_MAX_CHARS = 256
# C0 and C1 control characters (NUL, newline, escape, ...), line and paragraph separators, and
# lone surrogates: nothing an id is made of, and each of them can break a log line or a key.
_NOT_IN_IDS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def id_problem(value: str) -> str | None:
    r"""What makes ``value`` unusable as an id, or None when it is fine.

    >>> [id_problem(v) for v in ("v-1", "", "  ", "v\x00")]
    [None, 'must not be empty', 'is only whitespace', 'contains a control character (U+0000 at position 1)']
    """
    if not value:
        return "must not be empty"
    if len(value) > ID_MAX_CHARS:
        return f"is {len(value)} characters long, more than the {ID_MAX_CHARS} allowed"
    bad = _NOT_IN_IDS.search(value)
    if bad is not None:
        return f"contains a control character (U+{ord(bad.group()):04X} at position {bad.start()})"
    if value.isspace():
        return "is only whitespace"
    return None


def _valid_id(value: str) -> str:
    problem = id_problem(value)
    if problem is not None:
        raise PydanticCustomError("invalid_id", problem)
    return value


Id = Annotated[str, AfterValidator(_valid_id)]
ShortText = Annotated[str, Field(max_length=256)]
EventTime = Annotated[int, BeforeValidator(_parse_ts)]


class _Record(BaseModel):
    # Strict: "123" is not an int and 1 is not a string. Unknown fields are ignored so that
    # producers can add fields without breaking the engine.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class Page(_Record):
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    category: ShortText | None = None
    title: Annotated[str, Field(max_length=1024)] | None = None


class Consent(_Record):
    service: bool
    marketing: bool


class ClickstreamEvent(_Record):
    """A web or app behaviour event, keyed by visitor id."""

    event_id: Id
    type: Annotated[str, Field(min_length=1, max_length=64)]
    ts: EventTime
    visitor_id: Id
    customer_id: Id | None = None
    session_id: Id | None = None
    page: Page | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    consent: Consent | None = None

    @model_validator(mode="after")
    def _consent_present(self) -> ClickstreamEvent:
        if self.type == "consent_updated" and self.consent is None:
            raise ValueError("consent_updated needs a 'consent' object {service, marketing}")
        return self

    @property
    def known_type(self) -> bool:
        return self.type in CLICKSTREAM_TYPES or self.type in PRIVACY_TYPES


class ContactCentreEvent(_Record):
    """A contact-centre event, keyed by customer id."""

    event_id: Id
    type: Literal[
        "contact_started", "contact_ended", "case_opened", "case_resolved",
        "callback_requested", "cancellation_requested", "consent_updated", "erasure_requested",
    ]
    ts: EventTime
    customer_id: Id
    channel: Literal["phone", "chat", "email"] | None = None
    reason: ShortText | None = None
    sentiment: Annotated[float, Field(ge=-1.0, le=1.0)] | None = None
    agent_id: Id | None = None
    consent: Consent | None = None

    @model_validator(mode="after")
    def _channel_and_consent(self) -> ContactCentreEvent:
        if self.type in CONTACT_CENTRE_TYPES and self.channel is None:
            raise ValueError(f"{self.type} needs 'channel' (phone, chat or email)")
        if self.type == "consent_updated" and self.consent is None:
            raise ValueError("consent_updated needs a 'consent' object {service, marketing}")
        return self


class ActionFeedbackEvent(_Record):
    """What became of an action we sent, keyed by visitor or customer id."""

    action_id: Id
    outcome: Literal["shown", "clicked", "dismissed", "converted"]
    ts: EventTime


Event = ClickstreamEvent | ContactCentreEvent | ActionFeedbackEvent


def event_type(event: Event) -> str:
    """The type rules and counts see: unknown clickstream types as ``other``, feedback as ``feedback``.

    >>> event_type(ActionFeedbackEvent(action_id="a", outcome="shown", ts=1700000000000))
    'feedback'
    """
    if isinstance(event, ActionFeedbackEvent):
        return "feedback"
    if isinstance(event, ClickstreamEvent) and not event.known_type:
        return "other"
    return event.type


def event_source(event: Event) -> Source:
    """Which input an event belongs to, from its model."""
    if isinstance(event, ClickstreamEvent):
        return Source.CLICKSTREAM
    if isinstance(event, ContactCentreEvent):
        return Source.CONTACT_CENTRE
    return Source.ACTION_FEEDBACK

_MODELS: dict[Source, type[_Record]] = {
    Source.CLICKSTREAM: ClickstreamEvent,
    Source.CONTACT_CENTRE: ContactCentreEvent,
    Source.ACTION_FEEDBACK: ActionFeedbackEvent,
}


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on what a record may be; both come from settings."""

    max_record_bytes: int = 65_536
    max_future_ms: int = 3_600_000


@dataclass(frozen=True, slots=True)
class Accepted:
    source: Source
    key: str
    event: Event


@dataclass(frozen=True, slots=True)
class Rejected:
    source: Source
    code: str
    reason: str


def decode_record(
    source: Source, key: bytes | None, value: bytes | None, now_ms: int,
    limits: DecodeLimits = DecodeLimits(),
) -> Accepted | Rejected:
    """Validate one raw record against the contract of ``source``.

    ``key`` must identify the person the way the contract says (visitor id on clickstream,
    customer id on contact-centre, either on action-feedback): tables are partitioned by it, so
    a record with a missing or mismatched key would land on the wrong profile.

    >>> r = decode_record(Source.CLICKSTREAM, b"v1", b'{"event_id":"e1","type":"page_view",'
    ...                   b'"ts":1700000000000,"visitor_id":"v1"}', now_ms=1700000000000)
    >>> r.event.type, r.key
    ('page_view', 'v1')
    >>> decode_record(Source.CLICKSTREAM, b"v1", b"{oops", now_ms=0).code
    'not_json'
    """
    if value is None:
        return Rejected(source, "empty", "record has no value (a tombstone is not an event)")
    if len(value) > limits.max_record_bytes:
        return Rejected(source, "oversized",
                        f"record is {len(value)} bytes, more than the {limits.max_record_bytes} allowed")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Rejected(source, "not_json", f"value is not UTF-8 JSON: {exc}")
    if not isinstance(data, dict):
        return Rejected(source, "not_object", f"value is JSON {type(data).__name__}, not an object")
    try:
        event = _MODELS[source].model_validate(data)
    except ValidationError as exc:
        only_ids = all(error["type"] == "invalid_id" for error in exc.errors(include_url=False))
        return Rejected(source, "id" if only_ids else "schema", _describe(exc))
    try:
        check_plausible(event.ts, now_ms, limits.max_future_ms)
    except TimestampError as exc:
        return Rejected(source, "timestamp", f"ts: {exc}")
    return _check_key(source, key, event)


def _check_key(source: Source, raw_key: bytes | None, event: Event) -> Accepted | Rejected:
    try:
        key = raw_key.decode() if raw_key else ""
    except UnicodeDecodeError:
        return Rejected(source, "key", "record key is not UTF-8")
    expected = (event.visitor_id if isinstance(event, ClickstreamEvent)
                else event.customer_id if isinstance(event, ContactCentreEvent) else None)
    if not key:
        what = {Source.CLICKSTREAM: "visitor_id", Source.CONTACT_CENTRE: "customer_id",
                Source.ACTION_FEEDBACK: "the visitor or customer id"}[source]
        return Rejected(source, "key", f"record has no key; {source} records are keyed by {what}")
    problem = id_problem(key)
    if problem is not None:
        return Rejected(source, "key", f"record key {problem}")
    if expected is not None and key != expected:
        field = "visitor_id" if source is Source.CLICKSTREAM else "customer_id"
        return Rejected(source, "key", f"record key '{key[:64]}' does not match {field} "
                                       f"'{expected[:64]}'")
    return Accepted(source, key, event)


def _describe(exc: ValidationError, most: int = 3) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:most]:
        where = ".".join(str(p) for p in error["loc"]) or "record"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required field is missing"
        parts.append(f"{where}: {message}")
    more = exc.error_count() - most
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
