"""Event time: epoch milliseconds or zoned ISO-8601 text, and the plausibility window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orchestrator.core.timestamps import EARLIEST_PLAUSIBLE_MS, TimestampError, check_plausible, parse_ts

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_MS = 3_600_000


def epoch_ms(moment: datetime) -> int:
    """Exact epoch milliseconds by integer arithmetic (no float on the way)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


fixed_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))
zoned_datetimes_to_the_ms = st.builds(
    lambda naive, millis, zone: naive.replace(microsecond=millis * 1000, tzinfo=zone),
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=0, max_value=999),
    st.one_of(st.just(UTC), fixed_offsets),
)


def test_epoch_milliseconds_integer_is_returned_unchanged() -> None:
    assert parse_ts(1_700_000_000_000) == 1_700_000_000_000


def test_iso_text_in_utc_and_with_an_offset_name_the_same_instant() -> None:
    assert parse_ts("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert parse_ts("2023-11-14T22:13:20+00:00") == 1_700_000_000_000
    assert parse_ts("2023-11-14T23:13:20+01:00") == 1_700_000_000_000
    assert parse_ts("2023-11-14T17:13:20-05:00") == 1_700_000_000_000


def test_iso_text_keeps_its_milliseconds() -> None:
    assert parse_ts("2023-11-14T22:13:20.123Z") == 1_700_000_000_123


def test_iso_text_keeps_its_milliseconds_where_float_seconds_cannot_represent_them_exactly() -> None:
    # 1082228670.370 s is not exact in binary floating point; truncating float * 1000 loses 1 ms.
    assert parse_ts("2004-04-17T19:04:30.370Z") == 1_082_228_670_370
    assert parse_ts("2039-05-03T04:12:37.765+00:00") == 2_188_008_757_765


@settings(max_examples=200, deadline=None)
@given(moment=zoned_datetimes_to_the_ms)
@example(moment=datetime(2004, 4, 17, 19, 4, 30, 370_000, tzinfo=UTC))
def test_zoned_datetime_as_iso_text_and_as_epoch_ms_give_the_same_event_time(moment: datetime) -> None:
    expected = epoch_ms(moment)
    from_text = parse_ts(moment.isoformat())
    from_int = parse_ts(expected)
    assert from_text == from_int == expected
    assert EPOCH + timedelta(milliseconds=from_text) == moment


@pytest.mark.parametrize("number", [1_700_000_000_000.0, 1_700_000_000_000.5, 1.7e12, 0.0])
def test_a_float_is_rejected_even_a_whole_one(number: float) -> None:
    with pytest.raises(TimestampError, match="must be integer epoch milliseconds, not a float"):
        parse_ts(number)


@settings(max_examples=200, deadline=None)
@given(number=st.floats())
def test_no_float_is_an_event_time(number: float) -> None:
    with pytest.raises(TimestampError, match="integer epoch milliseconds"):
        parse_ts(number)


@settings(max_examples=200, deadline=None)
@given(moment=zoned_datetimes_to_the_ms, junk=st.text(min_size=1, max_size=30))
@example(moment=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), junk="\x00junk")
def test_iso_text_followed_by_anything_is_rejected(moment: datetime, junk: str) -> None:
    for text in (moment.isoformat(), moment.isoformat().replace("+00:00", "Z")):
        assert parse_ts(text) == epoch_ms(moment)
        with pytest.raises(TimestampError, match="is not ISO-8601 with a zone"):
            parse_ts(text + junk)


def test_iso_text_with_a_nul_is_rejected_and_the_message_shows_it_escaped() -> None:
    with pytest.raises(TimestampError, match=r"\\x00"):
        parse_ts("2023-11-14T22:13:20Z\x00junk")


@pytest.mark.parametrize("text", ["2023-11-14T22:13:20Z", "2023-11-14 22:13:20Z",
                                  "2023-11-14T22:13:20.5Z", "2023-11-14T22:13:20,500Z",
                                  "2023-11-14T22:13:20.500000000Z", "2023-11-14T23:13:20+0100",
                                  "2023-11-14T23:13:20+01", "2023-11-14T22:13Z"])
def test_the_accepted_iso_forms(text: str) -> None:
    assert parse_ts(text) in (1_700_000_000_000, 1_700_000_000_500, 1_699_999_980_000)


@pytest.mark.parametrize("text", ["2023-13-14T22:13:20Z", "2023-11-14T22:13:20+24:00",
                                  "2023-02-30T00:00:00Z"])
def test_iso_shaped_text_that_is_no_date_is_rejected(text: str) -> None:
    with pytest.raises(TimestampError, match="not a valid ISO-8601 date and time"):
        parse_ts(text)


def test_an_overlong_ts_text_is_rejected_and_shown_cut() -> None:
    with pytest.raises(TimestampError, match="…"):
        parse_ts("2023-11-14T22:13:20Z" + "9" * 10_000)


def test_iso_text_without_a_zone_is_rejected_as_ambiguous() -> None:
    with pytest.raises(TimestampError, match="has no zone"):
        parse_ts("2023-11-14T22:13:20")


@pytest.mark.parametrize("text", ["123", "yesterday", "", "14/11/2023 22:13"])
def test_text_that_is_not_iso_8601_is_rejected(text: str) -> None:
    with pytest.raises(TimestampError, match="is not ISO-8601"):
        parse_ts(text)


@pytest.mark.parametrize("flag", [True, False])
def test_boolean_is_rejected_although_python_counts_it_as_an_int(flag: bool) -> None:
    with pytest.raises(TimestampError, match="boolean"):
        parse_ts(flag)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_float_is_rejected(number: float) -> None:
    with pytest.raises(TimestampError, match="not a finite number"):
        parse_ts(number)


@pytest.mark.parametrize(("value", "type_name"), [(None, "NoneType"), ([1], "list"), ({}, "dict")])
def test_other_types_are_rejected_naming_the_type(value: object, type_name: str) -> None:
    with pytest.raises(TimestampError, match=type_name):
        parse_ts(value)


def test_timestamp_error_is_a_value_error() -> None:
    assert issubclass(TimestampError, ValueError)


def test_first_millisecond_of_2000_is_plausible() -> None:
    assert check_plausible(EARLIEST_PLAUSIBLE_MS, now_ms=1_700_000_000_000, max_future_ms=HOUR_MS) is None


def test_time_before_2000_is_implausible_and_hints_at_seconds_instead_of_milliseconds() -> None:
    with pytest.raises(TimestampError, match="seconds instead of milliseconds"):
        check_plausible(1_700_000_000, now_ms=1_700_000_000_000, max_future_ms=HOUR_MS)
    with pytest.raises(TimestampError, match="before 2000"):
        check_plausible(EARLIEST_PLAUSIBLE_MS - 1, now_ms=1_700_000_000_000, max_future_ms=HOUR_MS)


def test_time_up_to_the_allowed_skew_ahead_of_now_is_plausible() -> None:
    now = 1_700_000_000_000
    assert check_plausible(now + HOUR_MS, now_ms=now, max_future_ms=HOUR_MS) is None


def test_time_further_ahead_than_the_allowed_skew_is_rejected_saying_how_far() -> None:
    now = 1_700_000_000_000
    with pytest.raises(TimestampError, match=r"7200 s in the future \(more than the 3600 s allowed\)"):
        check_plausible(now + 2 * HOUR_MS, now_ms=now, max_future_ms=HOUR_MS)
    with pytest.raises(TimestampError, match="in the future"):
        check_plausible(now + HOUR_MS + 1, now_ms=now, max_future_ms=HOUR_MS)
