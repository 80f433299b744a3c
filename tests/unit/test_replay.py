"""``orchestrator replay``: contract records in any order through the pure core, one line out per
record with the scores served, the labels settled and the actions decided."""

from __future__ import annotations

import io
import random
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.core.events import Source
from orchestrator.core.rules import load_rule_directory
from orchestrator.replay import InputRecord, Replay, ReplayInputError, parse_line, read_records, replay_file
from orchestrator.simulate.population import Population

from .factories import RULES_DIR

pytestmark = pytest.mark.unit

T0 = 1_780_000_000_000
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

INTENTS_YAML = """
- {name: login_propensity, outcome_event_types: [login, signup], horizon_s: 1800,
   only_anonymous: true, min_labels: 0}
- {name: purchase_intent, outcome_event_types: [purchase], horizon_s: 3600, min_labels: 0}
"""


def page(n: int, ts: int, category: str, visitor: str = "v1", **extra: object) -> dict:
    return {"event_id": f"{visitor}-{n}", "type": "page_view", "ts": ts, "visitor_id": visitor,
            "session_id": f"s-{visitor}", "page": {"url": f"/{category}/{n}", "category": category},
            **extra}


def journey() -> list[dict]:
    """An anonymous visitor reads billing pages and logs in; a second visitor goes quiet; a
    contact-centre record (as an envelope) and a broken record."""
    return [
        page(1, T0, "billing"),
        page(2, T0 + MINUTE, "billing"),
        page(3, T0 + 2 * MINUTE, "invoices"),
        {"event_id": "v1-4", "type": "login", "ts": T0 + 3 * MINUTE, "visitor_id": "v1",
         "session_id": "s-v1", "customer_id": "c1"},
        page(5, T0 + 4 * MINUTE, "billing", customer_id="c1"),
        page(1, T0 + 10 * SECOND, "products", visitor="v2"),
        {"topic": "contact-centre", "key": "c1",
         "value": {"event_id": "cc1", "type": "contact_started", "ts": T0 + 5 * MINUTE,
                   "customer_id": "c1", "channel": "phone", "reason": "billing", "sentiment": -0.5}},
        # Two hours later a third visitor: event time passes the quiet visitor's horizons.
        page(1, T0 + 2 * HOUR, "home", visitor="v3"),
        {"event_id": "x", "type": "page_view", "ts": "yesterday", "visitor_id": "v9"},
    ]


def replay_lines(lines: list[dict], tmp_path: Path) -> list[dict]:
    intents = tmp_path / "intents.yaml"
    intents.write_text(INTENTS_YAML)
    shuffled = list(lines)
    random.Random(5).shuffle(shuffled)
    source = io.StringIO("\n".join(orjson.dumps(x).decode() for x in shuffled) + "\n\n")
    sink = io.BytesIO()
    replay_file(source, sink, RULES_DIR, intents=intents)
    return [orjson.loads(line) for line in sink.getvalue().splitlines()]


def test_one_line_per_record_in_event_time_order_with_scores_labels_and_actions(tmp_path: Path) -> None:
    out = replay_lines(journey(), tmp_path)
    assert len(out) == len(journey())
    assert out[0]["rejected"]["code"] == "schema"  # the unreadable ts: first, and rejected
    applied = out[1:]
    assert [o["ts"] for o in applied] == sorted(o["ts"] for o in applied)
    first = applied[0]
    assert (first["person_id"], first["type"]) == ("v1", "page_view")
    assert set(first["scores"]) == {"login_propensity", "purchase_intent"}
    assert all(0.0 <= p <= 1.0 for p in first["scores"].values())
    login = next(o for o in applied if o["type"] == "login")
    assert login["person_id"] == "c1"  # the visitor's record goes to the customer ...
    assert "login_propensity" not in login["scores"]  # ... who is logged in now
    # ... and the anonymous snapshots came along: the login decides them positive, and they are
    # learned when their horizon ends (below), not at the login.
    assert login["settled"] == []
    assert any(a["action"] == "login_prompt" for o in applied for a in o["actions"])
    contact = next(o for o in applied if o["source"] == "contact-centre")
    assert (contact["person_id"], contact["type"]) == ("c1", "contact_started")
    # The quiet people's snapshots are settled by the event-time sweep: the customer's login
    # moments positive, the quiet visitor's negative.
    last = applied[-1]
    assert {(s["person_id"], s["intent"], s["label"]) for s in last["swept"]} >= {
        ("c1", "login_propensity", True), ("v2", "login_propensity", False),
        ("v2", "purchase_intent", False)}


