"""Event timestamps: epoch milliseconds or ISO-8601 with a zone, checked for plausibility."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# 2000-01-01T00:00:00Z: nothing this engine sees can be older; a smaller number is almost
# always seconds mistaken for milliseconds.
EARLIEST_PLAUSIBLE_MS = 946_684_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


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
    """
    if isinstance(value, bool):
        raise TimestampError("must be epoch milliseconds or ISO-8601 text, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TimestampError("is not a finite number")
        return int(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise TimestampError(f"'{value[:64]}' is not ISO-8601") from None
        if parsed.tzinfo is None:
            raise TimestampError(f"ISO-8601 timestamp '{value[:64]}' has no zone")
        # Integer arithmetic: float seconds * 1000 can land a hair under and lose a millisecond.
        return (parsed - _EPOCH) // _ONE_MS
    raise TimestampError(f"must be epoch milliseconds or ISO-8601 text, not {type(value).__name__}")


def check_plausible(ts_ms: int, now_ms: int, max_future_ms: int) -> None:
    """Raise :class:`TimestampError` for an event time before 2000 or too far in the future."""
    if ts_ms < EARLIEST_PLAUSIBLE_MS:
        raise TimestampError(f"{ts_ms} is before 2000-01-01 (seconds instead of milliseconds?)")
    if ts_ms > now_ms + max_future_ms:
        ahead_s = (ts_ms - now_ms) / 1000
        raise TimestampError(f"{ts_ms} is {ahead_s:.0f} s in the future "
                             f"(more than the {max_future_ms // 1000} s allowed)")
