"""Seeded generator of input records, good and hostile, each with what the engine must do with it.

:func:`records` yields :class:`Case` objects: a raw Kafka record (source, key, value bytes) and
the verdict the contract gives it. A good record is valid however odd it looks (unicode ids,
ISO times with offsets, NULs and deep nesting inside ``properties``, unknown fields, unknown
clickstream types). A bad one is a good one broken in exactly one way that the contract
refuses, and carries the rejection codes that way may give (the decoder's ``code``). The same
seed gives the same records.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from orchestrator.core.events import (
    CLICKSTREAM_TYPES,
    CONTACT_CENTRE_TYPES,
    FEEDBACK_OUTCOMES,
    ID_MAX_CHARS,
    DecodeLimits,
    Source,
)

#: The decision time the records are made for.
NOW = 1_800_000_000_000
LIMITS = DecodeLimits()
DAY = 86_400_000

_ID_CHARS = "abcxyz019-_.:@äöåßçñ客户訪問者🙂ЖΩ"
_TEXT_CHARS = _ID_CHARS + " \t/?&=#%'\"\\<>{}[]\u200b\u202e\x00\n"


@dataclass(frozen=True, slots=True)
class Case:
    """One record and its verdict: ``bad`` is the broken part (None: a good record) and
    ``codes`` the rejection codes that part may give."""

    source: Source
    key: bytes | None
    value: bytes | None
    bad: str | None = None
    codes: frozenset[str] = frozenset()


def _id(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choice(_ID_CHARS) for _ in range(rng.randrange(1, 24)))


def _text(rng: random.Random, most: int = 40) -> str:
    return "".join(rng.choice(_TEXT_CHARS) for _ in range(rng.randrange(0, most)))


def _ts(rng: random.Random) -> int | str:
    ms = NOW - rng.randrange(0, 30 * DAY) + rng.randrange(0, LIMITS.max_future_ms // 2)
    if rng.random() < 0.7:
        return ms
    when = datetime.fromtimestamp(ms / 1000, UTC)
    zone = rng.choice([("Z", 0), ("+02:00", 2), ("-05:30", -5.5), ("+0900", 9), ("+01", 1)])
    local = when + timedelta(hours=zone[1])
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + rng.choice(["", ".123", ",5", ".123456789"])
    return text + zone[0]


def _json_any(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(7 if depth > 0 else 5)
    if kind == 0:
        return rng.randrange(-10**18, 10**18)
    if kind == 1:
        return rng.choice([0.5, -1e300, 1e-300, 3.0])
    if kind == 2:
        return _text(rng)
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return ""
    if kind == 5:
        return [_json_any(rng, depth - 1) for _ in range(rng.randrange(4))]
    return {_text(rng, 12): _json_any(rng, depth - 1) for _ in range(rng.randrange(4))}


def _deep(depth: int) -> Any:
    value: Any = "bottom\x00"
    for n in range(depth):
        value = [value] if n % 2 else {"d": value}
    return value


def _good(rng: random.Random) -> tuple[Source, dict[str, Any], str]:
    """A valid record of a random source, and the id its key must be."""
    pick = rng.random()
    extra = {_text(rng, 8) + "_x": _json_any(rng, 2)} if rng.random() < 0.2 else {}
    if pick < 0.6:
        visitor = _id(rng, "v")
        kind = rng.choice([*sorted(CLICKSTREAM_TYPES), "hover", "scroll_depth", "erasure_requested",
                           "consent_updated"])
        record: dict[str, Any] = {"event_id": _id(rng, "e"), "type": kind, "ts": _ts(rng),
                                  "visitor_id": visitor, **extra}
        if rng.random() < 0.3:
            record["customer_id"] = _id(rng, "c")
        if rng.random() < 0.8:
            record["session_id"] = _id(rng, "s")
        if rng.random() < 0.7:
            record["page"] = {"url": "/" + _text(rng, 60) + "x",
                              "category": rng.choice(["billing", "faq", "pricing", _text(rng, 20)]),
                              "title": _text(rng, 80)}
        if rng.random() < 0.3:
            record["properties"] = ({"nested": _deep(rng.randrange(20, 200))} if rng.random() < 0.2
                                    else {_text(rng, 10): _json_any(rng, 3) for _ in range(3)})
        if kind == "consent_updated":
            record["consent"] = {"service": rng.random() < 0.5, "marketing": rng.random() < 0.5}
        return Source.CLICKSTREAM, record, visitor
    if pick < 0.85:
        customer = _id(rng, "c")
        kind = rng.choice(sorted(CONTACT_CENTRE_TYPES))
        record = {"event_id": _id(rng, "e"), "type": kind, "ts": _ts(rng), "customer_id": customer,
                  "channel": rng.choice(["phone", "chat", "email"]), **extra}
        if rng.random() < 0.5:
            record["reason"] = rng.choice(["price", "moving", _text(rng, 30)])
        if rng.random() < 0.5:
            record["sentiment"] = rng.choice([-1.0, 1.0, 0, rng.uniform(-1, 1)])
        if rng.random() < 0.3:
            record["agent_id"] = _id(rng, "a")
        return Source.CONTACT_CENTRE, record, customer
    person = _id(rng, rng.choice("vc"))
    record = {"action_id": _id(rng, "act"), "outcome": rng.choice(FEEDBACK_OUTCOMES),
              "ts": _ts(rng), **extra}
    return Source.ACTION_FEEDBACK, record, person


def _required(source: Source) -> list[str]:
    return {Source.CLICKSTREAM: ["event_id", "type", "ts", "visitor_id"],
            Source.CONTACT_CENTRE: ["event_id", "type", "ts", "customer_id"],
            Source.ACTION_FEEDBACK: ["action_id", "outcome", "ts"]}[source]


def _an_id_field(source: Source, record: dict[str, Any], rng: random.Random) -> str:
    fields = [f for f in ("event_id", "visitor_id", "customer_id", "session_id", "agent_id",
                          "action_id") if f in record]
    return rng.choice(fields)


# Each breaker takes (rng, source, record, key) and returns (name, key, value bytes, codes).
Broken = tuple[str, bytes | None, bytes | None, frozenset[str]]
SCHEMA = frozenset({"schema"})


def _encode(record: Any) -> bytes:
    return orjson.dumps(record)


def _no_value(rng, source, record, key) -> Broken:
    return "no value", key, None, frozenset({"empty"})


def _oversized(rng, source, record, key) -> Broken:
    record = {**record, "padding": "x" * (LIMITS.max_record_bytes + rng.randrange(1, 10_000))}
    return "oversized", key, _encode(record), frozenset({"oversized"})


def _not_json(rng, source, record, key) -> Broken:
    raw = _encode(record)
    how = rng.randrange(6)
    if how == 0:
        value = raw[: rng.randrange(1, len(raw))]
    elif how == 1:
        value = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        if value[:1] in (b"[", b"{", b'"') or value.strip() == b"":
            value = b"\xff" + value
    elif how == 2:
        at = rng.randrange(1, len(raw) - 1)
        value = raw[:at] + b"\xff\xfe" + raw[at:]
    elif how == 3:
        value = raw[:-1] + b',"x": NaN}'
    elif how == 4:
        value = b"[" * rng.randrange(1100, 20_000) + b"]" * 3
    else:
        value = raw[:1] + b"\x00" + raw[1:]
    try:  # a cut that happens to leave valid JSON is no breakage
        orjson.loads(value)
    except orjson.JSONDecodeError:
        return f"not json ({how})", key, value, frozenset({"not_json"})
    return "not json (fallback)", key, b"{oops", frozenset({"not_json"})


def _not_object(rng, source, record, key) -> Broken:
    value = rng.choice([[record], 17, "a record", None, True, 1.5])
    return "not an object", key, _encode(value), frozenset({"not_object"})


def _missing(rng, source, record, key) -> Broken:
    field = rng.choice(_required(source))
    return f"missing {field}", key, _encode({k: v for k, v in record.items() if k != field}), SCHEMA


def _wrong_type(rng, source, record, key) -> Broken:
    choices: list[tuple[str, Any]] = [
        ("ts", True), ("ts", {"ms": 1}), ("ts", [NOW]), ("ts", None), ("ts", float(NOW)),
        ("ts", NOW + 0.5),
    ]
    if source is Source.ACTION_FEEDBACK:
        choices += [("action_id", 12), ("outcome", "meh"), ("outcome", None)]
    else:
        choices += [("event_id", 12), ("event_id", None), ("type", 3)]
    if source is Source.CLICKSTREAM:
        choices += [("type", ""), ("type", "t" * 65), ("visitor_id", ["v"]), ("customer_id", 5),
                    ("page", ["/x"]), ("page", {"url": ""}), ("page", {"category": "x"}),
                    ("properties", [1, 2]), ("consent", {"service": "yes", "marketing": False})]
    if source is Source.CONTACT_CENTRE:
        choices += [("type", "page_view"), ("channel", "fax"), ("sentiment", 5),
                    ("sentiment", "-0.5"), ("customer_id", 7), ("reason", "r" * 300)]
    field, value = rng.choice(choices)
    return f"{field} = {value!r:.40}", key, _encode({**record, field: value}), SCHEMA


def _bad_ts_text(rng, source, record, key) -> Broken:
    text = rng.choice(["yesterday", "2024-13-45T00:00:00Z", "2024-01-01T00:00:00",
                       "2024-01-01T00:00:00Z trailing", "2024-01-01T24:61:00Z",
                       "\uff12\uff10\uff12\uff14-01-01T00:00:00Z", "2024-W01-1T00:00Z", "", " ", "1.7e12",
                       "2024-01-01T00:00:00+25:00", "1800000000000", "\x00"])
    return f"ts text {text!r}", key, _encode({**record, "ts": text}), SCHEMA


def _implausible_ts(rng, source, record, key) -> Broken:
    ts = rng.choice([1_700_000_000, 0, -1, NOW + LIMITS.max_future_ms + rng.randrange(1, 10**9),
                     10**18])
    return f"ts {ts}", key, _encode({**record, "ts": ts}), frozenset({"timestamp"})


def _bad_id(rng, source, record, key) -> Broken:
    field = _an_id_field(source, record, rng)
    value = rng.choice(["e\x00", "v\n1", "x\u2028y", "\x7f", "\x9b[31m", "   ", "",
                        "i" * (ID_MAX_CHARS + 1), "tab\there"])
    broken = {**record, field: value}
    return f"{field} = {value!r:.20}", key, _encode(broken), frozenset({"id"})


def _lone_surrogate(rng, source, record, key) -> Broken:
    field = _an_id_field(source, record, rng)
    raw = _encode({**record, field: "SURROGATE"}).replace(b"SURROGATE", b"x\\ud800")
    return f"{field} with a lone surrogate", key, raw, frozenset({"id", "not_json"})


def _bad_key(rng, source, record, key) -> Broken:
    how = rng.randrange(4 if source is not Source.ACTION_FEEDBACK else 3)
    value = _encode(record)
    if how == 0:
        return "no key", None, value, frozenset({"key"})
    if how == 1:
        return "key not UTF-8", b"\xff\xfe" + (key or b""), value, frozenset({"key"})
    if how == 2:
        return "key with a control character", (key or b"k") + b"\x00", value, frozenset({"key"})
    return "key of another person", (key or b"") + b"-other", value, frozenset({"key"})


BREAKERS: tuple[Callable[..., Broken], ...] = (
    _no_value, _oversized, _not_json, _not_object, _missing, _wrong_type, _bad_ts_text,
    _implausible_ts, _bad_id, _lone_surrogate, _bad_key,
)


def records(n: int, seed: int, bad_share: float = 0.5) -> Iterator[Case]:
    """``n`` cases, about ``bad_share`` of them hostile, reproducible from ``seed``."""
    rng = random.Random(seed)
    for _ in range(n):
        source, record, person = _good(rng)
        key = person.encode()
        if rng.random() >= bad_share:
            yield Case(source, key, _encode(record))
            continue
        name, bad_key, value, codes = rng.choice(BREAKERS)(rng, source, record, key)
        yield Case(source, bad_key, value, name, codes)