def test_the_same_records_in_another_order_give_the_same_lines(tmp_path: Path) -> None:
    first = replay_lines(journey(), tmp_path)
    again = replay_lines(list(reversed(journey())), tmp_path)
    assert [{k: v for k, v in o.items() if k != "line"} for o in first] == \
        [{k: v for k, v in o.items() if k != "line"} for o in again]


def test_a_duplicate_record_is_recognised_as_a_replay(tmp_path: Path) -> None:
    records = [page(1, T0, "billing"), page(1, T0, "billing")]
    out = replay_lines(records, tmp_path)
    assert [o.get("replay", False) for o in out] == [False, True]


def test_input_lines_are_bare_records_or_envelopes() -> None:
    bare = parse_line(1, orjson.dumps(page(1, T0, "home")))
    assert (bare.source, bare.key, bare.ts) == (Source.CLICKSTREAM, b"v1", T0)
    cc = parse_line(2, b'{"event_id":"c","type":"case_opened","ts":"2026-05-28T20:26:40Z",'
                       b'"customer_id":"c7","channel":"chat"}')
    assert (cc.source, cc.key, cc.ts) == (Source.CONTACT_CENTRE, b"c7", T0)
    feedback = parse_line(3, b'{"topic":"action-feedback","key":"v1",'
                             b'"value":{"action_id":"a1","outcome":"clicked","ts":1780000000000}}')
    assert (feedback.source, feedback.key) == (Source.ACTION_FEEDBACK, b"v1")
    with pytest.raises(ReplayInputError, match="line 4: unknown topic"):
        parse_line(4, b'{"topic":"nope","key":"k","value":{}}')
    with pytest.raises(ReplayInputError, match="line 5: not JSON"):
        parse_line(5, b"{")
    ordered = read_records([b'{"ts": 3, "visitor_id": "a"}', b"", b'{"ts": 1, "visitor_id": "b"}'])
    assert [r.line for r in ordered] == [3, 1]


def test_the_cli_command_writes_the_lines_and_a_model_summary(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text("\n".join(orjson.dumps(x).decode() for x in journey()) + "\n")
    intents = tmp_path / "intents.yaml"
    intents.write_text(INTENTS_YAML)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["replay", str(records), "-o", str(out), "--rules", str(RULES_DIR),
                                      "--intents", str(intents)])
    assert result.exit_code == 0, result.output
    assert len(out.read_bytes().splitlines()) == len(journey())
    assert "purchase_intent" in result.output  # the summary, on stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1, 2]\n")
    result = CliRunner().invoke(cli, ["replay", str(bad), "--rules", str(RULES_DIR)])
    assert result.exit_code == 2 and "line 1: expected a JSON object" in result.output


def test_a_replayed_population_teaches_the_default_models_to_rank() -> None:
    population = Population(seed=7, people=300, days=14)
    records = [InputRecord(n, source, key.encode(), orjson.dumps(value), value["ts"])
               for n, (source, key, value) in enumerate(population.records(), start=1)]
    replay = Replay(load_rule_directory(RULES_DIR))
    for _ in replay.run(records):
        pass
    quality = replay.scorer.quality()
    for name in ("purchase_intent", "contact_need"):
        assert quality[name]["n_labels"] > 300, quality[name]
        assert quality[name]["roc_auc"] > 0.65, quality[name]
        assert quality[name]["trusted"], quality[name]
