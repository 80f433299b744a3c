"""benchmarks/real_sessions.py turns rows of the shop data set into records of the contract."""

from __future__ import annotations

import calendar
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.core.events import Accepted, DecodeLimits, Source, decode_record

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_sessions  # noqa: E402

HEADER = ("Administrative,Administrative_Duration,Informational,Informational_Duration,ProductRelated,"
          "ProductRelated_Duration,BounceRates,ExitRates,PageValues,SpecialDay,Month,OperatingSystems,"
          "Browser,Region,TrafficType,VisitorType,Weekend,Revenue\n")
UCI_ROWS = ("2,40,1,10,3,90,0,0.1,0,0,Nov,1,1,1,1,Returning_Visitor,TRUE,TRUE\n"
            "0,0,0,0,1,0,0.2,0.2,0,0,Feb,1,1,1,1,New_Visitor,FALSE,FALSE\n"
            "0,0,0,0,0,0,0.2,0.2,0,0,June,1,1,1,1,New_Visitor,FALSE,FALSE\n")
NUMERIC_ROWS = ("2,40,1,10,3,90,0,0.1,0,0,11,1,1,1,1,1,1,1\n"
                "0,0,0,0,1,0,0.2,0.2,0,0,2,1,1,1,1,0,0,0\n"
                "0,0,0,0,0,0,0.2,0.2,0,0,6,1,1,1,1,0,0,0\n")


def records_of(tmp_path: Path, rows: str) -> tuple[list[real_sessions.Session], list[dict]]:
    data = tmp_path / "sessions.csv"
    data.write_text(HEADER + rows)
    sessions = real_sessions.read_sessions(data, seed=7)
    out = tmp_path / "records.jsonl"
    real_sessions.write_records(sessions, out, seed=7)
    return sessions, [orjson.loads(line) for line in out.read_bytes().splitlines()]


@pytest.mark.parametrize("rows", [UCI_ROWS, NUMERIC_ROWS], ids=["uci", "numeric"])
def test_each_session_with_pages_becomes_its_page_views_and_a_purchase_when_it_bought(
        tmp_path: Path, rows: str) -> None:
    sessions, records = records_of(tmp_path, rows)
    assert [(s.counts, s.bought, s.month, s.weekend) for s in sorted(sessions, key=lambda s: s.index)] == [
        ((2, 1, 3), True, 11, True), ((0, 0, 1), False, 2, False)]  # the row without pages is left out
    buyer = next(s for s in sessions if s.bought)
    mine = [r for r in records if r["visitor_id"] == f"v-{buyer.index:05d}"]
    assert [r["page"]["category"] for r in mine if r["type"] == "page_view"].count("account") == 2
    assert [r["type"] for r in mine].count("page_view") == 6
    assert mine[-1]["type"] == "purchase" and mine[-1]["ts"] > mine[-2]["ts"]
    assert sum(r["type"] == "purchase" for r in records) == 1


def test_records_are_in_event_time_order_and_valid_contract_records(tmp_path: Path) -> None:
    sessions, records = records_of(tmp_path, UCI_ROWS)
    assert [r["ts"] for r in records] == sorted(r["ts"] for r in records)
    limits = DecodeLimits(max_future_ms=10**13)
    for record in records:
        decoded = decode_record(Source.CLICKSTREAM, record["visitor_id"].encode(), orjson.dumps(record),
                                record["ts"], limits)
        assert isinstance(decoded, Accepted), decoded
    lines = [line for s in sessions for line in s.page_lines]
    assert sorted(lines) == [n for n, r in enumerate(records, start=1) if r["type"] == "page_view"]


def test_a_session_starts_in_its_month_on_a_weekend_day_when_the_row_says_so(tmp_path: Path) -> None:
    sessions, _ = records_of(tmp_path, UCI_ROWS)
    for s in sessions:
        start = datetime.fromtimestamp(s.start_ts / 1000, UTC)
        assert start.month == s.month
        assert (calendar.weekday(start.year, start.month, start.day) >= 5) == s.weekend


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 6), st.floats(0, 5000), st.integers(0, 4), st.floats(0, 900),
                          st.integers(0, 30), st.floats(0, 20000), st.integers(1, 12), st.booleans(),
                          st.booleans()), min_size=1, max_size=12))
def test_any_rows_give_one_page_view_per_page_and_one_purchase_per_buying_session(
        tmp_path_factory: pytest.TempPathFactory, rows: list[tuple]) -> None:
    text = "".join(f"{a},{ad},{i},{idur},{p},{pd},0,0,0,0,{m},1,1,1,1,1,{int(w)},{int(b)}\n"
                   for a, ad, i, idur, p, pd, m, w, b in rows)
    sessions, records = records_of(tmp_path_factory.mktemp("rows"), text)
    with_pages = [row for row in rows if row[0] + row[2] + row[4]]
    assert len(sessions) == len(with_pages)
    assert sum(r["type"] == "page_view" for r in records) == sum(row[0] + row[2] + row[4] for row in rows)
    assert sum(r["type"] == "purchase" for r in records) == sum(row[8] for row in with_pages)
    assert [r["ts"] for r in records] == sorted(r["ts"] for r in records)
    for s in sessions:  # the last page of a session is its decision point, before any purchase
        assert len(s.page_lines) == sum(s.counts)
        visitor = f"v-{s.index:05d}"
        assert records[s.page_lines[-1] - 1]["visitor_id"] == visitor
        bought = [n for n, r in enumerate(records, start=1)
                  if r["visitor_id"] == visitor and r["type"] == "purchase"]
        assert len(bought) == s.bought and all(n > s.page_lines[-1] for n in bought)
