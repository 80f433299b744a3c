"""Dead-letter records keep the raw record (losslessly when it fits), where it came from and why,
and always fit in a message the producer can send."""

from __future__ import annotations

import base64
import hashlib

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orchestrator.core.dead_letter import MAX_DEAD_LETTER_BYTES, MAX_KEY_BYTES, dead_letter_record


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
        "key_bytes": 2,
        "key_sha256": hashlib.sha256(b"v1").hexdigest(),
        "key_truncated": False,
        "value": "{oops",
        "value_encoding": "utf-8",
        "value_bytes": 5,
        "value_sha256": hashlib.sha256(b"{oops").hexdigest(),
        "value_truncated": False,
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
    assert recovered(record["key"], record["key_encoding"]) == key
    assert recovered(record["value"], record["value_encoding"]) == value


def recovered(text: str | None, encoding: str | None) -> bytes | None:
    if text is None:
        return None
    return text.encode() if encoding == "utf-8" else base64.b64decode(text)


# Values up to a few MB, of the kinds that grow most under JSON escaping (control characters,
# quotes, backslashes), of multi-byte UTF-8, and of bytes that are not UTF-8 at all.
chunks = st.binary(min_size=1, max_size=16) | st.sampled_from(
    [b"\x01", b'"', b"\\", b"\x00\x1f", "é".encode(), "🧾".encode(), b"\xff", b"a"])
large_values = st.builds(lambda chunk, times, tail: chunk * times + tail,
                         chunks, st.integers(0, 3_000_000 // 16), st.binary(max_size=8))


@settings(max_examples=60, deadline=None)
@given(key=st.none() | st.binary(max_size=20_000), value=st.none() | large_values)
@example(key=b"v1", value=b"\x01" * 180_000)  # 1.08 MB of JSON when copied whole
@example(key=b"k" * 100_000, value=b'"' * 2_000_000)
def test_the_encoded_record_is_valid_json_under_the_bound_with_the_size_and_sha256_of_the_original(
        key: bytes | None, value: bytes | None) -> None:
    encoded = orjson.dumps(dead_letter(key, value))
    assert len(encoded) <= MAX_DEAD_LETTER_BYTES
    record = orjson.loads(encoded)
    for name, raw in (("key", key), ("value", value)):
        if raw is None:
            assert record[name] is None
            continue
        assert record[f"{name}_bytes"] == len(raw)
        assert record[f"{name}_sha256"] == hashlib.sha256(raw).hexdigest()
        kept = recovered(record[name], record[f"{name}_encoding"])
        assert kept is not None and raw.startswith(kept)
        assert record[f"{name}_truncated"] == (kept != raw)


def test_a_value_that_fits_is_kept_whole_and_one_that_does_not_is_cut_to_the_bound() -> None:
    fits = b"x" * 200_000
    assert dead_letter(b"v1", fits)["value"] == fits.decode()
    cut = dead_letter(b"v1", b"\x01" * 180_000)
    assert cut["value_truncated"] is True
    assert cut["value_bytes"] == 180_000
    # As much as fits: one more character would not.
    encoded = len(orjson.dumps(cut))
    assert MAX_DEAD_LETTER_BYTES - 6 < encoded <= MAX_DEAD_LETTER_BYTES


def test_a_value_that_is_not_utf8_is_cut_to_whole_base64_quanta() -> None:
    record = dead_letter(b"v1", b"\xff" * 1_000_000)
    assert record["value_encoding"] == "base64"
    assert record["value_truncated"] is True
    assert len(record["value"]) % 4 == 0
    assert base64.b64decode(record["value"]) == b"\xff" * (len(record["value"]) // 4 * 3)


def test_an_oversized_key_is_cut_to_a_few_kilobytes_and_leaves_room_for_the_value() -> None:
    record = dead_letter(b"k" * 1_000_000, b"{oops")
    assert record["key_truncated"] is True
    assert len(record["key"]) <= MAX_KEY_BYTES
    assert (record["value"], record["value_truncated"]) == ("{oops", False)


def test_an_overlong_reason_is_cut() -> None:
    record = dead_letter(b"v1", b"{oops", reason="x" * 100_000)
    assert len(record["reason"]) <= 2001
