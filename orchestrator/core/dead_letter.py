"""Dead-letter records: the raw record, where it came from and why it was refused."""

from __future__ import annotations

import base64
from typing import Any


def dead_letter_record(*, topic: str, partition: int, offset: int, kafka_ts: int | None,
                       key: bytes | None, value: bytes | None, code: str, reason: str,
                       rejected_ts: int) -> dict[str, Any]:
    """Build the dead-letter value. Raw bytes are kept verbatim when they are UTF-8 text and
    base64-encoded otherwise (``value_encoding`` says which), so nothing is lost.

    >>> r = dead_letter_record(topic="clickstream", partition=0, offset=7, kafka_ts=1, key=b"v",
    ...                        value=b"\\xff", code="not_json", reason="bad", rejected_ts=2)
    >>> r["value"], r["value_encoding"], r["source"]["offset"]
    ('/w==', 'base64', 7)
    """
    key_text, key_encoding = _text_or_base64(key)
    value_text, value_encoding = _text_or_base64(value)
    return {
        "source": {"topic": topic, "partition": partition, "offset": offset, "timestamp": kafka_ts},
        "error": code,
        "reason": reason,
        "key": key_text,
        "key_encoding": key_encoding,
        "value": value_text,
        "value_encoding": value_encoding,
        "rejected_ts": rejected_ts,
    }


def _text_or_base64(raw: bytes | None) -> tuple[str | None, str | None]:
    if raw is None:
        return None, None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"
