"""Event timestamps: epoch milliseconds or ISO-8601 with a zone, checked for plausibility.

The contract is strict: an integer (a float, even a whole one, is refused: the producer's
clock is in integer milliseconds, and a float is how seconds and fractions slip in), or the
extended ISO-8601 date-time ``YYYY-MM-DDTHH:MM[:SS[.fraction]]`` followed by ``Z`` or
``±HH:MM`` (``±HHMM``, ``±HH``) and nothing else — no week or ordinal dates, no basic format,
nothing after the zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# 2000-01-01T00:00:00Z: nothing this engine sees can be older; a smaller number is almost
# always seconds mistaken for milliseconds.
EARLIEST_PLAUSIBLE_MS = 946_684_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# The accepted text, ASCII digits only; \Z (not $, which also matches before a final newline).
_ISO_8601 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,9})?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)\Z")
# Longer than any accepted text (35 characters at most).
_ISO_MAX_CHARS = 40


class TimestampError(ValueError):
    """A ``ts`` value that is not a usable event time; the message says why."""


def parse_ts(value: object) -> int:
    """Return epoch milliseconds for an epoch-ms integer or an ISO-8601 string with a zone.

    >>> parse_ts(1700000000000)
    1700000000000
    >>> parse_ts("2023-11-14T22:13:20Z")
    1700000000000
    >>> parse_ts("2023-11-14T22:13:20")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    orchestrator.core.timestamps.TimestampError: ISO-8601 timestamp '2023-11-14T22:13:20' has no zone
    >>> parse_ts(1700000000000.0)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    orchestrator.core.timestamps.TimestampError: must be integer epoch milliseconds, not a float
    """
    if isinstance(value, bool):
        raise TimestampError("must be epoch milliseconds or ISO-8601 text, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TimestampError("is not a finite number (and must be integer epoch milliseconds)")
        raise TimestampError(f"must be integer epoch milliseconds, not a float ({value!r})")
    if isinstance(value, str):
        return _parse_iso(value)
    raise TimestampError(f"must be epoch milliseconds or ISO-8601 text, not {type(value).__name__}")


def _parse_iso(text: str) -> int:
    shown = _shown(text)
    if len(text) > _ISO_MAX_CHARS or not _ISO_8601.match(text):
        if len(text) <= _ISO_MAX_CHARS and _ISO_8601.match(text + "Z"):
            raise TimestampError(f"ISO-8601 timestamp {shown} has no zone")
        raise TimestampError(f"{shown} is not ISO-8601 with a zone "
                             "(YYYY-MM-DDTHH:MM:SS[.fff] then Z or ±HH:MM, nothing after)")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:  # e.g. month 13, or an offset of 24 hours or more
        raise TimestampError(f"{shown} is not a valid ISO-8601 date and time") from None
    if parsed.tzinfo is None:  # the pattern requires a zone; kept as a guard
        raise TimestampError(f"ISO-8601 timestamp {shown} has no zone")
    # Integer arithmetic: float seconds * 1000 can land a hair under and lose a millisecond.
    return (parsed - _EPOCH) // _ONE_MS


def _shown(text: str) -> str:
    """``text`` quoted for a message: at most 64 characters, control characters escaped."""
    cut = text[:64]
    return repr(cut) + ("…" if len(text) > 64 else "")


def check_plausible(ts_ms: int, now_ms: int, max_future_ms: int) -> None:
    """Raise :class:`TimestampError` for an event time before 2000 or too far in the future."""
    if ts_ms < EARLIEST_PLAUSIBLE_MS:
        raise TimestampError(f"{ts_ms} is before 2000-01-01 (seconds instead of milliseconds?)")
    if ts_ms > now_ms + max_future_ms:
        ahead_s = (ts_ms - now_ms) / 1000
        raise TimestampError(f"{ts_ms} is {ahead_s:.0f} s in the future "
                             f"(more than the {max_future_ms // 1000} s allowed)")
