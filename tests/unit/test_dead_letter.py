"""Dead-letter records keep the raw record losslessly, with where it came from and why."""

from __future__ import annotations

import base64

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.dead_letter import dead_letter_record


def dead_letter(key: bytes | None, value: bytes | None, **changes: object) -> dict:
    fields: dict = {"topic": "clickstream", "partition": 2, "offset": 41, "kafka_ts": 1_700_000_000_000,
                    "key": key, "value": value, "code": "not_json", "reason": "value is not JSON",
                    "rejected_ts": 1_700_000_000_500}
    fields.update(changes)
    return dead_letter_record(**fields)


def test_dead_letter_record_says_where_the_record_came_from_and_why_it_was_refused() -> None:
    record = dead_letter(b"v1", b"{oops")
    assert record == {
        "source": {"topic": "clickstream", "partition": 2, "offset": 41, "timestamp": 1_700_000_000_000},
        "error": "not_json",
        "reason": "value is not JSON",
        "key": "v1",
        "key_encoding": "utf-8",
        "value": "{oops",
        "value_encoding": "utf-8",
        "rejected_ts": 1_700_000_000_500,
    }


def test_utf8_text_is_kept_verbatim_including_non_ascii() -> None:
    text = '{"title": "Café, 請求書 🧾"'
    record = dead_letter("clé".encode(), text.encode())
    assert (record["value"], record["value_encoding"]) == (text, "utf-8")
    assert (record["key"], record["key_encoding"]) == ("clé", "utf-8")


def test_bytes_that_are_not_utf8_are_base64_encoded() -> None:
    record = dead_letter(b"\xff\x00k", b"\x89PNG\r\n\x1a\n\xfe")
    assert record["value_encoding"] == "base64"
    assert base64.b64decode(record["value"]) == b"\x89PNG\r\n\x1a\n\xfe"
    assert record["key_encoding"] == "base64"
    assert base64.b64decode(record["key"]) == b"\xff\x00k"


def test_missing_key_and_value_stay_missing() -> None:
    record = dead_letter(None, None, code="empty", kafka_ts=None)
    assert (record["key"], record["key_encoding"]) == (None, None)
    assert (record["value"], record["value_encoding"]) == (None, None)
    assert record["source"]["timestamp"] is None


def test_empty_bytes_are_kept_as_empty_text() -> None:
    record = dead_letter(b"", b"")
    assert (record["key"], record["key_encoding"], record["value"], record["value_encoding"]) == (
        "", "utf-8", "", "utf-8")


@settings(max_examples=200, deadline=None)
@given(key=st.none() | st.binary(max_size=40), value=st.none() | st.binary(max_size=200))
def test_raw_bytes_can_always_be_recovered_from_the_json_record(key: bytes | None,
                                                                value: bytes | None) -> None:
    record = orjson.loads(orjson.dumps(dead_letter(key, value)))

    def recovered(text: str | None, encoding: str | None) -> bytes | None:
        if text is None:
            return None
        return text.encode() if encoding == "utf-8" else base64.b64decode(text)

    assert recovered(record["key"], record["key_encoding"]) == key
    assert recovered(record["value"], record["value_encoding"]) == value
