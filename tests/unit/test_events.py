"""The input contract: what decode_record accepts, what it rejects, and that it never raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orchestrator.core.events import (
    CLICKSTREAM_TYPES,
    CONTACT_CENTRE_TYPES,
    EVENT_TYPES,
    PRIVACY_TYPES,
    Accepted,
    ActionFeedbackEvent,
    ClickstreamEvent,
    ContactCentreEvent,
    DecodeLimits,
    Rejected,
    Source,
    decode_record,
    event_source,
    event_type,
)

from .factories import T0

NOW = T0
HOUR_MS = 3_600_000
DEFAULT_LIMITS = DecodeLimits()


def click_record(**changes: Any) -> dict[str, Any]:
    """A valid page view with ``changes`` applied; a change to ``...`` removes the field."""
    record: dict[str, Any] = {"event_id": "e1", "type": "page_view", "ts": T0, "visitor_id": "v1"}
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def contact_record(**changes: Any) -> dict[str, Any]:
    """A valid contact start with ``changes`` applied; a change to ``...`` removes the field."""
    record: dict[str, Any] = {"event_id": "c-e1", "type": "contact_started", "ts": T0,
                              "customer_id": "c1", "channel": "phone"}
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def decode(source: Source, key: bytes | None, record: Any, now_ms: int = NOW,
           limits: DecodeLimits = DEFAULT_LIMITS) -> Accepted | Rejected:
    return decode_record(source, key, orjson.dumps(record), now_ms=now_ms, limits=limits)


def rejected(result: Accepted | Rejected) -> Rejected:
    assert isinstance(result, Rejected), f"expected a rejection, got {result!r}"
    return result


def accepted(result: Accepted | Rejected) -> Accepted:
    assert isinstance(result, Accepted), f"expected acceptance, got {result!r}"
    return result


# ---------------------------------------------------------------- accepted records

def test_minimal_page_view_is_accepted_keyed_by_its_visitor() -> None:
    result = accepted(decode(Source.CLICKSTREAM, b"v1", click_record()))
    assert result.source is Source.CLICKSTREAM
    assert result.key == "v1"
    assert isinstance(result.event, ClickstreamEvent)
    assert (result.event.event_id, result.event.type, result.event.ts) == ("e1", "page_view", T0)
    assert result.event.properties == {}


def test_iso_8601_ts_is_accepted_and_stored_as_epoch_milliseconds() -> None:
    result = accepted(decode(Source.CLICKSTREAM, b"v1", click_record(ts="2023-11-14T22:13:20Z")))
    assert result.event.ts == 1_700_000_000_000


def test_unknown_clickstream_type_is_accepted_but_not_marked_known() -> None:
    result = accepted(decode(Source.CLICKSTREAM, b"v1", click_record(type="video_played")))
    assert result.event.type == "video_played"
    assert result.event.known_type is False


@pytest.mark.parametrize("event_type", sorted(CLICKSTREAM_TYPES | {"erasure_requested"}))
def test_known_clickstream_types_are_marked_known(event_type: str) -> None:
    result = accepted(decode(Source.CLICKSTREAM, b"v1", click_record(type=event_type)))
    assert result.event.known_type is True


def test_unknown_extra_fields_are_ignored_so_producers_can_add_fields() -> None:
    result = accepted(decode(Source.CLICKSTREAM, b"v1", click_record(new_field={"x": 1})))
    assert not hasattr(result.event, "new_field")


def test_consent_updated_with_consent_is_accepted() -> None:
    record = click_record(type="consent_updated", consent={"service": False, "marketing": True})
    result = accepted(decode(Source.CLICKSTREAM, b"v1", record))
    assert (result.event.consent.service, result.event.consent.marketing) == (False, True)
    assert "consent_updated" in PRIVACY_TYPES


def test_contact_centre_event_is_accepted_keyed_by_its_customer() -> None:
    result = accepted(decode(Source.CONTACT_CENTRE, b"c1",
                             contact_record(reason="billing", sentiment=-0.5, agent_id="a7")))
    assert isinstance(result.event, ContactCentreEvent)
    assert result.key == "c1"
    assert (result.event.channel, result.event.reason, result.event.sentiment) == ("phone", "billing", -0.5)


def test_contact_centre_privacy_event_needs_no_channel() -> None:
    result = accepted(decode(Source.CONTACT_CENTRE, b"c1",
                             contact_record(type="erasure_requested", channel=...)))
    assert result.event.channel is None


def test_feedback_is_accepted_with_a_visitor_or_customer_key() -> None:
    record = {"action_id": "a1", "outcome": "clicked", "ts": T0}
    for key in (b"v1", b"c1"):
        result = accepted(decode(Source.ACTION_FEEDBACK, key, record))
        assert isinstance(result.event, ActionFeedbackEvent)
        assert result.key == key.decode()
        assert (result.event.action_id, result.event.outcome) == ("a1", "clicked")


# ---------------------------------------------------------------- rejections, by code

def test_record_without_a_value_is_rejected_as_empty() -> None:
    result = rejected(decode_record(Source.CLICKSTREAM, b"v1", None, now_ms=NOW))
    assert result.code == "empty"
    assert result.source is Source.CLICKSTREAM
    assert "tombstone" in result.reason


def test_record_larger_than_the_limit_is_rejected_as_oversized() -> None:
    value = orjson.dumps(click_record(properties={"blob": "x" * 300}))
    result = rejected(decode_record(Source.CLICKSTREAM, b"v1", value, now_ms=NOW,
                                    limits=DecodeLimits(max_record_bytes=256)))
    assert result.code == "oversized"
    assert f"{len(value)} bytes" in result.reason
    assert "256 allowed" in result.reason


def test_record_exactly_at_the_size_limit_is_accepted() -> None:
    value = orjson.dumps(click_record())
    at_limit = decode_record(Source.CLICKSTREAM, b"v1", value, now_ms=NOW,
                             limits=DecodeLimits(max_record_bytes=len(value)))
    over_limit = decode_record(Source.CLICKSTREAM, b"v1", value, now_ms=NOW,
                               limits=DecodeLimits(max_record_bytes=len(value) - 1))
    assert isinstance(at_limit, Accepted)
    assert rejected(over_limit).code == "oversized"


@pytest.mark.parametrize("value", [b"{oops", b"", b"\xff\xfe{}", b'{"a": 1} trailing', b"NaN"])
def test_bytes_that_are_not_utf8_json_are_rejected_as_not_json(value: bytes) -> None:
    assert rejected(decode_record(Source.CLICKSTREAM, b"v1", value, now_ms=NOW)).code == "not_json"


@pytest.mark.parametrize(("value", "type_name"),
                         [(b"[1, 2]", "list"), (b'"text"', "str"), (b"42", "int"), (b"null", "NoneType")])
def test_json_that_is_not_an_object_is_rejected_as_not_object(value: bytes, type_name: str) -> None:
    result = rejected(decode_record(Source.CLICKSTREAM, b"v1", value, now_ms=NOW))
    assert result.code == "not_object"
    assert type_name in result.reason


def test_missing_required_field_is_a_schema_rejection_naming_the_field() -> None:
    result = rejected(decode(Source.CLICKSTREAM, b"v1", click_record(visitor_id=...)))
    assert result.code == "schema"
    assert "visitor_id: required field is missing" in result.reason


def test_numeric_text_ts_that_is_not_iso_is_a_schema_rejection() -> None:
    result = rejected(decode(Source.CLICKSTREAM, b"v1", click_record(ts="123")))
    assert result.code == "schema"
    assert result.reason.startswith("ts:")
    assert "not ISO-8601" in result.reason


def test_ts_without_a_zone_is_a_schema_rejection() -> None:
    result = rejected(decode(Source.CLICKSTREAM, b"v1", click_record(ts="2023-11-14T22:13:20")))
    assert result.code == "schema"
    assert "no zone" in result.reason


@pytest.mark.parametrize(("field", "value"), [
    ("visitor_id", 123),
    ("event_id", 1),
    ("customer_id", 42),
    ("session_id", True),
    ("type", ["page_view"]),
    ("ts", True),
    ("properties", [1, 2]),
    ("consent", {"service": "yes", "marketing": False}),
    ("page", {"url": 5}),
])
def test_typing_is_strict_so_a_value_of_the_wrong_type_is_a_schema_rejection(field: str, value: Any) -> None:
    result = rejected(decode(Source.CLICKSTREAM, b"v1", click_record(**{field: value})))
    assert result.code == "schema"
    assert result.reason.startswith(field)


@pytest.mark.parametrize(("field", "value", "code"), [
    ("event_id", "", "id"), ("visitor_id", "v" * 257, "id"), ("type", "", "schema"),
    ("page", {"url": ""}, "schema"),
])
def test_empty_or_overlong_text_is_rejected_as_a_bad_id_or_schema(field: str, value: Any,
                                                                  code: str) -> None:
    record = click_record(**{field: value})
    key = record["visitor_id"].encode() if "visitor_id" in record else b"v1"
    result = rejected(decode(Source.CLICKSTREAM, key, record))
    assert result.code == code
    assert result.reason.startswith(field)


def test_schema_rejection_lists_at_most_three_problems_and_counts_the_rest() -> None:
    result = rejected(decode(Source.CLICKSTREAM, b"v1", {"properties": 1}))
    assert result.code == "schema"
    assert result.reason.count(";") == 3
    assert result.reason.endswith("and 2 more")


def test_ts_in_seconds_is_rejected_as_before_2000() -> None:
    result = rejected(decode(Source.CLICKSTREAM, b"v1", click_record(ts=1_700_000_000)))
    assert result.code == "timestamp"
    assert "before 2000" in result.reason


def test_ts_too_far_in_the_future_is_rejected() -> None:
    result = rejected(decode(Source.CLICKSTREAM, b"v1", click_record(ts=NOW + HOUR_MS + 1)))
    assert result.code == "timestamp"
    assert "in the future" in result.reason


def test_ts_within_the_allowed_future_skew_is_accepted() -> None:
    assert isinstance(decode(Source.CLICKSTREAM, b"v1", click_record(ts=NOW + HOUR_MS)), Accepted)


def test_future_skew_comes_from_the_limits() -> None:
    strict = DecodeLimits(max_future_ms=0)
    assert rejected(decode(Source.CLICKSTREAM, b"v1", click_record(ts=NOW + 1), limits=strict)).code \
        == "timestamp"


@pytest.mark.parametrize("key", [None, b""])
def test_record_without_a_key_is_rejected_saying_what_the_key_should_be(key: bytes | None) -> None:
    result = rejected(decode(Source.CLICKSTREAM, key, click_record()))
    assert result.code == "key"
    assert "keyed by visitor_id" in result.reason


def test_clickstream_key_that_differs_from_the_visitor_id_is_rejected() -> None:
    result = rejected(decode(Source.CLICKSTREAM, b"v2", click_record()))
    assert result.code == "key"
    assert "'v2'" in result.reason
    assert "visitor_id 'v1'" in result.reason


def test_contact_centre_key_must_be_the_customer_id() -> None:
    result = rejected(decode(Source.CONTACT_CENTRE, b"v1", contact_record()))
    assert result.code == "key"
    assert "customer_id 'c1'" in result.reason
    no_key = rejected(decode(Source.CONTACT_CENTRE, None, contact_record()))
    assert "keyed by customer_id" in no_key.reason


def test_key_that_is_not_utf8_is_rejected() -> None:
    result = rejected(decode(Source.CLICKSTREAM, b"\xff\xfe", click_record()))
    assert result.code == "key"
    assert "UTF-8" in result.reason


def test_feedback_without_a_key_is_rejected() -> None:
    result = rejected(decode(Source.ACTION_FEEDBACK, None, {"action_id": "a1", "outcome": "shown", "ts": T0}))
    assert result.code == "key"


def test_feedback_with_an_unknown_outcome_is_a_schema_rejection() -> None:
    record = {"action_id": "a1", "outcome": "liked", "ts": T0}
    result = rejected(decode(Source.ACTION_FEEDBACK, b"v1", record))
    assert result.code == "schema"
    assert result.reason.startswith("outcome")


def test_unknown_contact_centre_type_is_rejected() -> None:
    result = rejected(decode(Source.CONTACT_CENTRE, b"c1", contact_record(type="video_played")))
    assert result.code == "schema"
    assert result.reason.startswith("type")


def test_contact_event_without_a_channel_is_rejected_naming_the_channel() -> None:
    result = rejected(decode(Source.CONTACT_CENTRE, b"c1", contact_record(channel=...)))
    assert result.code == "schema"
    assert "contact_started needs 'channel'" in result.reason


def test_contact_event_with_an_unknown_channel_is_rejected() -> None:
    assert rejected(decode(Source.CONTACT_CENTRE, b"c1", contact_record(channel="pigeon"))).code == "schema"


@pytest.mark.parametrize("sentiment", [-1.01, 1.5])
def test_sentiment_outside_minus_one_to_one_is_rejected(sentiment: float) -> None:
    result = rejected(decode(Source.CONTACT_CENTRE, b"c1", contact_record(sentiment=sentiment)))
    assert result.code == "schema"


@pytest.mark.parametrize(("source", "key", "record"), [
    (Source.CLICKSTREAM, b"v1", click_record(type="consent_updated")),
    (Source.CONTACT_CENTRE, b"c1", contact_record(type="consent_updated", channel=...)),
])
def test_consent_updated_without_consent_is_rejected(source: Source, key: bytes, record: dict) -> None:
    result = rejected(decode(source, key, record))
    assert result.code == "schema"
    assert "consent_updated needs a 'consent' object" in result.reason


# ---------------------------------------------------------------- properties

json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
contract_fields = st.sampled_from([
    "event_id", "type", "ts", "visitor_id", "customer_id", "session_id", "page", "properties",
    "consent", "channel", "reason", "sentiment", "agent_id", "action_id", "outcome",
])
contract_values = json_values | st.sampled_from([
    "page_view", "contact_started", "consent_updated", "erasure_requested", "clicked", "phone",
    "2023-11-14T22:13:20Z", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "v1", "c1",
    T0, NOW + 10 * HOUR_MS, 1e300, -1e300, {"url": "/x", "category": "billing"},
    {"service": True, "marketing": False},
])
json_objects = st.dictionaries(contract_fields | st.text(max_size=8), contract_values, max_size=10)
keys = st.none() | st.binary(max_size=12) | st.sampled_from([b"v1", b"c1"])


@settings(max_examples=300, deadline=None)
@given(source=st.sampled_from(list(Source)), key=keys, value=st.none() | st.binary(max_size=200))
def test_decode_never_raises_for_arbitrary_bytes(source: Source, key: bytes | None,
                                                value: bytes | None) -> None:
    result = decode_record(source, key, value, now_ms=NOW)
    assert isinstance(result, Accepted | Rejected)
    assert result.source is source


@settings(max_examples=300, deadline=None)
@given(source=st.sampled_from(list(Source)), key=keys, record=json_objects)
def test_decode_never_raises_for_arbitrary_json_objects(source: Source, key: bytes | None,
                                                       record: dict[str, Any]) -> None:
    result = decode_record(source, key, orjson.dumps(record), now_ms=NOW)
    assert isinstance(result, Accepted | Rejected)
    assert result.source is source
    if isinstance(result, Rejected):
        assert result.code in {"schema", "id", "timestamp", "key"}
        assert result.reason


# Ids a producer may send: any text of 1-256 characters without control characters, not only
# whitespace.
id_characters = st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"))
ids = st.text(id_characters, min_size=1, max_size=256).filter(lambda text: not text.isspace())
optional_text = st.none() | st.text(max_size=256)
pages = st.fixed_dictionaries(
    {"url": st.text(min_size=1, max_size=2048)},
    optional={"category": optional_text, "title": st.none() | st.text(max_size=1024)},
)
consents = st.fixed_dictionaries({"service": st.booleans(), "marketing": st.booleans()})
valid_clickstream_records = st.fixed_dictionaries(
    {
        "event_id": ids,
        "type": st.sampled_from(sorted(CLICKSTREAM_TYPES | {"erasure_requested"}))
        | st.text(min_size=1, max_size=64).filter(lambda t: t != "consent_updated"),
        "ts": st.integers(min_value=946_684_800_000, max_value=NOW + HOUR_MS),
        "visitor_id": ids,
    },
    optional={
        "customer_id": st.none() | ids,
        "session_id": st.none() | ids,
        "page": st.none() | pages,
        "properties": st.dictionaries(st.text(max_size=8), json_values, max_size=4),
        "consent": st.none() | consents,
    },
)


@settings(max_examples=200, deadline=None)
@given(record=valid_clickstream_records)
def test_any_valid_clickstream_record_is_accepted_with_its_fields_preserved(record: dict[str, Any]) -> None:
    result = decode_record(Source.CLICKSTREAM, record["visitor_id"].encode(), orjson.dumps(record),
                           now_ms=NOW)
    result = accepted(result)
    assert result.key == record["visitor_id"]
    event = result.event
    assert isinstance(event, ClickstreamEvent)
    assert (event.event_id, event.type, event.ts, event.visitor_id) == (
        record["event_id"], record["type"], record["ts"], record["visitor_id"])
    assert event.customer_id == record.get("customer_id")
    assert event.session_id == record.get("session_id")
    assert event.properties == orjson.loads(orjson.dumps(record.get("properties", {})))
    page = record.get("page")
    if page is None:
        assert event.page is None
    else:
        assert (event.page.url, event.page.category, event.page.title) == (
            page["url"], page.get("category"), page.get("title"))
    consent = record.get("consent")
    if consent is None:
        assert event.consent is None
    else:
        assert event.consent.model_dump() == consent


# ---------------------------------------------------------------- hostile input: the strict contract

def feedback_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"action_id": "a1", "outcome": "clicked", "ts": T0}
    record.update(changes)
    return record


#: Every id of the contract: (source, field, a valid record builder, its key).
ID_FIELDS = [
    (Source.CLICKSTREAM, "event_id", click_record, b"v1"),
    (Source.CLICKSTREAM, "visitor_id", click_record, b"v1"),
    (Source.CLICKSTREAM, "customer_id", click_record, b"v1"),
    (Source.CLICKSTREAM, "session_id", click_record, b"v1"),
    (Source.CONTACT_CENTRE, "event_id", contact_record, b"c1"),
    (Source.CONTACT_CENTRE, "customer_id", contact_record, b"c1"),
    (Source.CONTACT_CENTRE, "agent_id", contact_record, b"c1"),
    (Source.ACTION_FEEDBACK, "action_id", feedback_record, b"v1"),
]
id_fields = pytest.mark.parametrize(("source", "field", "build", "key"), ID_FIELDS,
                                    ids=[f"{s.value}.{f}" for s, f, _, _ in ID_FIELDS])
control_characters = st.characters(min_codepoint=0, max_codepoint=0x1F) \
    | st.characters(min_codepoint=0x7F, max_codepoint=0x9F) | st.sampled_from(["\u2028", "\u2029"])
only_whitespace = st.text(st.sampled_from(" \u00a0\u2003\u3000"), min_size=1, max_size=40)


def rejected_id(source: Source, field: str, build: Any, key: bytes, value: str) -> Rejected:
    result = rejected(decode(source, key, build(**{field: value})))
    assert result.code == "id", result
    assert result.reason.startswith(f"{field}: "), result.reason
    return result


@id_fields
def test_an_empty_id_is_rejected(source: Source, field: str, build: Any, key: bytes) -> None:
    assert "must not be empty" in rejected_id(source, field, build, key, "").reason


@id_fields
@settings(max_examples=25, deadline=None)
@given(value=only_whitespace)
def test_an_id_of_only_whitespace_is_rejected(source: Source, field: str, build: Any, key: bytes,
                                              value: str) -> None:
    assert "is only whitespace" in rejected_id(source, field, build, key, value).reason


@id_fields
@settings(max_examples=25, deadline=None)
@given(before=st.text(id_characters, max_size=100), bad=control_characters,
       after=st.text(id_characters, max_size=100))
def test_an_id_with_a_control_character_is_rejected_naming_it(
        source: Source, field: str, build: Any, key: bytes, before: str, bad: str, after: str) -> None:
    reason = rejected_id(source, field, build, key, before + bad + after).reason
    assert "contains a control character" in reason
    first = next(i for i, c in enumerate(before + bad) if not id_characters_only(c))
    assert f"U+{ord((before + bad)[first]):04X} at position {first}" in reason


def id_characters_only(character: str) -> bool:
    return not (ord(character) < 0x20 or 0x7F <= ord(character) <= 0x9F or character in "\u2028\u2029")


@id_fields
@settings(max_examples=25, deadline=None)
@given(value=st.text(id_characters, min_size=257, max_size=2000))
def test_an_absurdly_long_id_is_rejected_saying_how_long(source: Source, field: str, build: Any,
                                                        key: bytes, value: str) -> None:
    reason = rejected_id(source, field, build, key, value).reason
    assert f"is {len(value)} characters long, more than the 256 allowed" in reason


@id_fields
@settings(max_examples=25, deadline=None)
@given(value=ids)
def test_any_id_without_those_faults_is_accepted(source: Source, field: str, build: Any,
                                                 key: bytes, value: str) -> None:
    record = build(**{field: value})
    if field in ("visitor_id",) or (source is Source.CONTACT_CENTRE and field == "customer_id"):
        key = value.encode()  # the key must be that id
    assert getattr(accepted(decode(source, key, record)).event, field) == value


def test_a_bad_id_among_other_problems_is_a_schema_rejection_naming_both() -> None:
    result = rejected(decode(Source.CLICKSTREAM, b"v1", click_record(event_id=" ", type=...)))
    assert result.code == "schema"
    assert "event_id: is only whitespace" in result.reason
    assert "type: required field is missing" in result.reason


@pytest.mark.parametrize(("raw_key", "problem"), [
    (b" ", "is only whitespace"), (b"v\x00", "contains a control character (U+0000 at position 1)"),
    (b"v" * 257, "more than the 256 allowed"),
])
def test_a_feedback_key_that_is_not_a_usable_id_is_rejected(raw_key: bytes, problem: str) -> None:
    result = rejected(decode(Source.ACTION_FEEDBACK, raw_key, feedback_record()))
    assert result.code == "key"
    assert result.reason.startswith("record key ")
    assert problem in result.reason


@settings(max_examples=200, deadline=None)
@given(ts=st.floats(allow_nan=False, allow_infinity=False)
       | st.sampled_from([float(T0), 1.7e12, T0 + 0.5]))
def test_a_float_ts_is_rejected_even_a_whole_one(ts: float) -> None:
    for source, record in ((Source.CLICKSTREAM, click_record(ts=ts)),
                           (Source.CONTACT_CENTRE, contact_record(ts=ts)),
                           (Source.ACTION_FEEDBACK, feedback_record(ts=ts))):
        result = rejected(decode(source, b"c1" if source is Source.CONTACT_CENTRE else b"v1", record))
        assert result.code == "schema"
        assert result.reason.startswith("ts: must be integer epoch milliseconds, not a float")


zoned_iso_texts = st.builds(
    lambda naive, zone, z: (naive.replace(tzinfo=zone).isoformat().replace("+00:00", "Z") if z
                            else naive.replace(tzinfo=zone).isoformat()),
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2030, 1, 1)),
    st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(text=zoned_iso_texts, junk=st.text(min_size=1, max_size=20))
@example(text="2023-11-14T22:13:20Z", junk="\x00junk")
@example(text="2023-11-14T22:13:20Z", junk="\n")
@example(text="2023-11-14T22:13:20+00:00", junk="\x00")
def test_an_iso_ts_with_anything_after_it_is_rejected(text: str, junk: str) -> None:
    assert isinstance(decode(Source.CLICKSTREAM, b"v1", click_record(ts=text), now_ms=NOW + 10**12),
                      Accepted)
    result = rejected(decode(Source.CLICKSTREAM, b"v1", click_record(ts=text + junk), now_ms=NOW + 10**12))
    assert result.code == "schema"
    assert result.reason.startswith("ts: ")
    assert "is not ISO-8601 with a zone" in result.reason


@pytest.mark.parametrize("text", ["2023-W46-2T22:13:20Z", "20231114T221320Z", "2023-318T22:13:20Z",
                                  "2023-11-14T22:13:20 Z", "2023-11-14t22:13:20z",
                                  "\uff12\uff10\uff12\uff13-11-14T22:13:20Z"])
def test_iso_forms_outside_the_contract_are_rejected(text: str) -> None:
    assert rejected(decode(Source.CLICKSTREAM, b"v1", click_record(ts=text))).code == "schema"


# ---------------------------------------------------------------- the type and source rules see

def test_event_type_names_unknown_clickstream_types_other_and_feedback_feedback() -> None:
    assert event_type(ClickstreamEvent.model_validate(click_record())) == "page_view"
    assert event_type(ClickstreamEvent.model_validate(click_record(type="video_play"))) == "other"
    assert event_type(ClickstreamEvent.model_validate(click_record(type="erasure_requested"))) \
        == "erasure_requested"
    assert event_type(ContactCentreEvent.model_validate(contact_record())) == "contact_started"
    assert event_type(ActionFeedbackEvent(action_id="a", outcome="shown", ts=T0)) == "feedback"
    assert set(EVENT_TYPES) == (CLICKSTREAM_TYPES | CONTACT_CENTRE_TYPES | PRIVACY_TYPES
                                | {"other", "feedback"})


def test_event_source_follows_the_model() -> None:
    assert event_source(ClickstreamEvent.model_validate(click_record())) is Source.CLICKSTREAM
    assert event_source(ContactCentreEvent.model_validate(contact_record())) is Source.CONTACT_CENTRE
    assert event_source(ActionFeedbackEvent(action_id="a", outcome="shown", ts=T0)) is Source.ACTION_FEEDBACK
