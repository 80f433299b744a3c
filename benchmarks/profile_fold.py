"""Micro-benchmark of the profile's hot path: apply an event, decode and encode a profile.

A realistic logged-in customer (two devices, six sessions, a full page history, contacts, sent
actions with feedback, pending label snapshots) is built first; then, in one process and
without a broker:

- ``apply_event``: page views, clicks, logins and feedback of one more session folded into the
  profile, one at a time (each event new, so none is a replay), per event;
- ``decode``, ``encode``: the profile store's codec (``runtime.stores``), per profile;
- ``merge``: an anonymous visitor's profile (a session of pages) merged into a copy of it.

Each figure is the best of ``--repeats`` timeit runs, in microseconds per operation.

    python benchmarks/profile_fold.py [--repeats 5] [--label before]

Writes benchmarks/results/profile_fold.json (one entry per ``--label``, with the machine).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import timeit
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine_info import describe_machine  # noqa: E402

from orchestrator.core.events import Event, Source, decode_record  # noqa: E402
from orchestrator.core.profile import Profile, apply_event, merge_profiles, record_sent  # noqa: E402

try:
    from orchestrator.runtime.stores import decode_profile, encode_profile
except ImportError:  # before the codec was public (the "before" figures)
    from orchestrator.runtime.stores import _decode_profile as decode_profile  # type: ignore[no-redef]
    from orchestrator.runtime.stores import _encode_profile as encode_profile  # type: ignore[no-redef]

RESULTS = ROOT / "benchmarks" / "results" / "profile_fold.json"
T0 = 1_700_000_000_000
SECOND = 1000
CATEGORIES = ("billing", "invoices", "moving", "products", "pricing", "help", None)


def _event(source: Source, key: str, record: dict[str, Any]) -> Event:
    import orjson

    decoded = decode_record(source, key.encode(), orjson.dumps(record), now_ms=T0 + 10**10)
    return decoded.event  # type: ignore[union-attr]


def _page(n: int, ts: int, visitor: str, session: str, customer: str | None) -> Event:
    category = CATEGORIES[n % len(CATEGORIES)]
    page: dict[str, Any] = {"url": f"/p/{n % 40}"}
    if category:
        page["category"] = category
    record: dict[str, Any] = {"event_id": f"e{n}", "type": "page_view", "ts": ts,
                              "visitor_id": visitor, "session_id": session, "page": page}
    if customer:
        record["customer_id"] = customer
    return _event(Source.CLICKSTREAM, visitor, record)


def _session_events(first: int, start_ts: int, visitor: str, session: str,
                    customer: str | None = "c1") -> list[Event]:
    events: list[Event] = []
    for i in range(12):
        n = first + i
        ts = start_ts + i * 20 * SECOND
        if i == 3 and customer:
            events.append(_event(Source.CLICKSTREAM, visitor, {
                "event_id": f"e{n}", "type": "login", "ts": ts, "visitor_id": visitor,
                "session_id": session, "customer_id": customer}))
        elif i == 7:
            events.append(_event(Source.CLICKSTREAM, visitor, {
                "event_id": f"e{n}", "type": "search", "ts": ts, "visitor_id": visitor,
                "session_id": session, "customer_id": customer}))
        elif i == 9:
            events.append(_event(Source.ACTION_FEEDBACK, visitor, {
                "action_id": f"a{n // 12}", "outcome": "clicked", "ts": ts}))
        else:
            events.append(_page(n, ts, visitor, session, customer))
    return events


def realistic_profile() -> Profile:
    """A customer after eight sessions on two devices, with contacts, actions and snapshots."""
    profile = Profile(person_id="c1")
    n = 0
    for s in range(8):
        start = T0 + s * 3600 * SECOND
        record_sent(profile, {"action_id": f"a{n // 12}", "action": "direct_link", "channel": "web"},
                    f"direct_link:{s}", start)
        for event in _session_events(n, start, f"v{s % 2}", f"s{s}"):
            apply_event(profile, event)
        n += 12
        apply_event(profile, _event(Source.CONTACT_CENTRE, "c1", {
            "event_id": f"k{s}", "type": "contact_started", "ts": start + 300 * SECOND,
            "customer_id": "c1", "channel": "phone", "reason": "billing", "sentiment": -0.25}))
    apply_event(profile, _event(Source.CLICKSTREAM, "v0", {
        "event_id": "consent-1", "type": "consent_updated", "ts": T0 + 5, "visitor_id": "v0",
        "consent": {"service": True, "marketing": True}}))
    profile.pending = {intent: [[T0 + 8 * 3600 * SECOND + k, list(range(0, 60, 2))] for k in range(4)]
                       for intent in ("churn_risk", "contact_need", "purchase_intent")}
    return profile


def best_us(stmt: Any, number: int, repeats: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=repeats)) / number * 1e6


def measure(repeats: int) -> dict[str, Any]:
    base = realistic_profile()
    stored = encode_profile(base)
    # Events of later sessions, each applied once: a fresh list per repeat.
    per_run = 1200
    runs = iter(range(10**6))

    def fold() -> None:
        r = next(runs)
        profile = copy.deepcopy(base)
        start = T0 + (100 + r) * 86_400 * SECOND
        events = [e for s in range(per_run // 12)
                  for e in _session_events(10_000 + s * 12, start + s * 3600 * SECOND,
                                           f"v{s % 2}", f"x{r}-{s}")]
        started = timeit.default_timer()
        for event in events:
            apply_event(profile, event)
        fold_times.append((timeit.default_timer() - started) / len(events) * 1e6)

    fold_times: list[float] = []
    for _ in range(repeats):
        fold()

    anonymous = Profile(person_id="v9")
    for event in _session_events(50_000, T0 + 9 * 3600 * SECOND, "v9", "s-anon", customer=None):
        apply_event(anonymous, event)
    anonymous_stored = encode_profile(anonymous)

    def merge() -> None:
        merge_profiles(decode_profile(stored), decode_profile(anonymous_stored))

    decode_us = best_us(lambda: decode_profile(stored), 2000, repeats)
    encode_us = best_us(lambda: encode_profile(base), 2000, repeats)
    merge_decode_us = best_us(merge, 500, repeats)
    anonymous_decode_us = best_us(lambda: decode_profile(anonymous_stored), 2000, repeats)
    return {
        "apply_event_us": round(min(fold_times), 2),
        "decode_us": round(decode_us, 2),
        "encode_us": round(encode_us, 2),
        "merge_us": round(merge_decode_us - decode_us - anonymous_decode_us, 2),
        "profile_bytes": len(stored),
        "events_per_run": per_run,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--label", default="current")
    args = parser.parse_args()
    figures = measure(args.repeats)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.label] = {"figures": figures, "machine": describe_machine(repeats=args.repeats)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({args.label: results[args.label]}, indent=2))


if __name__ == "__main__":
    main()
