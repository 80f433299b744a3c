"""Dead-letter records: the raw record, where it came from and why it was refused.

A dead-letter record must always be sendable, whatever was refused: JSON escaping can make
text up to six times longer (a control character becomes ``\\u0001``), so a raw key or value
that does not fit is cut, and the record says so and keeps the original's size and sha256.
The encoded record is at most :data:`MAX_DEAD_LETTER_BYTES`, well under the producer's 1 MB.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

#: Bytes of an encoded (orjson) dead-letter record, at most.
MAX_DEAD_LETTER_BYTES = 256 * 1024
#: Bytes of the encoded key inside the record, at most (keys are ids: short).
MAX_KEY_BYTES = 4 * 1024
#: Characters of the reason, at most.
MAX_REASON_CHARS = 2000


def dead_letter_record(*, topic: str, partition: int, offset: int, kafka_ts: int | None,
                       key: bytes | None, value: bytes | None, code: str, reason: str,
                       rejected_ts: int, max_bytes: int = MAX_DEAD_LETTER_BYTES) -> dict[str, Any]:
    """Build the dead-letter value. Raw bytes are kept verbatim when they are UTF-8 text and
    base64-encoded otherwise (``value_encoding`` says which); each of key and value comes with
    its size in bytes and sha256, and is cut (``*_truncated``) when the record would otherwise
    encode to more than ``max_bytes``.

    >>> r = dead_letter_record(topic="clickstream", partition=0, offset=7, kafka_ts=1, key=b"v",
    ...                        value=b"\\xff", code="not_json", reason="bad", rejected_ts=2)
    >>> r["value"], r["value_encoding"], r["value_bytes"], r["value_truncated"], r["source"]["offset"]
    ('/w==', 'base64', 1, False, 7)
    >>> big = dead_letter_record(topic="clickstream", partition=0, offset=7, kafka_ts=1, key=b"v",
    ...                          value=b"\\x01" * 1_000_000, code="oversized", reason="big",
    ...                          rejected_ts=2)
    >>> len(orjson.dumps(big)) <= MAX_DEAD_LETTER_BYTES, big["value_truncated"], big["value_bytes"]
    (True, True, 1000000)
    """
    record: dict[str, Any] = {
        "source": {"topic": topic, "partition": partition, "offset": offset, "timestamp": kafka_ts},
        "error": code,
        "reason": reason if len(reason) <= MAX_REASON_CHARS else reason[:MAX_REASON_CHARS] + "…",
    }
    key_text = _add_raw(record, "key", key)
    value_text = _add_raw(record, "value", value)
    record["rejected_ts"] = rejected_ts
    if key_text is not None:
        _fill(record, "key", key_text, min(MAX_KEY_BYTES, max_bytes // 4))
    if value_text is not None:  # the value gets whatever room the rest of the record leaves
        _fill(record, "value", value_text, max_bytes - len(orjson.dumps(record)))
    return record


def _add_raw(record: dict[str, Any], name: str, raw: bytes | None) -> str | None:
    """Add ``name`` with an empty text for now; return the whole text (None: no bytes)."""
    if raw is None:
        record[name] = record[f"{name}_encoding"] = None
        return None
    text, encoding = _text_or_base64(raw)
    record.update({name: "", f"{name}_encoding": encoding, f"{name}_bytes": len(raw),
                   f"{name}_sha256": hashlib.sha256(raw).hexdigest(),
                   f"{name}_truncated": False})  # false is longer than true: room is kept
    return text


def _fill(record: dict[str, Any], name: str, text: str, room: int) -> None:
    """Put as much of ``text`` in ``record[name]`` as adds at most ``room`` encoded bytes."""
    kept = _fit(text, room, escaped=record[f"{name}_encoding"] == "utf-8")
    record[name] = kept
    record[f"{name}_truncated"] = len(kept) != len(text)


def _fit(text: str, room: int, *, escaped: bool) -> str:
    """The longest prefix of ``text`` whose JSON string is at most ``room`` bytes longer than
    that of the empty string."""
    if not escaped:  # base64: no escaping, one byte a character
        return text[:max(0, room) // 4 * 4]  # whole base64 quanta, so the prefix decodes
    if len(text) <= room and _grows(text) <= room:  # a longer text cannot fit: skip encoding it
        return text
    low, high = 0, min(len(text), max(0, room))  # every character is at least one byte
    while low < high:  # longest prefix that fits: O(log n) encodings of at most ``room`` bytes
        middle = (low + high + 1) // 2
        if _grows(text[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _grows(text: str) -> int:
    return len(orjson.dumps(text)) - 2


def _text_or_base64(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"
